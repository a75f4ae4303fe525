"""The recipe of ``hat-ebm train --data``: a whole synthesis config derived from the data.

Three facts of the data decide it: the image size, the channels and the
number of training images (``inspect_source`` reads them without reading the
images). From them ``derive`` sets the network widths, the sampler's steps,
step sizes and clip, the data noise, the learning rates, the regularisation
that keeps training stable, the evaluation and the step budget:

- **The sampler's clip grows with the image**: ``max_residual_norm`` is
  ``CLIP_PER_PIXEL · √(S² · C)``, the same drift per pixel at every size.
- **Drift regularisation** (``hat_ebm_tf.losses.drift_penalty``) holds the
  sampler's mean drift step at the samples at ``DRIFT_TARGET`` of that clip.
  Maximum likelihood alone, on data it was not tuned on, either steepens the
  energy until every drift step sits at the clip, where the energy gap then
  runs away, or flattens it until the chains stop moving and the energy only
  tells data from samples; held below the clip, it does neither.
- **Evaluation with the training chain**: samples are drawn with the sampler
  that trained, whose chain length the energy was learned for (longer chains
  of an energy trained with short ones can drift away from the data).
- **Budgets for 2 CPU cores**: the step budget fits in minutes at 16×16 and
  32×32, and in a quarter of an hour at 64×64 (1500 steps of a wider
  network); 128×128 is GPU work.
- **Passes over the data**: a model starts to reproduce its training images
  as it sees them more often (the quality report's copying share rises with
  the training length on 200 and 1000 digits), so the budget is at most
  ``STEPS_PER_IMAGE · N`` steps (80 passes at batch 32), and at least
  ``MIN_STEPS``; below ``SMALL_SET`` images the data noise also grows as
  ``1/√N``.
- **The watchdog** rolls back (``training.on_divergence: rollback``) rather
  than stops.

The recipe is plain config data (``ExperimentConfig`` values); a config file
whose top-level ``base`` is ``recipe`` starts from it and overrides keys
(``hat_ebm_tf.config``). Free of TensorFlow, except to count a TFDS split.
"""

import dataclasses
import math
import zipfile
from pathlib import Path

import numpy as np

from hat_ebm_tf.choices import HAT_TABLE
from hat_ebm_tf.errors import DataError
from hat_ebm_tf.offline_sets import NATIVE_SIZE, SPLIT_SIZES
from hat_ebm_tf.sources import (
    DIGITS_SPLITS,
    HOLD_OUT_EVERY,
    NAMED_KINDS,
    parse_source,
    scan_folder,
    split_rows,
)

SIZES = tuple(sorted(HAT_TABLE))
# The largest image size the recipe picks by itself, for 2 CPU cores; --image-size asks for more.
DEFAULT_MAX_SIZE = 32
CLIP_PER_PIXEL = 1.0 / 16  # the digits demo's clip of 1.0 over 16×16×1 pixels
DRIFT_TARGET = 0.25
DRIFT_WEIGHT = 1.0
DATA_EPSILON = 3e-2
SMALL_SET = 1000  # fewer images than this: more data noise, fewer steps
MAX_DATA_EPSILON = 0.1
STEPS_PER_IMAGE = 2.5
MIN_STEPS = 1000
# Per image size: (network width, latent size, training steps).
BY_SIZE = {16: (32, 32, 2500), 32: (32, 64, 5000), 64: (64, 64, 1500), 128: (128, 128, 1500)}


@dataclasses.dataclass(frozen=True)
class DataFacts:
    """What the recipe is derived from.

    Attributes:
        source: the data source, as configs name it.
        native_size: the images' own side (the smaller of height and width), or None when unknown (TFDS).
        channels: the images' own channels (1 or 3).
        num_images: the images a training run reads (a source without a held-out split of its own
            gives every tenth to the quality report).
    """

    source: str
    native_size: int | None
    channels: int
    num_images: int


def _array_header(path):
    """``shape`` of a ``.npy`` file, or of a ``.npz`` file's ``images`` array, from its header alone."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"array file {str(path)!r} does not exist")
    try:
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as archive, archive.open("images.npy") as file:
                version = np.lib.format.read_magic(file)
                if version == (1, 0):
                    return np.lib.format.read_array_header_1_0(file)[0]
                return np.lib.format.read_array_header_2_0(file)[0]
        return np.load(path, mmap_mode="r").shape
    except KeyError:
        raise DataError(f"array file {str(path)!r} has no array 'images'") from None
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot read array file {str(path)!r} as .npy or .npz: {err}") from err


def _rows(total, split):
    """How many of ``total`` rows a named split's slice keeps (``train[:200]``)."""
    return len(range(total)[split_rows(split)[1]])


def _tfds_count(source):
    # TensorFlow Datasets: loaded only to count a TFDS split, which nothing else here needs.
    import tensorflow_datasets as tfds

    builder = tfds.builder(source.name, data_dir=source.data_dir)
    try:
        return builder.info.splits[source.split].num_examples
    except (KeyError, ValueError) as err:
        raise DataError(f"TFDS builder {source.name!r} has no split {source.split!r} to train on: {err}") from err


def inspect_source(spec, data_dir=None):
    """The ``DataFacts`` of a data source string (as ``data.source`` names it), from sizes and counts alone.

    Raises:
        DataError: a source that does not exist, cannot be read, or holds no images.
    """
    probe = parse_source(spec, 16, 1, data_dir=data_dir)  # every source takes one channel; its own is read below
    train = probe.train_and_held_out()[0]
    if probe.kind in NAMED_KINDS:
        name = split_rows(probe.split)[0]
        if probe.kind == "digits":
            total = len(range(1797)[DIGITS_SPLITS[name]])
            native, channels = 8, 1
        else:
            total = sum(SPLIT_SIZES.values()) if name == "all" else SPLIT_SIZES[name]
            native, channels = NATIVE_SIZE, 1 if probe.kind == "glyphs" else 3
        count = _rows(total, probe.split)
    elif probe.kind == "tfds":
        count, native, channels = _tfds_count(probe), None, 3
    elif probe.kind == "folder":
        # Pillow: loaded only to read one image's size.
        from PIL import Image

        files = scan_folder(probe.name)
        with Image.open(files[0]) as image:
            native, channels = min(image.size), 1 if image.mode in ("L", "LA", "I", "I;16", "1") else 3
        count = len(files)
    else:
        shape = _array_header(probe.name)
        if len(shape) != 4:
            raise DataError(f"array file {probe.name!r}: images of shape {list(shape)}; expected [N, H, W, C]")
        count, native, channels = shape[0], min(shape[1:3]), 1 if shape[3] == 1 else 3
    if train.hold_out == "train":
        count -= count // HOLD_OUT_EVERY
    if count <= 0:
        raise DataError(f"data source {spec!r} holds no images to train on")
    return DataFacts(spec, native, channels, count)


def default_image_size(native_size):
    """The largest supported size at most the images' own (and ``DEFAULT_MAX_SIZE``), at least the smallest."""
    if native_size is None:
        return DEFAULT_MAX_SIZE
    fitting = [size for size in SIZES if size <= min(native_size, DEFAULT_MAX_SIZE)]
    return fitting[-1] if fitting else SIZES[0]


def derive(facts, image_size=None, channels=None, steps=None, seed=0, data_dir=None):
    """The config values (a mapping for ``hat_ebm_tf.config.parse_config``) of the recipe for ``facts``.

    Args:
        facts: ``DataFacts`` of the data.
        image_size: the model's side, or None for ``default_image_size``.
        channels: the model's channels, or None for the images' own.
        steps: training steps, or None for the size's budget.
        seed: the run's seed.
        data_dir: TFDS data directory.

    Returns:
        dict: a whole config: ``name``, ``mode``, ``seed``, ``data``, ``networks``, ``sampler``,
        ``training``, ``evaluation``.

    Raises:
        DataError: an image size the networks do not support, or channels other than 1 and 3.
    """
    size = default_image_size(facts.native_size) if image_size is None else image_size
    if size not in BY_SIZE:
        raise DataError(f"image size {size!r}: the networks support {list(SIZES)}")
    channels = facts.channels if channels is None else channels
    if channels not in (1, 3):
        raise DataError(f"channels={channels!r} must be 1 or 3")
    width, latent, budget = BY_SIZE[size]
    if steps is None:
        steps = min(budget, max(MIN_STEPS, int(STEPS_PER_IMAGE * facts.num_images)))
    data_epsilon = min(MAX_DATA_EPSILON, DATA_EPSILON * math.sqrt(max(1.0, SMALL_SET / facts.num_images)))
    clip = round(CLIP_PER_PIXEL * math.sqrt(size * size * channels), 3)
    return {
        "name": f"recipe ({facts.source}, {size}×{size}×{channels}, {facts.num_images} images)",
        "mode": "synthesis",
        "seed": seed,
        "data": {"source": facts.source, "image_size": size, "channels": channels, "data_dir": data_dir},
        "networks": {
            "hat_width": width,
            "generator_width": width,
            "generator": "sngan",
            "latent_dim": latent,
            "out_factor": 2.0,
        },
        "sampler": {
            "num_steps": 10,
            "step_size": 5e-4,
            "temperature": 1e-8,
            "noise": True,
            "max_residual_norm": clip,
            "init_scale_latent": 1.0,
            "init_scale_residual": 0.0,
        },
        "training": {
            "steps": steps,
            "steps_per_epoch": max(1, steps // 10),
            "batch_size": 32,
            "hat_learning_rate": 1e-3,
            "generator_learning_rate": 1e-3,
            "ema_momentum": 0.99,
            "data_epsilon": round(data_epsilon, 4),
            "gen_loss_factor": 1000.0,
            # Twice the images, so that a bank row is revisited about once every other pass over the data.
            "bank_size": int(min(10000, max(2000, 2 * facts.num_images))),
            "drift_weight": DRIFT_WEIGHT,
            "drift_target": round(DRIFT_TARGET * clip, 4),
            "on_divergence": "rollback",
        },
        "evaluation": {
            "num_samples": 1000,
            "batch_size": 250,
            "every": max(1, steps // 5),
            "quality_samples": 200,
        },
    }
