"""SavedModel export for TF Serving, and loading for out-of-distribution scoring.

``export.savedmodel`` (needs ``hat_ebm_tf``) writes the SavedModel;
``export.scoring`` (TensorFlow and NumPy only) loads it and scores images.
Importing this package imports the scoring side only.
"""

from export.scoring import Scorer, aupr, auroc, fpr_at_tpr, load_scorer, ood_metrics

__all__ = ["Scorer", "aupr", "auroc", "fpr_at_tpr", "load_scorer", "ood_metrics"]
