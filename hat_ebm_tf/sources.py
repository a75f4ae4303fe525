# Data sources of Hat EBM's training and evaluation. Independent code.
"""Where images come from: ``DataSource`` and its command-line form, free of TensorFlow.

Configs and flags name a source (``parse_source``) and have it checked here,
before TensorFlow loads: ``hat-ebm train`` names a bad source in a config
without TensorFlow's start-up of several seconds. ``hat_ebm_tf.data`` reads
the sources into tf.data pipelines.
"""

import dataclasses
import os
import re
from pathlib import Path

from hat_ebm_tf.errors import DataError
from hat_ebm_tf.sampler_config import FLOAT32_TINY, float32_problem

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TFDS_BUILDERS = ("cifar10", "celeb_a", "imagenet2012", "svhn_cropped", "cifar100")
KINDS = ("digits", "glyphs", "photo-patches", "tfds", "folder", "array")
# The offline sets of hat_ebm_tf.offline_sets, and their splits.
OFFLINE_SET_SPLITS = ("train", "held_out", "all")
# Sources named by a word (and an optional split), not by a path or a TFDS builder.
NAMED_KINDS = ("digits", "glyphs", "photo-patches")
# A source without a held-out split of its own (a folder, an array file, `digits:all`) gives every tenth image
# (rows 9, 19, ...) to the quality report, and a training run reads the others.
HOLD_OUT_EVERY = 10
HOLD_OUTS = (None, "train", "held_out")
# The held-out split of a TFDS builder's train split.
TFDS_HELD_OUT = {"imagenet2012": "validation"}
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
        kind: ``digits`` (scikit-learn's bundled 8×8 digits), ``glyphs`` and
            ``photo-patches`` (``hat_ebm_tf.offline_sets``), ``tfds`` (a
            TensorFlow Datasets builder), ``folder`` (PNG/JPEG files, searched
            recursively) or ``array`` (``.npz``/``.npy``: uint8 pixels, or floats in [-1, 1]).
        name: TFDS builder name (``tfds``) or path (``folder``, ``array``).
        split: TFDS split, e.g. ``train`` or ``test``; for ``digits``, one of
            ``DIGITS_SPLITS``: ``train`` (the first 1000), ``held_out`` (the
            other 797), its halves ``calibration`` (399) and ``test`` (398),
            or ``all``; for ``glyphs`` and ``photo-patches``, ``train``,
            ``held_out`` or ``all``. The splits of named sources may be
            sliced: ``train[:200]`` (``split_rows``).
        hold_out: None (every image), ``train`` (all but every
            ``HOLD_OUT_EVERY``-th) or ``held_out`` (only those): the split a
            source without a held-out split of its own gives to training and
            to the quality report (``train_and_held_out``).
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
    hold_out: str | None = None

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
        if self.kind in NAMED_KINDS and split_rows(self.split)[0] not in self.splits():
            raise DataError(
                f"{self.kind} split={self.split!r}: expected one of {list(self.splits())}, optionally sliced "
                "(e.g. train[:200])"
            )
        if self.hold_out not in HOLD_OUTS:
            raise DataError(f"hold_out={self.hold_out!r}: expected one of {list(HOLD_OUTS)}")
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

    def splits(self):
        """The split names of a named source (``NAMED_KINDS``); ``()`` for other kinds."""
        if self.kind == "digits":
            return tuple(DIGITS_SPLITS)
        return OFFLINE_SET_SPLITS if self.kind in NAMED_KINDS else ()

    def describe(self):
        """The source as configs name it: ``digits``, ``glyphs:train[:200]``, ``tfds:NAME:SPLIT`` or its path."""
        if self.kind in (*NAMED_KINDS, "tfds"):
            text = ":".join(p for p in (self.kind, self.name, self.split) if p)
        else:
            text = self.name
        return text if self.hold_out is None else f"{text} ({self.hold_out} rows of every {HOLD_OUT_EVERY})"

    def train_and_held_out(self):
        """``(train, held_out)``: the sources a training run on this source reads, and its quality report compares with.

        A train split keeps its split, and the held-out images are the
        source's own held-out split (TFDS: its test or validation split).
        Any other source (a folder, an array file, ``digits:all``) keeps every
        ``HOLD_OUT_EVERY``-th image out of training for the report.
        """
        # TFDS slices its splits in its own syntax (train[:10%]); the named sources' slices are split_rows'.
        base = split_rows(self.split)[0] if self.kind in NAMED_KINDS else self.split.partition("[")[0]
        if self.kind in NAMED_KINDS and base == "train":
            return self, dataclasses.replace(self, split="held_out", random_crop=None, flip=False)
        if self.kind == "tfds" and base == "train":
            held_out = TFDS_HELD_OUT.get(self.name, "test")
            return self, dataclasses.replace(self, split=held_out, random_crop=None, flip=False)
        return (
            dataclasses.replace(self, hold_out="train"),
            dataclasses.replace(self, hold_out="held_out", random_crop=None, flip=False),
        )


def split_rows(split):
    """``(name, rows)`` of a split such as ``train[:200]``: its name and a ``slice`` of its rows (all: ``slice(None)``).

    Raises:
        DataError: a malformed slice.
    """
    match = re.fullmatch(r"([A-Za-z_]+)(?:\[(-?\d*):(-?\d*)\])?", split)
    if match is None:
        raise DataError(f"split {split!r}: expected NAME or NAME[start:stop], e.g. train[:200]")
    name, start, stop = match.groups()
    return name, slice(int(start) if start else None, int(stop) if stop else None)


def parse_source(spec, image_size, channels, data_dir=None, **options):
    """A ``DataSource`` from a string, as given on the command line.

    ``digits``, ``glyphs`` or ``photo-patches`` (the train split) or
    ``NAME:SPLIT`` (``digits:held_out``, ``digits:all``, ``glyphs:train[:1000]``);
    ``tfds:NAME`` or ``tfds:NAME:SPLIT`` (e.g.
    ``tfds:cifar10:test``, ``tfds:cifar10:test[:5000]``); a directory (``folder``); a ``.npz``/``.npy`` file
    (``array``).
    """
    head, _, split = spec.partition(":")
    if head in NAMED_KINDS:
        return DataSource(head, split=split or "train", image_size=image_size, channels=channels, **options)
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
        f"data source {spec!r}: not 'digits', 'glyphs' or 'photo-patches' (each [:SPLIT]), 'tfds:NAME[:SPLIT]', "
        "a .npz/.npy file or an existing directory"
    )


def scan_folder(path):
    """Sorted image files below ``path`` (recursive), after checking that they read and agree.

    Raises:
        DataError: for a missing or empty folder, an unreadable image, or
            images with different channel counts (each named).
    """
    from PIL import Image, UnidentifiedImageError  # Pillow: loaded only for an image folder

    root = Path(path)
    if not root.is_dir():
        raise DataError(f"image folder {os.fspath(root)!r} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"image folder {os.fspath(root)!r} holds no {'/'.join(IMAGE_SUFFIXES)} files")
    channels = {}
    for file in files:
        try:
            with Image.open(file) as image:
                image.verify()
                bands = len(image.getbands())
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise DataError(f"unreadable image {os.fspath(file)!r}: {err}") from err
        channels.setdefault(bands, file)
    if len(channels) > 1:
        examples = ", ".join(f"{n} channels: {os.fspath(f)!r}" for n, f in sorted(channels.items()))
        raise DataError(f"image folder {os.fspath(root)!r} mixes channel counts ({examples})")
    return files
