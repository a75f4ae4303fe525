"""The quality report of samples of any data set: FD, KID and a copying check, beside a floor and a baseline.

A figure alone says little, so every report scores three rows the same way:

- **samples**: the model's images;
- **floor**: real images of the train split (a fixed subset of as many as
  there are samples), against the same held-out images: the figure a perfect
  model of the train split would reach;
- **baseline**: a multivariate Gaussian fitted to the train split's pixels,
  sampled and clipped to [-1, 1]: what a model of pixel means and
  covariances reaches, and what a model must beat.

Columns:

- **FD** and **KID** between the features of a row's images and of the
  held-out images (never seen in training), on the data set's own label-free
  encoder (``hat_ebm_tf.quality.encoder``);
- **copying**: the share of a row's images that lie nearer (in pixels) to
  one training image than all but ``COPY_QUANTILE`` of the held-out images
  do. A model of the data's distribution scores about ``COPY_QUANTILE``; one
  that reproduces training images scores near 1, and above ``COPY_FLAG`` the
  table warns. (Not given for the floor, which is training images.)
- for labelled data sets (digits, glyphs), the data set's classifier
  (``hat_ebm_tf.quality.classifier``) gives the **confidence** (mean
  max-probability), the **class shares**, and a second FD on its features.
"""

import numpy as np
from threadpoolctl import threadpool_limits

from hat_ebm_tf.metrics import frechet_distance_from_features, kernel_inception_distance
from hat_ebm_tf.quality.reference import COPY_QUANTILE, MIN_IMAGES
from hat_ebm_tf.validation import check_images

ROWS = ("samples", "floor", "baseline")
# Optional row of a run's report: the base generator's images, G(z), without the hat network's refinement.
GENERATOR_ROW = "generator"
COPY_FLAG = 3 * COPY_QUANTILE
KID_SUBSETS = 50
KID_SUBSET_SIZE = 500
REFERENCE_SEED = 0  # the floor's subset of train images and the baseline's Gaussian draws


def _distances(features, reference_features):
    """``(FD, KID, KID's std)`` of two feature sets."""
    # Matrices of at most a few thousand rows: BLAS threads gain nothing, and on busy cores they only spin.
    with threadpool_limits(limits=1, user_api="blas"):
        kid, kid_std = kernel_inception_distance(
            features, reference_features, num_subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=0
        )
        return frechet_distance_from_features(features, reference_features), kid, kid_std


def score(images, reference, copying=True):
    """One row of the report: ``images`` scored against ``reference``.

    Args:
        images: ``[N, S, S, C]`` float in [-1, 1] at the reference's shape, N ≥ 2.
        reference: ``QualityReference``.
        copying: compute the copying share (the floor's would be 1: its images are training images).

    Returns:
        dict: ``num_images``; ``frechet_distance`` (≥ 0) and ``kid``,
        ``kid_std`` on the encoder's features; ``copying_share`` in [0, 1]
        (None without ``copying``); for labelled references also
        ``mean_confidence``, ``class_counts``, ``class_fractions`` and
        ``classifier_frechet_distance``, ``classifier_kid``.

    Raises:
        ValueError: images of another shape, fewer than 2, or outside [-1, 1].
    """
    images = check_images(images, reference.image_shape, "quality report", value_range=(-1.0, 1.0)).numpy()
    if len(images) < MIN_IMAGES:
        raise ValueError(f"quality report: {len(images)} image(s); the Fréchet distance and KID need at least 2")
    distance, kid, kid_std = _distances(reference.encoder.features(images), reference.held_out_features)
    row = {"num_images": len(images), "frechet_distance": distance, "kid": kid, "kid_std": kid_std}
    row["copying_share"] = (
        float(np.mean(reference.nearest_train_distance(images) < reference.copy_threshold)) if copying else None
    )
    if reference.classifier is not None:
        probabilities, features = reference.classifier.classify(images)
        counts = np.bincount(np.argmax(probabilities, axis=1), minlength=probabilities.shape[1])
        distance, kid, _ = _distances(features, reference.held_out_classified[1])
        row.update(
            mean_confidence=float(np.mean(np.max(probabilities, axis=1))),
            class_counts=counts.tolist(),
            class_fractions=(counts / len(images)).tolist(),
            classifier_frechet_distance=distance,
            classifier_kid=kid,
        )
    return row


def floor_images(reference, count):
    """``count`` train images (a fixed random subset when fewer than the train images)."""
    if count >= len(reference.train):
        return reference.train
    rows = np.random.default_rng(REFERENCE_SEED).choice(len(reference.train), count, replace=False)
    return reference.train[np.sort(rows)]


def gaussian_baseline(reference, count, seed=REFERENCE_SEED):
    """``count`` draws of a multivariate Gaussian fitted to the train pixels, clipped to [-1, 1]."""
    pixels = reference.train.reshape(len(reference.train), -1).astype(np.float64)
    mean, covariance = pixels.mean(axis=0), np.cov(pixels, rowvar=False)
    # The covariance is singular when there are fewer images than pixels: eigh draws from it all the same.
    with threadpool_limits(limits=1, user_api="blas"):
        draws = np.random.default_rng(seed).multivariate_normal(mean, covariance, size=count, method="eigh")
    return np.clip(draws, -1.0, 1.0).astype(np.float32).reshape(count, *reference.image_shape)


# The floor and baseline rows, by (reference, row, count): deterministic, so computed once per process.
_REFERENCE_ROWS = {}


def _reference_row(reference, row, count):
    key = (id(reference), row, count)
    if key not in _REFERENCE_ROWS:
        if row == "floor":
            _REFERENCE_ROWS[key] = (reference, score(floor_images(reference, count), reference, copying=False))
        else:
            _REFERENCE_ROWS[key] = (reference, score(gaussian_baseline(reference, count), reference))
    return dict(_REFERENCE_ROWS[key][1])


def quality_report(samples, reference, generated=None):
    """The report of ``samples`` beside the floor and the baseline (and the generator alone, when given).

    Args:
        samples: ``[N, S, S, C]`` float in [-1, 1], N ≥ 2.
        reference: ``QualityReference`` of the data the model trained on.
        generated: optional ``[N', S, S, C]`` in [-1, 1]: the base generator's images, ``G(z)``.

    Returns:
        dict with the rows ``samples``, ``floor``, ``baseline`` (and
        ``generator``), each a ``score``, and ``measure``, which says what
        was compared.
    """
    report = {"samples": score(samples, reference)}
    report["floor"] = _reference_row(reference, "floor", len(samples))
    report["baseline"] = _reference_row(reference, "baseline", len(samples))
    if generated is not None:
        report[GENERATOR_ROW] = score(generated, reference)
    report["measure"] = {
        "data": reference.name,
        "image_shape": list(reference.image_shape),
        "num_train": len(reference.train),
        "num_held_out": len(reference.held_out),
        "encoder": reference.encoder.path.name,
        "copy_quantile": COPY_QUANTILE,
        "copy_threshold": reference.copy_threshold,
        "kid_subsets": KID_SUBSETS,
        "kid_subset_size": min(KID_SUBSET_SIZE, len(samples), len(reference.held_out)),
    }
    if reference.classifier is not None:
        classifier = reference.classifier
        report["measure"].update(
            classifier=classifier.path.name,
            classifier_held_out_accuracy=classifier.held_out_accuracy,
            classes=list(classifier.labelled.classes),
            # The confidence of real images the classifier has not seen: the mark for the samples' confidence.
            held_out_confidence=float(np.mean(np.max(reference.held_out_classified[0], axis=1))),
        )
    return report


def format_report(report):
    """A text table of a ``quality_report``: one line per row, and a header that says what was measured."""
    measure = report["measure"]
    labelled = "classifier" in measure
    shape = "×".join(map(str, measure["image_shape"]))
    lines = [
        f"sample quality ({measure['data']}, {shape}): FD and KID against {measure['num_held_out']} held-out "
        "images on the data set's contrastive encoder (lower is better); copying: the share nearer to a training "
        f"image than {1 - measure['copy_quantile']:.0%} of held-out images are",
    ]
    header = f"{'row':<10}{'images':>7}{'FD':>10}{'KID':>11}{'copying':>9}"
    if labelled:
        lines.append(
            f"classifier ({measure['classifier_held_out_accuracy']:.1%} held-out accuracy): confidence (held-out "
            f"images: {measure['held_out_confidence']:.3f}), class shares, and FD on its features"
        )
        header += f"{'confidence':>12}{'min class':>11}{'max class':>11}{'class FD':>10}"
    lines.append(header)
    for row in (*ROWS, GENERATOR_ROW):
        if row not in report:
            continue
        values = report[row]
        share = "—" if values["copying_share"] is None else f"{values['copying_share']:.1%}"
        line = f"{row:<10}{values['num_images']:>7}{values['frechet_distance']:>10.3f}{values['kid']:>11.5f}{share:>9}"
        if labelled:
            fractions = values["class_fractions"]
            line += (
                f"{values['mean_confidence']:>12.3f}{min(fractions):>11.1%}{max(fractions):>11.1%}"
                f"{values['classifier_frechet_distance']:>10.3f}"
            )
        lines.append(line)
    if report["samples"]["copying_share"] > COPY_FLAG:
        lines.append(
            f"warning: {report['samples']['copying_share']:.0%} of the samples are nearer to a training image than "
            f"{1 - measure['copy_quantile']:.0%} of held-out images are: the model may be copying its training data"
        )
    if GENERATOR_ROW in report:
        lines.append("generator: the model's generator alone, G(z) with no Langevin step")
    lines.append("floor: real train images; baseline: a Gaussian fitted to the train pixels")
    return "\n".join(lines)
