"""Sample-quality measures for any data set: the report (``report``), its contrastive encoder (``encoder``), the
labelled sets' classifiers (``classifier``), the real images it compares with (``reference``) and the cache of the
trained networks (``cache``).

Training (its quality figures during a run and at the end), ``hat-ebm sample --quality`` and ``hat-ebm grid`` all
score samples with these.
"""
