"""Sample-quality figures."""

import numpy as np
import tensorflow as tf

from hat_ebm_tf.data import load_digits

# The classifier trains on digits [0, 1000); digits [1000, 1797) are held out.
DIGITS_CLASSIFIER_TRAIN = 1000


def digits_classifier_report(images, seed=0):
    """Score images of digits with a classifier trained on real 8×8 digits.

    A logistic-regression classifier is fitted on the first 1000 of
    scikit-learn's digits (the rest are held out, for a baseline); the
    images are resized to 8×8 (area filter) and classified. On recognisable,
    diverse digits the mean confidence is high and every class appears.

    Args:
        images: ``[N, H, W, 1]`` float in [-1, 1].
        seed: seed of the classifier fit.

    Returns:
        dict with ``mean_confidence`` (mean max-probability), ``class_counts``
        (10 ints) and ``classes_present``. The baseline on real digits is
        ``digits_classifier_report(load_digits(16)[DIGITS_CLASSIFIER_TRAIN:])``.
    """
    from sklearn.linear_model import LogisticRegression

    real, labels = load_digits(image_size=8, return_labels=True)
    train = slice(0, DIGITS_CLASSIFIER_TRAIN)
    clf = LogisticRegression(max_iter=2000, random_state=seed)
    clf.fit(real[train].reshape(-1, 64), labels[train])
    small = tf.image.resize(np.clip(images, -1.0, 1.0), (8, 8), method="area").numpy()
    probs = clf.predict_proba(small.reshape(len(small), -1))
    counts = np.bincount(probs.argmax(1), minlength=10)
    return {
        "mean_confidence": float(probs.max(1).mean()),
        "class_counts": counts.tolist(),
        "classes_present": int((counts > 0).sum()),
    }
