"""Sample-quality measures: ``digits`` (a trusted quality measure for digits samples).

Training (its quality figures during a run), ``hat-ebm sample --quality`` and
the evaluation all score samples with these.
"""
