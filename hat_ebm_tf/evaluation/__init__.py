"""Evaluation of samples beyond FID: ``digits_quality``, a trusted quality measure for digits samples."""
