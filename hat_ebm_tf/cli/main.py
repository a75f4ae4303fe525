"""The ``hat-ebm`` command line; sub-commands live in ``hat_ebm_tf.cli.commands``.

Every failure the user can cause ends in one line on stderr,
``hat-ebm <command>: <kind>: <message>``, and an exit code of ``EXIT_CODES``
(documented in docs/formats.md), never a traceback.
"""

import argparse
import importlib
import importlib.abc
import importlib.util
import os
import pkgutil
import signal
import sys

# TensorFlow's C++ logging (CUDA probes, "E0000 ... failed call to cuInit" on a CPU machine), silenced unless
# the user sets the variable: level 3 keeps only fatal errors, and TensorFlow is imported with its start-up
# lines discarded (_QuietTensorFlowImport), which its libraries write before they read any setting.
TF_LOG_ENV = "TF_CPP_MIN_LOG_LEVEL"
_QUIET_TENSORFLOW = TF_LOG_ENV not in os.environ
os.environ.setdefault(TF_LOG_ENV, "3")

import hat_ebm_tf.cli.commands  # noqa: E402
from hat_ebm_tf import errors  # noqa: E402

ENVIRONMENT_HELP = (
    f"environment: {TF_LOG_ENV} unset, hat-ebm silences TensorFlow's C++ logging (its start-up lines about CUDA "
    f"and CPU features included); set it, e.g. {TF_LOG_ENV}=0, to see all of it."
)

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


class _QuietLoader(importlib.abc.Loader):
    """The loader of the ``tensorflow`` package, run with file descriptor 2 on /dev/null.

    TensorFlow's C++ libraries log as they load, to the process's standard
    error and before they read ``TF_CPP_MIN_LOG_LEVEL``. A failed import still
    raises its exception, shown once standard error is back.
    """

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            self.loader.exec_module(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
            module.__loader__ = module.__spec__.loader = self.loader  # the package's own loader from here on


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders do, with a ``_QuietLoader``; it leaves ``sys.meta_path`` then."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def build_parser():
    parser = argparse.ArgumentParser(
        prog="hat-ebm", description="Hat EBM (Hill et al., NeurIPS 2022) in TensorFlow/Keras.", epilog=ENVIRONMENT_HELP
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(hat_ebm_tf.cli.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"hat_ebm_tf.cli.commands.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    for command in subparsers.choices.values():
        command.epilog = ENVIRONMENT_HELP
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
    quiet = _QuietTensorFlowImport() if _QUIET_TENSORFLOW and "tensorflow" not in sys.modules else None
    if quiet is not None:
        sys.meta_path.insert(0, quiet)
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
        if quiet in sys.meta_path:  # the command never imported TensorFlow
            sys.meta_path.remove(quiet)


if __name__ == "__main__":
    main()
