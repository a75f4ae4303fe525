# Data sources of Hat EBM's training and evaluation. Independent code.
"""Where images come from: ``DataSource`` and its command-line form, free of TensorFlow.

Configs and flags name a source (``parse_source``) and have it checked here,
before TensorFlow loads: ``hat-ebm train`` names a bad source in a config
without TensorFlow's start-up of several seconds. ``hat_ebm_tf.data`` reads
the sources into tf.data pipelines.
"""

import dataclasses
from pathlib import Path

from hat_ebm_tf.errors import DataError
from hat_ebm_tf.sampler_config import FLOAT32_TINY, float32_problem

TFDS_BUILDERS = ("cifar10", "celeb_a", "imagenet2012", "svhn_cropped", "cifar100")
KINDS = ("digits", "tfds", "folder", "array")
# scikit-learn's 1797 digits: a fixed train split (the first 1000) and the held-out rest. The held-out digits
# alternate between `calibration` (OOD calibration at export) and `test`, two disjoint halves of the same writers.
DIGITS_TRAIN_SIZE = 1000
DIGITS_SPLITS = {
    "train": slice(0, DIGITS_TRAIN_SIZE),
    "held_out": slice(DIGITS_TRAIN_SIZE, None),
    "calibration": slice(DIGITS_TRAIN_SIZE, None, 2),
    "test": slice(DIGITS_TRAIN_SIZE + 1, None, 2),
    "all": slice(None),
}


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where images come from, and how they are brought to the model's size.

    Attributes:
        kind: ``digits`` (scikit-learn's bundled 8×8 digits), ``tfds`` (a
            TensorFlow Datasets builder), ``folder`` (PNG/JPEG files, searched
            recursively) or ``array`` (``.npz``/``.npy``: uint8 pixels, or floats in [-1, 1]).
        name: TFDS builder name (``tfds``) or path (``folder``, ``array``).
        split: TFDS split, e.g. ``train`` or ``test``; for ``digits``, one of
            ``DIGITS_SPLITS``: ``train`` (the first 1000), ``held_out`` (the
            other 797), its halves ``calibration`` (399) and ``test`` (398),
            or ``all``.
        data_dir: TFDS data directory (default: TFDS's own). Never downloaded.
        image_size: model height and width.
        channels: model channels (1 or 3).
        random_crop: ``(min_scale, max_scale, min_ratio, max_ratio)`` of a
            random resized crop for training, or None for a centre crop.
        flip: random horizontal flips for training.
    """

    kind: str = "digits"
    name: str | None = None
    split: str = "train"
    data_dir: str | None = None
    image_size: int = 16
    channels: int = 1
    random_crop: tuple[float, float, float, float] | None = None
    flip: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise DataError(f"data source kind={self.kind!r}: expected one of {list(KINDS)}")
        if self.kind == "tfds" and self.name not in TFDS_BUILDERS:
            raise DataError(f"tfds builder name={self.name!r}: supported builders are {list(TFDS_BUILDERS)}")
        if self.kind in ("folder", "array") and not self.name:
            raise DataError(f"data source kind={self.kind!r} needs a path (name)")
        if not isinstance(self.image_size, int) or self.image_size <= 0:
            raise DataError(f"image_size={self.image_size!r} must be a positive integer")
        if self.channels not in (1, 3):
            raise DataError(f"channels={self.channels!r} must be 1 or 3")
        if self.kind == "digits" and self.channels != 1:
            raise DataError(f"channels={self.channels!r}: the digits are single-channel")
        if self.kind == "digits" and self.split not in DIGITS_SPLITS:
            raise DataError(f"digits split={self.split!r}: expected one of {list(DIGITS_SPLITS)}")
        if self.random_crop is not None:
            crop = tuple(float(v) for v in self.random_crop)
            ordered = len(crop) == 4 and 0 < crop[0] <= crop[1] <= 1 and 0 < crop[2] <= crop[3]
            if not ordered or any(float32_problem(value) for value in crop):
                raise DataError(
                    f"random_crop={self.random_crop!r} must be (min_scale, max_scale, min_ratio, max_ratio) "
                    "with 0 < min_scale <= max_scale <= 1 and 0 < min_ratio <= max_ratio, finite and none below "
                    f"float32's smallest normal number {FLOAT32_TINY:.4g}"
                )
            object.__setattr__(self, "random_crop", crop)


def parse_source(spec, image_size, channels, data_dir=None, **options):
    """A ``DataSource`` from a string, as given on the command line.

    ``digits`` (the train split) or ``digits:SPLIT`` (``digits:held_out``,
    ``digits:all``); ``tfds:NAME`` or ``tfds:NAME:SPLIT`` (e.g.
    ``tfds:cifar10:test``, ``tfds:cifar10:test[:5000]``); a directory (``folder``); a ``.npz``/``.npy`` file
    (``array``).
    """
    if spec == "digits" or spec.startswith("digits:"):
        split = spec.partition(":")[2] or "train"
        return DataSource("digits", split=split, image_size=image_size, channels=channels, **options)
    if spec.startswith("tfds:"):
        # At most two splits: a TFDS split may slice, e.g. tfds:cifar10:test[:5000].
        parts = spec.split(":", 2)
        split = parts[2] if len(parts) > 2 else "train"
        return DataSource("tfds", parts[1], split, data_dir, image_size, channels, **options)
    path = Path(spec)
    if path.suffix in (".npz", ".npy"):
        return DataSource("array", spec, image_size=image_size, channels=channels, **options)
    if path.is_dir():
        return DataSource("folder", spec, image_size=image_size, channels=channels, **options)
    raise DataError(
        f"data source {spec!r}: not 'digits[:SPLIT]', 'tfds:NAME[:SPLIT]', a .npz/.npy file or an existing directory"
    )
