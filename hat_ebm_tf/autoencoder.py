# Deterministic autoencoder whose decoder Hat EBM retrofits (Hill et al.,
# NeurIPS 2022, Sec. 4.2), trained as in the reference implementation
# (github.com/point0bar1/hat-ebm): MSE × factor with latent noise. Independent code.
"""``Autoencoder``: encoder + decoder trained with ``fit``, and the Gaussian prior fitted to its codes."""

import math

import keras
import numpy as np
import tensorflow as tf

from hat_ebm_tf.layers import PACKAGE
from hat_ebm_tf.networks import PriorDecoder
from hat_ebm_tf.rng import STREAM_AUTOENCODER_NOISE, stateless_row_normal
from hat_ebm_tf.train_step import Tracker, TrainStepModel
from hat_ebm_tf.validation import check_images


@keras.saving.register_keras_serializable(package=PACKAGE)
class Autoencoder(TrainStepModel):
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

    Attributes:
        prior_mean, prior_scale: the Gaussian fitted to the codes of the
            training images (``fit_latent_prior``; until then 0 and I), which
            ``prior_decoder`` decodes from ``N(0, I)``.
    """

    NETWORKS = ("encoder", "decoder")

    def __init__(self, encoder, decoder, latent_noise=2e-2, loss_factor=1000.0, seed=0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not latent_noise >= 0:
            raise ValueError(f"Autoencoder: latent_noise={latent_noise!r} must be >= 0")
        self.encoder, self.decoder = encoder, decoder
        self.latent_noise, self.loss_factor = float(latent_noise), float(loss_factor)
        self.image_shape = (encoder.image_size, encoder.image_size, encoder.channels)
        self.loss_tracker = Tracker(name="loss")
        size = math.prod(decoder.latent_shape)
        self.prior_mean = self.add_weight(shape=(size,), initializer="zeros", trainable=False, name="prior_mean")
        self.prior_scale = self.add_weight(
            shape=(size, size), initializer="identity", trainable=False, name="prior_scale"
        )
        self.built = True

    def fit_latent_prior(self, images, batch_size=500):
        """Fit the Gaussian prior to the codes of ``images`` ``[N, H, W, C]`` in [-1, 1] (N ≥ 2).

        ``prior_mean`` becomes the codes' mean and ``prior_scale`` the
        symmetric square root of their covariance, so that ``mean + scale·ε``,
        ``ε ~ N(0, I)``, has the codes' mean and covariance.
        """
        codes = np.concatenate(
            [
                np.asarray(self.encoder(images[i : i + batch_size]), np.float64)
                for i in range(0, len(images), batch_size)
            ]
        ).reshape(len(images), -1)
        if len(codes) < 2:
            raise ValueError(f"Autoencoder.fit_latent_prior: {len(codes)} image(s); a covariance needs at least 2")
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(codes, rowvar=False))
        scale = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T
        self.prior_mean.assign(codes.mean(axis=0).astype(np.float32))
        self.prior_scale.assign(scale.astype(np.float32))

    def prior_decoder(self):
        """A ``PriorDecoder`` of this decoder (shared, not copied) and its fitted prior."""
        decoder = PriorDecoder(self.decoder)
        decoder.prior_mean.assign(self.prior_mean)
        decoder.prior_scale.assign(self.prior_scale)
        return decoder

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
        images = self.checked_batch(data)
        _, seeds = self.step_seeds(tf.shape(images)[0])

        def loss_fn():
            # The noise is added in float32, whatever the encoder computes in (the decoder casts its input).
            latents = tf.cast(self.encoder(images), tf.float32)
            noise = stateless_row_normal(seeds, STREAM_AUTOENCODER_NOISE, latents.shape[1:])
            recon = tf.cast(self.decoder(latents + self.latent_noise * noise, training=True), tf.float32)
            return self.loss_factor * tf.reduce_mean(tf.square(recon - images))

        loss, _ = self.apply_loss(self.optimizer, self.trainable_weights, loss_fn)
        self.loss_tracker.update_state(loss)
        return self.tracker_results()

    def get_config(self):
        return {**super().get_config(), "latent_noise": self.latent_noise, "loss_factor": self.loss_factor}
