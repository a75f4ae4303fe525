"""Settings, networks, chains and timing shared by the benchmark sections."""

import dataclasses
import statistics
import time

import keras
import tensorflow as tf

from hat_ebm_tf.networks import Generator, HatNetwork
from hat_ebm_tf.rng import row_seeds
from hat_ebm_tf.sampler import initial_state, langevin
from hat_ebm_tf.sampler_config import JOINT_LATENT_STEP_SIZE, LangevinConfig

SEED = 0

# Sizes of a full run and of the --tiny smoke run (as CI runs it). Command-line
# flags override the entries in FLAG_KEYS; the others follow the preset only.
PRESETS = {
    "full": {
        "image_size": 32,
        "width": 64,
        "batch": 32,
        "steps": 20,
        "repeats": 10,
        "warmup": 2,
        "memory_steps": (250, 25),
        "train_warmup": 3,
    },
    "tiny": {
        "image_size": 16,
        "width": 16,
        "batch": 4,
        "steps": 2,
        "repeats": 2,
        "warmup": 1,
        "memory_steps": (50, 5),
        "train_warmup": 1,
    },
}
FLAG_KEYS = ("image_size", "width", "batch", "steps", "repeats", "warmup")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a benchmark run depends on (written to the JSON as is).

    Attributes:
        image_size: image height and width of the sampler benchmarks.
        width: hat and generator width of the sampler benchmarks.
        latent_dim: generator latent size.
        channels: image channels.
        batch: chains per sampler call.
        steps: Langevin steps per sampler call.
        repeats: timed repeats; figures are their median.
        warmup: untimed calls before timing (tracing, oneDNN primitive caches).
        memory_steps: ``(long, short)`` chain lengths of the memory section.
        train_warmup: untimed training steps before timing.
        train_steps: timed training steps.
        tiny: the smoke-test preset (it also shrinks the digits training config).
        mixed_precision: ``auto``, ``always`` or ``never``.
        sections: section names to run, in run order.
    """

    image_size: int
    width: int
    latent_dim: int
    channels: int
    batch: int
    steps: int
    repeats: int
    warmup: int
    memory_steps: tuple[int, int]
    train_warmup: int
    train_steps: int
    tiny: bool
    mixed_precision: str
    sections: tuple[str, ...]

    @classmethod
    def from_args(cls, args):
        """Settings from parsed ``hat_ebm_tf.cli.commands.bench`` flags: unset flags take the preset."""
        preset = PRESETS["tiny" if args.tiny else "full"]
        sizes = {key: preset[key] if getattr(args, key) is None else getattr(args, key) for key in FLAG_KEYS}
        return cls(
            **sizes,
            latent_dim=128,
            channels=3,
            memory_steps=preset["memory_steps"],
            train_warmup=preset["train_warmup"],
            train_steps=2 * sizes["repeats"],
            tiny=args.tiny,
            mixed_precision=args.mixed_precision,
            sections=tuple(args.sections),
        )

    @property
    def image_shape(self):
        return (self.image_size, self.image_size, self.channels)


def synthesis_config(steps):
    """The reference's CIFAR-10 synthesis sampler: residual steps only."""
    return LangevinConfig(num_steps=steps, step_size=5e-4, temperature=1e-8, max_residual_norm=2.5, noise=True)


def joint_config(steps):
    """The synthesis sampler with latent steps as well (refine/retrofit form)."""
    return dataclasses.replace(synthesis_config(steps), update_latents=True, latent_step_size=JOINT_LATENT_STEP_SIZE)


def build_networks(settings, policy="float32"):
    """Seeded ``(hat, generator)`` at the benchmark size, every layer under ``policy``."""
    keras.utils.set_random_seed(SEED)
    hat = HatNetwork(settings.image_size, settings.width, settings.channels, dtype=policy)
    generator = Generator(settings.image_size, settings.width, settings.channels, settings.latent_dim, dtype=policy)
    return hat, generator


def chain_function(energy_fn, generator_fn, settings, config, jit_compile=False):
    """A ``tf.function`` running one batch of chains from fixed seeds; it returns the images."""
    seeds = row_seeds(SEED, settings.batch)
    latents, residuals = initial_state(seeds, (settings.latent_dim,), settings.image_shape, config)
    return tf.function(
        lambda: langevin(energy_fn, generator_fn, latents, residuals, seeds, config).images, jit_compile=jit_compile
    )


def median_time(fn, repeats, warmup):
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed.

    ``fn`` must block until its work is done (e.g. end in ``.numpy()``).

    Returns:
        dict: ``seconds`` (median of the timed calls) and ``times`` (all of them).
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "times": times}
