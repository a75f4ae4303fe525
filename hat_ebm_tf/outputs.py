"""The files a command writes: checked before any long work starts, written whole, and their leftovers removed.

A command refuses (``RunDirError``) an output that it could not write, or that
would overwrite an earlier result it was not asked to replace, instead of
failing or destroying something after minutes of sampling or training
(``check_writable_dir``, ``output_file``). A file that a reader may find at
any moment (a run's ``history.json`` and ``config.yaml``, TensorBoard's event
files, TF Serving's ``models.config``, the digits classifier's cache) is
written to a temporary file beside it and renamed over it (``replacing``,
``write_atomically``), so that a reader or a killed writer never leaves half a
file. What killed writers leave behind is removed by
``remove_stale_temporaries``.
"""

import contextlib
import os
import shutil
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


@contextlib.contextmanager
def replacing(path, temporary=None):
    """Write ``path`` atomically: the block writes the temporary file it is given, which then replaces ``path``.

    The temporary is in ``path``'s directory, so that ``os.replace`` renames
    within one file system: readers see the old file or the new one, whole.
    If the block fails, the temporary is deleted and ``path`` is untouched.

    Args:
        path: the file to write.
        temporary: the temporary's path, beside ``path``; by default
            ``.NAME.PID.tmp`` (hidden, and one per process). Give another where
            readers pick files by name (TensorBoard reads every file whose
            name holds "tfevents").

    Yields:
        ``Path`` of the temporary file to write.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp") if temporary is None else Path(temporary)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # after a failure; after the rename, there is nothing left to delete


def write_atomically(path, data):
    """Write ``data`` (``str`` or ``bytes``) to ``path`` atomically (``replacing``)."""
    with replacing(path) as temporary:
        if isinstance(data, bytes):
            temporary.write_bytes(data)
        else:
            temporary.write_text(data)


def remove_stale_temporaries(directory, pattern, in_use=None):
    """Delete the temporary files and directories that killed writers left in ``directory``.

    Args:
        directory: where to look (absent: nothing to do).
        pattern: ``Path.glob`` pattern of the temporaries' names (``**/`` in
            front searches below ``directory`` too).
        in_use: ``path → bool``, true for a temporary that a live writer may
            still be writing (it is kept); None when none can be, e.g. while
            the caller holds the directory's lock.

    Returns:
        The removed paths, sorted.
    """
    removed = []
    for path in sorted(Path(directory).glob(pattern)):
        if in_use is not None and in_use(path):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
