"""Checks of the paths a command writes, made before any long work starts.

A command refuses (``RunDirError``) an output that it could not write, or that
would overwrite an earlier result it was not asked to replace, instead of
failing or destroying something after minutes of sampling or training.
"""

import os
import tempfile
from pathlib import Path

from hat_ebm_tf.errors import RunDirError


def _nearest_existing(path):
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(directory, what, path):
    """Create and delete a file in ``directory``: the one check that also holds for root and read-only mounts."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as err:
        raise RunDirError(
            f"{what} {os.fspath(path)!r} is not writable: {err.strerror} in {os.fspath(directory)!r}"
        ) from err


def check_writable_dir(path, what):
    """Refuse a directory that is a file, or that cannot be created or written.

    Nothing is created: the nearest existing ancestor is probed.

    Args:
        path: the directory (it need not exist).
        what: its name in messages, e.g. ``"--run-dir"``.

    Raises:
        RunDirError: naming the path and the problem.
    """
    path = Path(path)
    existing = _nearest_existing(path)
    if not existing.is_dir():
        where = "" if existing == path else f" ({os.fspath(existing)!r} is a file)"
        raise RunDirError(f"{what} {os.fspath(path)!r} is not a directory{where}")
    _probe(existing, what, path)


def output_file(path, what, overwrite=False, suffix=None, default_name=None):
    """The file a command will write, after checking that it can be written and replaces nothing unasked.

    Args:
        path: the path given (``str`` or ``Path``).
        what: its flag, for messages (``"--out"``).
        overwrite: an existing file may be replaced.
        suffix: appended when the name lacks it (as ``numpy.savez`` does),
            so that the returned path is the one written, e.g. ``".npz"``.
        default_name: the file name used when ``path`` is a directory (an
            existing one, or a path ending in a separator); None refuses
            directories.

    Returns:
        ``Path`` of the file to write.

    Raises:
        RunDirError: a directory given without a ``default_name``, a missing
            or unwritable directory, or an existing file without ``overwrite``.
    """
    text = os.fspath(path)
    path = Path(text)
    if path.is_dir() or text.endswith(("/", os.sep)):
        if default_name is None:
            raise RunDirError(f"{what} {text}: a directory; give a file name")
        path = path / default_name
    if suffix and path.suffix != suffix:
        path = path.with_name(path.name + suffix)
    if not path.parent.is_dir():
        raise RunDirError(f"{what} {os.fspath(path)}: no directory {os.fspath(path.parent)!r}")
    if path.is_dir():
        raise RunDirError(f"{what} {os.fspath(path)}: a directory")
    if path.exists() and not overwrite:
        raise RunDirError(f"{what} {os.fspath(path)}: the file exists; pass --overwrite to replace it")
    _probe(path.parent, what, path)
    return path
