"""tf.distribute helpers used inside ``train_step``."""

import tensorflow as tf


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
