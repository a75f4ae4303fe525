"""tf.distribute: choosing a strategy, and the helpers ``train_step`` uses under one.

Keras 3 with ``MultiWorkerMirroredStrategy`` has two known limits (keras
#20585, TF #72388) that this package is designed around: datasets yield image
tensors only (no tuples or dicts), and ``train_step`` returns scalar metrics.
XLA: Keras turns ``jit_compile`` off on CPU and under strategies; the sampler
can be compiled on its own (``LangevinConfig`` users wrap it in
``tf.function(jit_compile=True)``), which helps on GPU, not on CPU.
"""

import json
import os

import tensorflow as tf

from hat_ebm_tf.choices import STRATEGIES

# Collective group keys reserved per MirroredStrategy; far more than the
# groups one strategy creates (one per device set).
_KEYS_PER_STRATEGY = 10_000


def mirrored_strategy(devices=None):
    """A ``MirroredStrategy`` whose collectives cannot collide with another one's.

    TensorFlow starts every ``MirroredStrategy``'s collective group keys at 1
    (a class attribute), so a second strategy in the same process reuses the
    first one's (group, instance) keys. Synchronized batch norm all-reduces
    with collectives, and the second strategy's ops then meet the first one's
    under the same keys: "Shape mismatch in the collective instance 100".
    Each strategy made here gets its own key range, as TensorFlow's own tests do.

    Args:
        devices: device names; default all local GPUs, or all logical CPUs
            when there is no GPU.
    """
    if devices is None:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
    tf.distribute.MirroredStrategy._collective_key_base += _KEYS_PER_STRATEGY
    return tf.distribute.MirroredStrategy(devices)


def make_strategy(kind="auto", tpu=None):
    """A ``tf.distribute.Strategy`` by name.

    Args:
        kind: ``auto`` (TPU when ``tpu`` is given, multi-worker when
            ``TF_CONFIG`` names several workers, mirrored over several GPUs,
            else the default strategy), ``cpu`` (one CPU device),
            ``mirrored`` (all local GPUs, or all logical CPUs without GPUs),
            ``multi_worker`` (``MultiWorkerMirroredStrategy`` from
            ``TF_CONFIG``) or ``tpu`` (``TPUClusterResolver``).
        tpu: TPU name or address for the resolver (``tpu``; "" on a TPU VM).

    Raises:
        ValueError: for an unknown kind, or ``multi_worker`` without ``TF_CONFIG``.
    """
    if kind not in STRATEGIES:
        raise ValueError(f"strategy={kind!r}: expected one of {list(STRATEGIES)}")
    if kind == "auto":
        workers = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", [])
        if tpu is not None:
            kind = "tpu"
        elif len(workers) > 1:
            kind = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            return tf.distribute.get_strategy()
    if kind == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if kind == "mirrored":
        return mirrored_strategy()
    if kind == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy='multi_worker' reads the cluster from TF_CONFIG, which is not set")
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def replica_info():
    """``(replica_id, num_replicas)`` in sync of the current replica; ``(0, 1)`` outside a strategy.

    Hand-written losses are divided by ``num_replicas`` before the optimizer
    sums gradients across replicas, so that the update is the global mean.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None:  # cross-replica context, e.g. eager calls inside strategy.scope()
        return 0, 1
    return ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync


def all_gather(value):
    """Concatenate ``value`` from every replica along axis 0 (identity on one replica)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return value
    return ctx.all_gather(value, axis=0)


def scatter_rows(variable, rows, values):
    """Set ``variable[rows] = values`` on every copy of a (possibly mirrored) variable.

    ``MirroredVariable`` has no scatter ops in replica context, so under a
    strategy the update runs in cross-replica context (``merge_call``), each
    device writing its own replica's values. The values must therefore be the
    same on every replica (e.g. gathered with ``all_gather``).

    Args:
        variable: a ``tf.Variable`` (or distributed variable) ``[N, ...]``.
        rows: ``[K, 1]`` int64 row indices.
        values: ``[K, ...]`` new rows.
    """
    if not tf.distribute.has_strategy() or tf.distribute.get_replica_context() is None:
        variable.scatter_nd_update(rows, values)
        return

    def update(strategy, rows, values):
        strategy.extended.update(variable, lambda v, r, u: v.scatter_nd_update(r, u), args=(rows, values), group=False)

    tf.distribute.get_replica_context().merge_call(update, args=(rows, values))
