"""Evaluation of a trained model: ``fid`` (FID and KID, TTUR protocol), ``ood`` (out-of-distribution metrics of an
exported SavedModel) and its offline suite ``ood_suite``, ``longrun`` (long-run chains) and ``analytic`` (samplers
on laws with known moments). Sample-quality measures are ``hat_ebm_tf.quality``."""
