# Deterministic autoencoder whose decoder Hat EBM retrofits (Hill et al.,
# NeurIPS 2022, Sec. 4.2), trained as in the reference implementation
# (github.com/point0bar1/hat-ebm): MSE × factor with latent noise. Independent code.
"""``Autoencoder``: encoder + decoder trained with ``fit``, and the prior (Gaussian or mixture) fitted to its codes."""

import math

import keras
import numpy as np
import tensorflow as tf
from sklearn.mixture import GaussianMixture

from hat_ebm_tf.layers import PACKAGE
from hat_ebm_tf.networks import PriorDecoder, add_prior_weights
from hat_ebm_tf.rng import STREAM_AUTOENCODER_NOISE, stateless_row_normal
from hat_ebm_tf.train_step import Tracker, TrainStepModel
from hat_ebm_tf.validation import check_images

# Added to each mixture component's covariance (in the codes' units: each code coordinate has variance about 1).
MIXTURE_REGULARISATION = 1e-3


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
        seed: integer seed of the latent noise (and of the mixture's fit).
        prior_components: K ≥ 1, the Gaussians of the prior that
            ``fit_latent_prior`` fits to the codes (1: one Gaussian).

    Call:
        images: ``[B, H, W, C]`` float in [-1, 1].

    Returns:
        ``[B, H, W, C]`` reconstructions (no noise, moving batch-norm statistics).

    Attributes:
        prior_weights, prior_mean, prior_scale: ``[K]``, ``[K, D]`` and
            ``[K, D, D]``, the mixture fitted to the codes of the training
            images (``fit_latent_prior``; until then K equal ``N(0, I)``),
            which ``prior_decoder`` decodes from ``N(0, I)``.
    """

    NETWORKS = ("encoder", "decoder")

    def __init__(self, encoder, decoder, latent_noise=2e-2, loss_factor=1000.0, seed=0, prior_components=1, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not latent_noise >= 0:
            raise ValueError(f"Autoencoder: latent_noise={latent_noise!r} must be >= 0")
        self.encoder, self.decoder = encoder, decoder
        self.latent_noise, self.loss_factor = float(latent_noise), float(loss_factor)
        self.image_shape = (encoder.image_size, encoder.image_size, encoder.channels)
        self.loss_tracker = Tracker(name="loss")
        self.prior_components = prior_components
        add_prior_weights(self, prior_components, math.prod(decoder.latent_shape))
        self.built = True

    def fit_latent_prior(self, images, batch_size=500):
        """Fit the prior to the codes of ``images`` ``[N, H, W, C]`` in [-1, 1] (N ≥ max(2, K)).

        One component: ``prior_mean`` becomes the codes' mean and
        ``prior_scale`` the symmetric square root of their covariance, so
        that ``mean + scale·ε``, ``ε ~ N(0, I)``, has the codes' mean and
        covariance. K components: a full-covariance mixture fitted by EM
        (scikit-learn's ``GaussianMixture``, seeded by ``seed``).
        """
        codes = np.concatenate(
            [
                np.asarray(self.encoder(images[i : i + batch_size]), np.float64)
                for i in range(0, len(images), batch_size)
            ]
        ).reshape(len(images), -1)
        needed = max(2, self.prior_components)
        if len(codes) < needed:
            raise ValueError(
                f"Autoencoder.fit_latent_prior: {len(codes)} image(s); a prior of {self.prior_components} "
                f"component(s) needs at least {needed}"
            )
        if self.prior_components == 1:
            weights, means, covariances = np.ones(1), codes.mean(axis=0)[None], np.cov(codes, rowvar=False)[None]
        else:
            # reg_covar keeps each component's covariance positive definite with fewer codes than dimensions.
            mixture = GaussianMixture(
                self.prior_components,
                covariance_type="full",
                reg_covar=MIXTURE_REGULARISATION,
                random_state=self.seed,
            ).fit(codes)
            weights, means, covariances = mixture.weights_, mixture.means_, mixture.covariances_
        eigenvalues, eigenvectors = np.linalg.eigh(covariances)
        scales = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))[:, None, :]) @ np.swapaxes(eigenvectors, 1, 2)
        self.prior_weights.assign((weights / weights.sum()).astype(np.float32))
        self.prior_mean.assign(means.astype(np.float32))
        self.prior_scale.assign(scales.astype(np.float32))

    def prior_decoder(self):
        """A ``PriorDecoder`` of this decoder (shared, not copied) and its fitted prior."""
        decoder = PriorDecoder(self.decoder, self.prior_components)
        for name in ("prior_weights", "prior_mean", "prior_scale"):
            getattr(decoder, name).assign(getattr(self, name))
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
        return {
            **super().get_config(),
            "latent_noise": self.latent_noise,
            "loss_factor": self.loss_factor,
            "prior_components": self.prior_components,
        }
