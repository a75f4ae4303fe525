"""``TrainStepModel``: what the training steps of ``HatEBM`` and ``Autoencoder`` share.

Both train with ``fit``, one global batch of images a step, split over the
replicas of a ``tf.distribute`` strategy. The base class owns, for both:

- the batch's check: image tensors only (no labels), of the model's
  ``image_shape``, with values in [-1, 1];
- the per-row seeds of a step: row ``i`` of the step's global batch is seeded
  ``(step_seed(seed, step), i)``, so that every replica draws other rows and a
  run draws the same numbers on 1 or N replicas;
- one optimizer update from a loss: the loss of this replica's rows divided
  by the number of replicas (the strategy sums the replicas' gradients into
  the gradient of the global mean), scaled by the optimizer (Keras's
  ``LossScaleOptimizer`` under ``mixed_float16``), its gradient, an optional
  bound on its norm, and the update.

``Tracker``, the running mean that both report their losses with, lives here too.
"""

import keras
import tensorflow as tf

from hat_ebm_tf.distribute import replica_info
from hat_ebm_tf.layers import PACKAGE
from hat_ebm_tf.rng import row_seeds, step_seed
from hat_ebm_tf.validation import check_images


@keras.saving.register_keras_serializable(package=PACKAGE)
class Tracker(keras.metrics.Mean):
    """Running mean of a training quantity, as reported by ``fit``.

    Under ``MultiWorkerMirroredStrategy`` Keras 3 concatenates the step
    outputs of all replicas along axis 0 (keras #20585, TF #72388), which
    fails on scalars; there the result is returned with shape ``[1]``.
    """

    def result(self):
        value = super().result()
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            return tf.reshape(value, [1])
        return value


@keras.saving.register_keras_serializable(package=PACKAGE)
class TrainStepModel(keras.Model):
    """Base of the models trained by this package: the checked batch, the step's seeds and the update of a loss.

    A subclass sets ``image_shape`` (``(H, W, C)``) before it trains, and
    names in ``NETWORKS`` its constructor arguments that are Keras networks
    held as attributes of the same name: ``get_config`` and ``from_config``
    serialise them as nested Keras objects.

    Args:
        seed: integer seed of the training randomness; with the step counter
            it fixes every draw, so that a resumed run continues the same streams.
        **kwargs: passed to ``keras.Model`` (e.g. ``name``).
    """

    NETWORKS = ()

    def __init__(self, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)

    def checked_batch(self, data):
        """The training batch ``[B, H, W, C]`` in [-1, 1], checked (a ValueError naming the problem).

        Keras 3 with ``MultiWorkerMirroredStrategy`` (keras #20585, TF
        #72388) needs a dataset of images alone, so a tuple, list or dict of
        tensors is refused rather than guessed at.
        """
        where = f"{type(self).__name__}.train_step"
        if isinstance(data, (tuple, list, dict)):
            raise ValueError(
                f"{where}: the dataset must yield image tensors only, not {type(data).__name__}; map it with "
                "`lambda x, *_: x`"
            )
        return check_images(data, self.image_shape, where, value_range=(-1.0, 1.0))

    def step_seeds(self, batch):
        """``(step, seeds)``: the optimizer's step (int64) and the row seeds ``[batch, 2]`` of this replica's rows.

        Args:
            batch: the number of rows of this replica's batch (an integer tensor).
        """
        replica_id = replica_info()[0]
        step = tf.cast(tf.convert_to_tensor(self.optimizer.iterations), tf.int64)
        # Seeds on the global row index: every replica draws other rows, and a run gives the same numbers on 1 or
        # N replicas.
        offset = tf.cast(replica_id, tf.int64) * tf.cast(batch, tf.int64)
        return step, row_seeds(step_seed(self.seed, step), batch, offset=offset)

    def apply_loss(self, optimizer, variables, loss_fn, max_grad_norm=None):
        """One update of ``variables`` by ``optimizer`` with the gradient of the loss that ``loss_fn`` computes.

        Args:
            optimizer: the optimizer of ``variables`` (a ``LossScaleOptimizer``
                under ``mixed_float16``).
            variables: the trainable variables to update.
            loss_fn: called with no argument under the gradient tape; returns
                the loss of this replica's rows (the mean over them), or a
                tuple whose first item is that loss.
            max_grad_norm: clip each gradient to this norm, or None.

        Returns:
            ``(outputs, gradient_norm)``: what ``loss_fn`` returned, and the
            global norm of the gradient before clipping (of the unscaled loss).
        """
        num_replicas = replica_info()[1]
        with tf.GradientTape() as tape:
            outputs = loss_fn()
            loss = outputs[0] if isinstance(outputs, tuple) else outputs
            # A loss-scale optimizer scales the loss (a no-op for other optimizers) and unscales the gradients itself.
            scaled = optimizer.scale_loss(loss / num_replicas)
        grads = tape.gradient(scaled, variables)
        norm, bound = tf.linalg.global_norm(grads), max_grad_norm
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            # The gradients are of the scaled loss: the norm and the bound are brought to its units.
            scale = tf.cast(optimizer.scale_loss(tf.constant(1.0)), norm.dtype)
            norm = norm / scale
            bound = None if bound is None else bound * scale
        if bound is not None:
            grads = [tf.clip_by_norm(g, bound) for g in grads]
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return outputs, norm

    def tracker_results(self):
        """``{name: running mean}`` of every tracker: what ``train_step`` returns and ``fit`` logs."""
        return {tracker.name: tracker.result() for tracker in self.metrics}

    def get_config(self):
        networks = {name: keras.saving.serialize_keras_object(getattr(self, name)) for name in self.NETWORKS}
        return {**super().get_config(), **networks, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in cls.NETWORKS:
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
