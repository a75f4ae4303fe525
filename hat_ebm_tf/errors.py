"""The library's error types: one per failure class, each a message that names the problem.

``hat-ebm`` turns each into a one-line message and an exit code
(``hat_ebm_tf.cli.main.EXIT_CODES``, documented in docs/formats.md). The value errors
subclass ``ValueError``, so callers that catch ``ValueError`` keep working.
"""


class HatEBMError(Exception):
    """Base of the errors below."""


class ConfigError(HatEBMError, ValueError):
    """A config file, config value or command-line value is invalid; the message names the key."""


class LimitError(ConfigError):
    """A size is beyond a limit (a memory estimate, a width).

    The message names the key, the limit and how to raise it.
    """


class DataError(HatEBMError, ValueError):
    """A data source is missing, unprepared, empty or malformed; the message names it."""


class ModelFileError(HatEBMError, ValueError):
    """A model file (``.keras``, checkpoint, SavedModel) is missing, unreadable or of the wrong kind."""


class RunDirError(HatEBMError, ValueError):
    """An output cannot be written as asked.

    A run directory of another run or config, an existing result file (without
    ``--overwrite``), a lock held by another process, or a path that is not
    writable; the message says which, and how to proceed.
    """


class MissingDependencyError(HatEBMError, ImportError):
    """An optional dependency a command needs is not installed; the message says how to install it."""


class TrainingDiverged(HatEBMError, RuntimeError):
    """Training stopped on a non-finite or out-of-bounds quantity; the message names the step and quantity."""


class TrainingInterrupted(HatEBMError):
    """Training stopped on a signal after checkpointing; ``signum`` is the signal (SIGINT or SIGTERM).

    Attributes:
        signum: the signal number, e.g. ``signal.SIGINT``.
    """

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = int(signum)
