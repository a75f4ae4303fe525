"""A run's TensorBoard logs kept in step with its checkpoints: the events of lost steps are dropped on resume.

A run resumed (after a kill, or a signal between two checkpoints) or rolled
back (after a divergence) from the checkpoint of step S trains the steps
after S again and logs them again. Its event files are rewritten first
without the events of those steps, so that every reader (TensorBoard's
Python loader and its Rust data server alike, or ``summary_iterator``) sees
each step once. This is exact where TensorBoard's own mechanism, a
``SessionLog.START`` event that makes its Python loader purge the steps at
and after its own, is not: the Rust data server ignores it, and it only
works when its file sorts by name between the old and the new files, which
files written in the same second do not promise.
"""

import logging
from pathlib import Path

import tensorflow as tf
from tensorboard.compat.proto import event_pb2

from hat_ebm_tf.outputs import remove_stale_temporaries, replacing

log = logging.getLogger("hat_ebm_tf.training")

# Without "tfevents" in its name: TensorBoard reads every file whose name holds it, a leftover one too.
_TEMPORARY = ".dropping-events.tmp"


def _records(path):
    """The serialized events of an event file, in order, up to a torn last record (a writer killed mid-write)."""
    records = []
    try:
        for record in tf.data.TFRecordDataset(str(path)):
            records.append(record.numpy())
    except tf.errors.DataLossError:
        pass  # TensorBoard stops at the same point: the record is incomplete
    return records


def drop_events_after(log_dir, step):
    """Rewrite the event files under ``log_dir`` without the events of the steps after ``step``.

    Files with no such event are left as they are; the others are replaced
    atomically by a copy of their events at steps ≤ ``step`` (the
    ``file_version`` header, at step 0, included), byte for byte.

    Args:
        log_dir: a run's TensorBoard directory, searched recursively (absent: nothing to do).
        step: the step of the checkpoint training goes on from; summaries are logged at the optimizer's step.

    Returns:
        The number of events dropped.
    """
    remove_stale_temporaries(log_dir, f"**/{_TEMPORARY}")  # of a rewrite that was killed; the files are intact
    dropped = 0
    for path in sorted(Path(log_dir).rglob("*tfevents*")):
        if not path.is_file():
            continue
        records = _records(path)
        kept = [record for record in records if event_pb2.Event.FromString(record).step <= step]
        if len(kept) == len(records):
            continue
        with replacing(path, path.with_name(_TEMPORARY)) as temporary, tf.io.TFRecordWriter(str(temporary)) as writer:
            for record in kept:
                writer.write(record)
        dropped += len(records) - len(kept)
    if dropped:
        log.info("dropped %d TensorBoard events after step %d: training goes on from that step", dropped, step)
    return dropped
