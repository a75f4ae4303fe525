"""Sub-commands of ``hat-ebm``: each module defines ``register(subparsers)``.

``hat_ebm_tf.cli.main`` discovers the modules of this package, so a new command is a
new module here and nothing else.
"""
