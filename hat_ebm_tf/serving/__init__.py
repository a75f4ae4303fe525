"""Serving: SavedModel export for TF Serving, its OOD calibration, and scoring of exported SavedModels.

``hat_ebm_tf.serving.savedmodel`` (TensorFlow and the model) writes the
SavedModel, with the signatures of ``hat_ebm_tf.serving.signatures`` and, in a
calibrated export, the detector of ``hat_ebm_tf.serving.calibration``;
``hat_ebm_tf.serving.scoring`` (TensorFlow and NumPy only, never
Keras) loads it and scores images. Importing this package imports the scoring
side only. The same scoring module, as one stand-alone file, is the
repository's ``export/hat_ebm_scoring.py``.
"""

from hat_ebm_tf.serving.scoring import Scorer, aupr, auroc, fpr_at_tpr, load_scorer, ood_metrics

__all__ = ["Scorer", "aupr", "auroc", "fpr_at_tpr", "load_scorer", "ood_metrics"]
