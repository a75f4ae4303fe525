# Hat EBM as a Keras model (Hill, Nijkamp, Mitchell, Pang, Zhu; NeurIPS 2022).
# The training step reproduces the reference implementation's
# (github.com/point0bar1/hat-ebm) as docs/reference.md states it. Independent code.
"""``HatEBM``: the energy ``H(G(z) + y)`` trained with ``model.fit``.

Modes:
    ``synthesis``: conditional form ``p(y | z) p0(z)``, ``z ~ N(0, I)``.
        Langevin runs on ``y`` only, and the generator learns cooperatively,
        regressing onto its own refined samples kept in persistent banks.
    ``refine`` / ``retrofit``: joint form ``p(y, z) ∝ exp(-H(G(z) + y))`` over
        a frozen generator (a pretrained GAN generator, or an autoencoder's
        decoder); Langevin runs on both ``z`` and ``y``.
"""

import keras
import numpy as np
import tensorflow as tf

from hat_ebm_tf.distribute import all_gather, replica_info, scatter_rows
from hat_ebm_tf.langevin_steps import energy_and_gradient, mean_drift_step
from hat_ebm_tf.layers import PACKAGE
from hat_ebm_tf.losses import drift_penalty, generator_regression_loss, maximum_likelihood_loss
from hat_ebm_tf.modes import get_mode
from hat_ebm_tf.rng import SALT_BANK_LATENTS, SALT_DATA_NOISE, row_normal, row_seeds
from hat_ebm_tf.sampler import initial_state, langevin
from hat_ebm_tf.sampler_config import LangevinConfig
from hat_ebm_tf.train_step import Tracker, TrainStepModel
from hat_ebm_tf.validation import check_images

# The samplers' row seeds: ``[B, 2]`` int64 for any batch size ``B``.
_SEEDS = tf.TensorSpec([None, 2], tf.int64)


def _checked_seeds(seeds, method):
    """``seeds`` as an int64 tensor, after checking that it is integer ``[B, 2]`` (a ValueError naming ``method``).

    int64 is what the noise streams key on (``hat_ebm_tf.rng.row_keys``), so
    the cast changes no draw; it gives the samplers one input signature.
    """
    seeds = tf.convert_to_tensor(seeds)
    if seeds.shape.rank != 2 or seeds.shape[1] != 2 or not seeds.dtype.is_integer:
        raise ValueError(f"HatEBM.{method}: seeds must be integer [B, 2], got {seeds.dtype.name} {seeds.shape}")
    return tf.cast(seeds, tf.int64)


def data_energies(model, images, batch_size=250):
    """``H`` of a set of images: ``model.energy`` of ``batch_size`` images at a time, as float64 NumPy ``[N]``.

    The energies of real data, which OOD calibration (``hat_ebm_tf.serving.calibration``)
    and long runs (``hat_ebm_tf.evaluation.longrun``) compare chains and inputs with.

    Args:
        model: a ``HatEBM``.
        images: ``[N, H, W, C]`` float in [-1, 1].
        batch_size: images per ``model.energy`` call.
    """
    return np.concatenate(
        [model.energy(images[i : i + batch_size]).numpy() for i in range(0, len(images), batch_size)]
    ).astype(np.float64)


class _TracedFunctions:
    """A model's traced functions by key, built on first use: one per key, for any batch size.

    A plain object, not a dict: Keras and TensorFlow would track a dict
    attribute's values as dependencies of the model (and TensorFlow's
    checkpoints refuse its non-string keys). Held by the model alone, it dies
    with it (a ``functools.cache`` on a method would keep every model alive).
    """

    def __init__(self):
        self._functions = {}

    def get(self, key, build):
        """The function of ``key``, made by ``build()`` the first time."""
        if key not in self._functions:
            self._functions[key] = build()
        return self._functions[key]


@keras.saving.register_keras_serializable(package=PACKAGE)
class HatEBM(TrainStepModel):
    """Hat EBM over a generator, trained by maximum likelihood with ``fit``.

    Args:
        hat: the hat network H, ``[B, H, W, C]`` → ``[B, 1]``.
        generator: G, ``[B, *latent_shape]`` → ``[B, H, W, C]``.
        mode: the name of a Hat EBM mode (``hat_ebm_tf.modes``): ``"synthesis"``,
            ``"refine"`` or ``"retrofit"``. The model's ``mode`` is that ``Mode``.
        sampler: ``LangevinConfig`` (or its dict) used in training.
        data_epsilon: std of the Gaussian noise added to data in the energy
            update.
        gen_loss_factor: weight of the cooperative generator loss (synthesis).
        bank_size: number of (z, image) pairs in the persistent banks
            (synthesis; reference 10 000).
        max_grad_norm: clip each hat-network gradient to this norm, or None.
        jit_sampler: XLA-compile the Langevin sampler (only the sampler: Keras
            turns XLA off for the whole step on CPU and under strategies). It
            helps on GPU; on CPU it does not.
        seed: integer seed of all training randomness (with the step counter,
            it fixes every draw, so a resumed run continues the same streams).
        drift_weight: weight of the drift regularisation
            (``hat_ebm_tf.losses.drift_penalty``); 0 (the reference's loss) for none.
        drift_target: the mean residual drift step it holds at the samples, in
            the units of ``sampler.max_residual_norm`` (a quarter of it, say).

    Call:
        images: ``[B, H, W, C]`` float in [-1, 1].

    Returns:
        ``[B]`` energies.
    """

    NETWORKS = ("hat", "generator")

    def __init__(
        self,
        hat,
        generator,
        mode="synthesis",
        sampler=None,
        data_epsilon=1e-3,
        gen_loss_factor=1000.0,
        bank_size=10000,
        max_grad_norm=None,
        jit_sampler=False,
        seed=0,
        drift_weight=0.0,
        drift_target=0.25,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        mode = get_mode(mode, hat_ebm=True, where="HatEBM")
        if sampler is None:
            sampler = LangevinConfig.for_form(joint=mode.joint)
        if isinstance(sampler, dict):
            sampler = LangevinConfig.from_dict(sampler)
        mode.check_sampler(sampler, "HatEBM")
        if mode.uses_banks and (not isinstance(bank_size, int) or bank_size <= 0):
            raise ValueError(f"HatEBM: bank_size={bank_size!r} must be a positive integer in synthesis mode")
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise ValueError(f"HatEBM: max_grad_norm={max_grad_norm!r} must be > 0 or None")
        for name, value in (("drift_weight", drift_weight), ("drift_target", drift_target)):
            if not 0 <= value < float("inf"):
                raise ValueError(f"HatEBM: {name}={value!r} must be >= 0 and finite")
        self.hat = hat
        self.generator = generator
        self.mode = mode
        self.sampler_config = sampler
        self.data_epsilon = float(data_epsilon)
        self.gen_loss_factor = float(gen_loss_factor)
        self.bank_size = int(bank_size)
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        self.jit_sampler = bool(jit_sampler)
        self.drift_weight, self.drift_target = float(drift_weight), float(drift_target)
        self._traced = _TracedFunctions()
        self._langevin = tf.function(langevin, jit_compile=True) if self.jit_sampler else langevin
        self.image_shape = self._checked_shapes()
        self.latent_shape = tuple(int(d) for d in generator.latent_shape)
        if not mode.trains_generator:
            # The joint form refines a fixed (pretrained) generator.
            self.generator.trainable = False
        if mode.uses_banks:
            self.bank_latents = self._bank_weight("bank_latents", (self.bank_size, *self.latent_shape))
            self.bank_images = self._bank_weight("bank_images", (self.bank_size, *self.image_shape))
            self.banks_ready = self._bank_weight("banks_ready", (), dtype="int32")
        self.loss_tracker = Tracker(name="loss")
        self.energy_diff_tracker = Tracker(name="energy_diff")
        self.gen_loss_tracker = Tracker(name="gen_loss")
        self.grad_norm_latent_tracker = Tracker(name="grad_norm_latent")
        self.grad_norm_res_tracker = Tracker(name="grad_norm_res")
        self.hat_grad_norm_tracker = Tracker(name="hat_grad_norm")
        # With drift regularisation: the samples' mean unclipped drift step, which it holds at drift_target.
        self.sample_drift_tracker = Tracker(name="sample_drift") if self.drift_weight else None
        # Under MALA: the chains' mean accepted fraction of proposals (LangevinResult field → tracker).
        self.acceptance_trackers = {}
        if sampler.metropolis:
            fields = ("acceptance_latent", "acceptance_res") if mode.joint else ("acceptance_res",)
            self.acceptance_trackers = {field: Tracker(name=field) for field in fields}
        self.generator_optimizer = None
        self.built = True  # both networks build themselves

    def _bank_weight(self, name, shape, dtype=None):
        """A zero-initialised, non-trainable bank variable, aggregated as ``only_first_replica``.

        Every replica writes the same gathered rows into the banks (``_bank_update``), so the first
        replica's copy stands for all.

        Args:
            name: the variable's name.
            shape: its shape.
            dtype: its dtype; None for the model's variable dtype.
        """
        return self.add_weight(
            shape=shape,
            initializer="zeros",
            dtype=dtype,
            trainable=False,
            aggregation="only_first_replica",
            name=name,
        )

    def _checked_shapes(self):
        hat_shape = tuple(
            self.hat.compute_output_spec(
                keras.KerasTensor((1, self.hat.image_size, self.hat.image_size, self.hat.channels))
            ).shape
        )
        if hat_shape != (1, 1):
            raise ValueError(f"HatEBM: the hat network must output [B, 1] energies, got {hat_shape}")
        image_shape = (self.hat.image_size, self.hat.image_size, self.hat.channels)
        gen_shape = tuple(
            self.generator.compute_output_spec(keras.KerasTensor((1, *self.generator.latent_shape))).shape[1:]
        )
        if gen_shape != image_shape:
            raise ValueError(
                f"HatEBM: generator images {list(gen_shape)} do not match the hat network's input {list(image_shape)}"
            )
        return image_shape

    # ----------------------------------------------------------------- compile
    def compile(self, hat_optimizer, generator_optimizer=None, **kwargs):
        """Set the two optimizers.

        Args:
            hat_optimizer: optimizer of the hat network. With ``use_ema`` it
                also keeps the weight EMA of the generator (see below).
            generator_optimizer: optimizer of the generator (synthesis only).
            **kwargs: passed to ``keras.Model.compile`` (e.g. ``jit_compile``).
        """
        if self.mode.trains_generator and generator_optimizer is None:
            raise ValueError("HatEBM.compile: synthesis mode needs a generator_optimizer")
        hat_optimizer = keras.optimizers.get(hat_optimizer)
        super().compile(optimizer=hat_optimizer, **kwargs)
        self.generator_optimizer = keras.optimizers.get(generator_optimizer) if generator_optimizer else None
        if self.generator_optimizer is not None and self.dtype_policy.name == "mixed_float16":
            # Keras wraps `model.optimizer` itself; the second optimizer needs the same.
            self.generator_optimizer = keras.optimizers.LossScaleOptimizer(self.generator_optimizer)
        # Keras finalises the EMA with `model.optimizer` over all of
        # `model.trainable_weights` at the end of `fit`, so the hat optimizer is
        # built over every trainable weight: it applies gradients to the hat
        # network only, but keeps (and finally swaps in) the EMA of both
        # networks, as the reference does (EMA 0.9999 on both).
        self.optimizer.build(self.trainable_weights)
        if self.generator_optimizer is not None:
            self.generator_optimizer.build(self.generator.trainable_weights)

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return {
            "hat_optimizer": keras.saving.serialize_keras_object(self.optimizer),
            "generator_optimizer": keras.saving.serialize_keras_object(self.generator_optimizer),
        }

    def compile_from_config(self, config):
        self.compile(
            hat_optimizer=keras.saving.deserialize_keras_object(config["hat_optimizer"]),
            generator_optimizer=keras.saving.deserialize_keras_object(config["generator_optimizer"]),
        )

    # ------------------------------------------------------------------ public
    def call(self, images):
        return self.energy(images)

    def energy(self, images):
        """Energies ``H(x)``.

        Args:
            images: ``[B, H, W, C]`` float in [-1, 1].

        Returns:
            ``[B]`` float32 energies.
        """
        images = check_images(images, self.image_shape, "HatEBM.energy")
        return tf.cast(self.hat(images), tf.float32)[:, 0]

    def sample(self, n, seed=0, batch_size=None, config=None):
        """Draw ``n`` images by Langevin sampling from fresh chains.

        Chain ``i`` is seeded by ``(seed, i)``, so results do not depend on
        ``batch_size`` (up to convolution round-off).

        Args:
            n: number of images.
            seed: integer seed.
            batch_size: chains run at once (default: all ``n``).
            config: ``LangevinConfig`` overriding the training sampler (e.g.
                longer evaluation chains).

        Returns:
            ``[n, H, W, C]`` float32 images (``G(z) + y``, roughly in [-1, 1]).
        """
        batch_size = batch_size or n
        chunks = [
            self.sample_with_seeds(row_seeds(seed, min(batch_size, n - start), offset=start), config)
            for start in range(0, n, batch_size)
        ]
        return tf.concat(chunks, axis=0)

    def sample_with_seeds(self, seeds, config=None):
        """Draw one image per row seed: the chain of row ``b`` depends on ``seeds[b]`` only.

        Args:
            seeds: ``[B, 2]`` integer row seeds (``sample(n, seed)`` uses
                ``(seed, i)`` for row ``i``).
            config: optional ``LangevinConfig`` override.

        Returns:
            ``[B, H, W, C]`` float32 images.
        """
        seeds = _checked_seeds(seeds, "sample_with_seeds")
        return self._sample_function(config or self.sampler_config)(seeds).images

    def refine(self, latents, seed=0, config=None):
        """Run the sampler from given latents (joint modes move them too).

        Args:
            latents: ``[B, *latent_shape]`` initial latents.
            seed: integer seed; chain ``i`` uses ``(seed, i)``.
            config: optional ``LangevinConfig`` override.

        Returns:
            ``LangevinResult`` with refined ``images`` ``[B, H, W, C]``.
        """
        latents = tf.convert_to_tensor(latents, tf.float32)
        return self.refine_with_seeds(latents, row_seeds(seed, tf.shape(latents)[0]), config)

    def refine_with_seeds(self, latents, seeds, config=None):
        """Run the sampler from given latents, one row seed per latent row.

        Args:
            latents: ``[B, *latent_shape]`` initial latents.
            seeds: ``[B, 2]`` integer row seeds (``refine(latents, seed)``
                uses ``(seed, i)`` for row ``i``).
            config: optional ``LangevinConfig`` override.

        Returns:
            ``LangevinResult`` with refined ``images`` ``[B, H, W, C]``.
        """
        latents = tf.convert_to_tensor(latents, tf.float32)
        if tuple(latents.shape[1:]) != self.latent_shape:
            raise ValueError(
                f"HatEBM.refine: latents have shape {list(latents.shape)}, expected [B, "
                f"{', '.join(map(str, self.latent_shape))}]"
            )
        seeds = _checked_seeds(seeds, "refine_with_seeds")
        if None not in (latents.shape[0], seeds.shape[0]) and latents.shape[0] != seeds.shape[0]:
            raise ValueError(f"HatEBM.refine_with_seeds: {latents.shape[0]} latent rows but {seeds.shape[0]} seed rows")
        return self._refine_function(config or self.sampler_config)(latents, seeds)

    def generate(self, latents):
        """``G(z)`` with the generator's moving batch-norm statistics."""
        return tf.cast(self.generator(latents, training=False), tf.float32)

    def initialize_banks(self, batch_size=500):
        """Fill the persistent banks with ``z ~ N(0, I)`` and ``G(z)`` (synthesis)."""
        if not self.mode.uses_banks:
            return
        seeds = row_seeds(self.seed, self.bank_size, offset=0)
        latents = row_normal(seeds, self.latent_shape, salt=SALT_BANK_LATENTS)
        images = tf.concat(
            [self.generate(latents[i : i + batch_size]) for i in range(0, self.bank_size, batch_size)], 0
        )
        self.bank_latents.assign(latents)
        self.bank_images.assign(images)
        self.banks_ready.assign(1)

    def bank_indices(self, step, global_batch):
        """Bank rows drawn at training step ``step``: ``[global_batch]`` distinct int64 indices.

        The draw depends on ``(seed, step)`` only, so every replica draws the
        same global indices and takes its own slice of them. Rows are drawn
        without replacement, so that no two chains of a step write the same
        row (which would make the bank depend on scatter order).
        """
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        rows = tf.random.experimental.stateless_shuffle(tf.range(self.bank_size, dtype=tf.int64), seed=seed)
        return rows[:global_batch]

    def fit(self, *args, **kwargs):
        if self.mode.uses_banks and int(self.banks_ready.numpy()) == 0:
            self.initialize_banks()
        return super().fit(*args, **kwargs)

    # --------------------------------------------------------------- training
    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.energy_diff_tracker,
            self.gen_loss_tracker,
            self.grad_norm_latent_tracker,
            self.grad_norm_res_tracker,
            self.hat_grad_norm_tracker,
            *([self.sample_drift_tracker] if self.sample_drift_tracker is not None else []),
            *self.acceptance_trackers.values(),
        ]

    def _chains(self, latents, residuals, seeds, config):
        return self._langevin(lambda x: self.hat(x), self.generate, latents, residuals, seeds, config)

    # One traced function per (model, config), for any batch size: a run's last,
    # smaller batch or a new batch size must not trace the whole sampler again.
    def _sample_function(self, config):
        def build():
            @tf.function(input_signature=[_SEEDS], autograph=False)
            def run(seeds):
                latents, residuals = initial_state(seeds, self.latent_shape, self.image_shape, config)
                return self._chains(latents, residuals, seeds, config)

            return run

        return self._traced.get(("sample", config), build)

    def _refine_function(self, config):
        def build():
            latents_spec = tf.TensorSpec([None, *self.latent_shape], tf.float32)

            @tf.function(input_signature=[latents_spec, _SEEDS], autograph=False)
            def run(latents, seeds):
                _, residuals = initial_state(seeds, self.latent_shape, self.image_shape, config)
                return self._chains(latents, residuals, seeds, config)

            return run

        return self._traced.get(("refine", config), build)

    # No AutoGraph for the step, the samplers or anything they call: they have no
    # tensor-dependent Python control flow (the Langevin loop is a tf.while_loop),
    # and converting their source costs seconds at every trace of a fresh process.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        """One training step of paper Alg. 1: sample, energy update, generator update, bank update, trackers."""
        data = self.checked_batch(data)
        replica_id, num_replicas = replica_info()
        batch = tf.shape(data)[0]
        step, seeds = self.step_seeds(batch)
        chains = self._sample_chains(seeds)
        samples = tf.stop_gradient(chains.images)
        loss, energy_diff, sample_drift, hat_grad_norm = self._energy_update(data, samples, seeds)
        gen_loss = tf.constant(0.0)
        if self.mode.uses_banks:
            indices = self.bank_indices(step, batch * num_replicas)
            own = indices[replica_id * batch : (replica_id + 1) * batch]
            gen_loss = self._generator_update(own)
            self._bank_update(indices, chains.latents, samples)
        return self._update_trackers(loss, energy_diff, sample_drift, gen_loss, hat_grad_norm, chains)

    def checked_batch(self, data):
        """The training batch, checked (``TrainStepModel.checked_batch``), and that the banks hold a global batch."""
        data = super().checked_batch(data)
        num_replicas = replica_info()[1]
        if self.mode.uses_banks and data.shape[0] is not None and data.shape[0] * num_replicas > self.bank_size:
            raise ValueError(
                f"HatEBM.train_step: bank_size={self.bank_size} is smaller than the global batch "
                f"{data.shape[0] * num_replicas}"
            )
        return data

    def _sample_chains(self, seeds):
        """1. Sample from fresh chains (paper Eq. 5 / Alg. 1): a ``LangevinResult``."""
        latents, residuals = initial_state(seeds, self.latent_shape, self.image_shape, self.sampler_config)
        return self._chains(latents, residuals, seeds, self.sampler_config)

    def _energy_update(self, data, samples, seeds):
        """2. Energy update: maximum likelihood (paper Eq. 2), with the drift regularisation when it has a weight.

        Returns:
            ``(loss, energy_diff, sample_drift, hat_grad_norm)``; ``sample_drift``
            is None without drift regularisation.
        """
        noisy = data + self.data_epsilon * row_normal(seeds, self.image_shape, SALT_DATA_NOISE)
        temperature = self.sampler_config.temperature

        def loss_fn():
            if not self.drift_weight:
                return (*maximum_likelihood_loss(self.hat(noisy), self.hat(samples), temperature), None)
            # The samples' energy gradient under this tape, so that the penalty's gradient reaches the weights.
            energy, gradient = energy_and_gradient(self.hat, samples)
            drift = mean_drift_step(self.sampler_config.step_size**2 / 2.0, gradient / temperature)
            loss, energy_diff = maximum_likelihood_loss(self.hat(noisy), energy, temperature)
            penalty = drift_penalty(drift, self.drift_target, self.drift_weight)
            return loss + penalty / temperature, energy_diff, drift

        (loss, energy_diff, drift), hat_grad_norm = self.apply_loss(
            self.optimizer, self.hat.trainable_weights, loss_fn, self.max_grad_norm
        )
        return loss, energy_diff, drift, hat_grad_norm

    def _generator_update(self, own):
        """3. Generator update (synthesis): regress ``G(z)`` onto the refined samples of bank rows ``own``.

        Cooperative learning: the banks hold earlier steps' ``(z, G(z) + y)``.
        """

        def loss_fn():
            return generator_regression_loss(
                self.generator(tf.gather(self.bank_latents, own), training=False),
                tf.gather(self.bank_images, own),
                self.gen_loss_factor,
            )

        gen_loss, _ = self.apply_loss(self.generator_optimizer, self.generator.trainable_weights, loss_fn)
        return gen_loss

    def _bank_update(self, indices, latents, samples):
        """4. Bank update: this step's ``(z, G(z) + y)`` at the drawn global ``indices``.

        Every replica writes the same gathered global batch.
        """
        rows = indices[:, None]
        scatter_rows(self.bank_latents.value, rows, all_gather(latents))
        scatter_rows(self.bank_images.value, rows, all_gather(samples))

    def _update_trackers(self, loss, energy_diff, sample_drift, gen_loss, hat_grad_norm, chains):
        """5. Trackers (unscaled values): ``{name: running mean}``, what ``fit`` logs and the watchdog checks."""
        self.loss_tracker.update_state(loss)
        self.energy_diff_tracker.update_state(energy_diff)
        if self.sample_drift_tracker is not None:
            self.sample_drift_tracker.update_state(sample_drift)
        self.gen_loss_tracker.update_state(gen_loss)
        self.grad_norm_latent_tracker.update_state(chains.grad_norm_latent)
        self.grad_norm_res_tracker.update_state(chains.grad_norm_res)
        self.hat_grad_norm_tracker.update_state(hat_grad_norm)
        for field, tracker in self.acceptance_trackers.items():
            tracker.update_state(tf.reduce_mean(getattr(chains, field)))
        return self.tracker_results()

    # ----------------------------------------------------------- serialization
    def get_config(self):
        return {
            **super().get_config(),
            "mode": self.mode.name,
            "sampler": self.sampler_config.to_dict(),
            "data_epsilon": self.data_epsilon,
            "gen_loss_factor": self.gen_loss_factor,
            "bank_size": self.bank_size,
            "max_grad_norm": self.max_grad_norm,
            "jit_sampler": self.jit_sampler,
            "drift_weight": self.drift_weight,
            "drift_target": self.drift_target,
        }
