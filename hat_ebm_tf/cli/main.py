"""The ``hat-ebm`` command line; sub-commands live in ``hat_ebm_tf.cli.commands``.

Every failure the user can cause ends in one line on stderr,
``hat-ebm <command>: <kind>: <message>``, and an exit code of ``EXIT_CODES``
(documented in the README), never a traceback.
"""

import argparse
import importlib
import os
import pkgutil
import signal
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import hat_ebm_tf.cli.commands
from hat_ebm_tf import errors

# (error class name, exit code, kind) in the order they are matched; the
# classes live in hat_ebm_tf.errors.
# 2 is also argparse's code for a bad command line.
EXIT_CODES = (
    ("TrainingInterrupted", None, "interrupted"),  # 128 + the signal: 130 (SIGINT), 143 (SIGTERM)
    ("ConfigError", 2, "error"),  # a config or flag value, LimitError included
    ("DataError", 3, "data error"),
    ("ModelFileError", 3, "model file error"),
    ("RunDirError", 4, "output error"),
    ("TrainingDiverged", 5, "training diverged"),
    ("MissingDependencyError", 1, "missing dependency"),  # an optional extra a command needs
)


class CommandFailed(SystemExit):
    """The exit of a failed command: ``code`` is the exit code; ``str()`` is the line printed on stderr."""

    def __init__(self, code, message):
        super().__init__(code)
        self.message = message

    def __str__(self):
        return self.message


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that cleanups (``finally``) run."""


def _terminate(signum, frame):
    raise _Terminated


def build_parser():
    parser = argparse.ArgumentParser(
        prog="hat-ebm", description="Hat EBM (Hill et al., NeurIPS 2022) in TensorFlow/Keras."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(hat_ebm_tf.cli.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"hat_ebm_tf.cli.commands.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser


def _one_line(text):
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def describe_failure(err):
    """``(exit code, kind, message)`` of an exception a command raised, or None for a bug (a traceback)."""
    for name, code, kind in EXIT_CODES:
        if isinstance(err, getattr(errors, name)):
            return (128 + err.signum if code is None else code), kind, _one_line(err)
    if isinstance(err, _Terminated):
        return 128 + signal.SIGTERM, "interrupted", "terminated by SIGTERM"
    if isinstance(err, KeyboardInterrupt):
        return 128 + signal.SIGINT, "interrupted", "interrupted by SIGINT"
    if isinstance(err, MemoryError):
        return 1, "out of memory", _one_line(err) or "a buffer could not be allocated; lower the sizes"
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(err, tf.errors.ResourceExhaustedError):
        return 1, "out of memory", _one_line(err.message).split("; ")[0]
    if tf is not None and isinstance(err, tf.errors.OpError):  # e.g. an in-graph check of a SavedModel input
        return 1, "error", _one_line(err.message).split("; ")[0]
    if isinstance(err, OSError):  # file system: permissions, a full disk, ...
        return 1, "error", _one_line(err)
    if isinstance(err, ValueError):
        return 1, "error", _one_line(err)
    return None


def main(argv=None):
    args = build_parser().parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        args.func(args)
    except (Exception, KeyboardInterrupt) as err:
        failure = describe_failure(err)
        if failure is None:
            raise
        code, kind, message = failure
        line = f"hat-ebm {args.command}: {kind}: {message}"
        print(line, file=sys.stderr)
        raise CommandFailed(code, line) from None
    finally:
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    main()
