# Deterministic autoencoder whose decoder Hat EBM retrofits (Hill et al.,
# NeurIPS 2022, Sec. 4.2), trained as in the reference implementation
# (github.com/point0bar1/hat-ebm): MSE × factor with latent noise. Independent code.
"""``Autoencoder``: encoder + decoder trained with ``fit``."""

import keras
import tensorflow as tf

from hat_ebm_tf.distribute import replica_info
from hat_ebm_tf.layers import PACKAGE
from hat_ebm_tf.model import Tracker
from hat_ebm_tf.rng import STREAM_AUTOENCODER_NOISE, row_seeds, stateless_row_normal, step_seed
from hat_ebm_tf.validation import check_images


@keras.saving.register_keras_serializable(package=PACKAGE)
class Autoencoder(keras.Model):
    """Encoder + decoder trained to reconstruct images from noised latents.

    Loss: ``loss_factor · mean (D(E(x) + σ·N(0, I)) − x)²``, ``σ = latent_noise``.

    Args:
        encoder: ``[B, H, W, C]`` → ``[B, *latent_shape]``.
        decoder: ``[B, *latent_shape]`` → ``[B, H, W, C]``; it needs a
            ``latent_shape`` attribute (``RetrofitDecoder`` has one).
        latent_noise: σ of the latent noise (reference: 2e-2).
        loss_factor: MSE weight (reference: 1000).
        seed: integer seed of the latent noise.

    Call:
        images: ``[B, H, W, C]`` float in [-1, 1].

    Returns:
        ``[B, H, W, C]`` reconstructions (no noise, moving batch-norm statistics).
    """

    def __init__(self, encoder, decoder, latent_noise=2e-2, loss_factor=1000.0, seed=0, **kwargs):
        super().__init__(**kwargs)
        if not latent_noise >= 0:
            raise ValueError(f"Autoencoder: latent_noise={latent_noise!r} must be >= 0")
        self.encoder, self.decoder = encoder, decoder
        self.latent_noise, self.loss_factor, self.seed = float(latent_noise), float(loss_factor), int(seed)
        self.image_shape = (encoder.image_size, encoder.image_size, encoder.channels)
        self.loss_tracker = Tracker(name="loss")
        self.built = True

    def compile(self, *args, **kwargs):
        """``keras.Model.compile`` (same arguments), and the optimizer's slots built now, over both networks' weights.

        Keras would otherwise create the slots inside ``fit``'s first trace, where
        each becomes a lifted initializer and the step is traced twice: 8.7 s
        instead of 3.6 s before a tiny model's first step (as ``HatEBM.compile``).
        """
        super().compile(*args, **kwargs)
        self.optimizer.build(self.trainable_weights)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, images, training=False):
        images = check_images(images, self.image_shape, "Autoencoder")
        return self.decoder(self.encoder(images), training=training)

    @tf.autograph.experimental.do_not_convert  # no tensor-dependent Python control flow (as HatEBM.train_step)
    def train_step(self, data):
        if isinstance(data, (tuple, list, dict)):
            raise ValueError(
                f"Autoencoder.train_step: the dataset must yield image tensors only, not {type(data).__name__}"
            )
        images = check_images(data, self.image_shape, "Autoencoder.train_step", value_range=(-1.0, 1.0))
        replica, num_replicas = replica_info()
        step = tf.cast(tf.convert_to_tensor(self.optimizer.iterations), tf.int64)
        batch = tf.cast(tf.shape(images)[0], tf.int64)
        # Per-row seeds on the global row index (as HatEBM.train_step): the same noise on 1 or N replicas.
        seeds = row_seeds(step_seed(self.seed, step), batch, offset=tf.cast(replica, tf.int64) * batch)
        variables = self.trainable_weights
        with tf.GradientTape() as tape:
            latents = self.encoder(images)
            noise = stateless_row_normal(seeds, STREAM_AUTOENCODER_NOISE, latents.shape[1:])
            noisy = latents + self.latent_noise * noise
            recon = tf.cast(self.decoder(noisy, training=True), tf.float32)
            loss = self.loss_factor * tf.reduce_mean(tf.square(recon - images))
            scaled = loss / num_replicas
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables, strict=True))
        self.loss_tracker.update_state(loss)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "latent_noise": self.latent_noise,
            "loss_factor": self.loss_factor,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)
