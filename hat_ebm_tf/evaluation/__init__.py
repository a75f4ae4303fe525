"""Evaluation of a trained model: ``digits_quality`` (a trusted quality measure for digits samples), ``fid``
(FID and KID, TTUR protocol) and ``ood`` (out-of-distribution metrics of an exported SavedModel)."""
