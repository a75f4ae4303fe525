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
