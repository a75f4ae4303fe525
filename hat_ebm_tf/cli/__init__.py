"""The ``hat-ebm`` command line: ``main`` parses and dispatches; each sub-command is a module of ``commands``."""

from hat_ebm_tf.cli.main import main

__all__ = ["main"]
