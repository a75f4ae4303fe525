"""The training side: configs (``config``), the training job (``train``), its callbacks, outputs and plots, and
the run directory (``run_dir.RunDir``)."""
