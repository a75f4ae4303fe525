"""Image data sets built offline from what the installed packages ship: glyphs and photo patches.

Both are fixed, seeded sets with a train split and a disjoint held-out split,
so that a model trained on one can be scored against images it never saw:

- **glyphs**: the digits 0-9 and the letters A-Z, white on black, rendered
  from the fonts that matplotlib ships (DejaVu, STIX, Computer Modern), each
  image with its own font, glyph height, position and stroke width;
  labelled (36 classes).
- **photo patches**: square RGB crops of the photographs that scikit-learn
  (``china.jpg``, ``flower.jpg``) and scikit-image ship, of random sides and
  positions, resized. The held-out split is other crops of the same photos,
  drawn with another seed: a natural image's patches vary so much from one
  part of a photo to the next that held-out regions of their own would be
  another distribution (the floor row would then sit far above what a model
  of the train crops can reach). Held-out crops may overlap training crops, as
  two photos of one scene would; the copying check measures against them.

NumPy and Pillow only (no TensorFlow): the sets are uint8 arrays, which the
data pipeline (``hat_ebm_tf.data``) reads like an ``.npz`` file.
"""

import functools

import numpy as np

NATIVE_SIZE = 32  # both sets are made at 32×32; the data pipeline resizes them to a model's size
SPLIT_SIZES = {"train": 5000, "held_out": 1000}
SPLIT_SEEDS = {"train": 0, "held_out": 1}
SPLITS = (*SPLIT_SIZES, "all")

GLYPH_CLASSES = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Fonts in matplotlib's own mpl-data/fonts/ttf (the same on every machine with matplotlib), not the system's.
GLYPH_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "cmr10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
)
# Per image: glyph height as a fraction of the side, and the stroke's dilation radius in pixels of the
# 4× canvas it is drawn on (0: the font's own stroke; each step thickens it by half an output pixel).
GLYPH_HEIGHT = (0.5, 0.85)
GLYPH_DILATION = (0, 1, 2, 3)
_OVERSAMPLE = 4  # glyphs are drawn at 4× and averaged down, which antialiases them
_RENDER_PX = 96  # the font size (pixels per em) of the master bitmaps

# Photographs that ship with scikit-learn and scikit-image (RGB).
PHOTOS = (
    ("sklearn", "china.jpg"),
    ("sklearn", "flower.jpg"),
    ("skimage", "astronaut"),
    ("skimage", "chelsea"),
    ("skimage", "coffee"),
    ("skimage", "rocket"),
    ("skimage", "stereo_motorcycle"),
)
PATCH_SIDE = (32, 96)  # crop sides in photo pixels, before the resize to NATIVE_SIZE


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {list(SPLITS)}")


def _joined(make, split):
    """``make(split)`` for one split, or the train then held-out images for ``all``."""
    if split != "all":
        return make(split)
    parts = [make(s) for s in SPLIT_SIZES]
    return (
        tuple(np.concatenate(p) for p in zip(*parts, strict=True))
        if isinstance(parts[0], tuple)
        else np.concatenate(parts)
    )


# ------------------------------------------------------------------ glyphs
@functools.cache
def _master_glyphs():
    """``{(font, char): float32 [h, w] in [0, 1]}``: each glyph's tight bitmap at ``_RENDER_PX``."""
    # matplotlib's fonts, scipy and Pillow: loaded only when a set is first made, not by every importer of the data.
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    directory = font_manager.findfont("DejaVu Sans", fallback_to_default=True).rpartition("/")[0]
    masters = {}
    for name in GLYPH_FONTS:
        font = FT2Font(f"{directory}/{name}")
        font.set_size(_RENDER_PX, 72)
        for char in GLYPH_CLASSES:
            font.set_text(char, 0.0)
            font.draw_glyphs_to_bitmap()
            bitmap = np.asarray(font.get_image(), np.float32) / 255.0
            rows, cols = np.nonzero(bitmap > 0.05)
            masters[name, char] = bitmap[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    return masters


def _dilate(bitmap, radius):
    """Grey dilation of ``bitmap`` by a disc of ``radius`` pixels (a thicker stroke)."""
    if radius == 0:
        return bitmap
    from scipy import ndimage  # loaded only when glyphs are drawn (as matplotlib's fonts above)

    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    padded = np.pad(bitmap, radius)
    return ndimage.grey_dilation(padded, footprint=(x * x + y * y) <= radius * radius)


def _render_glyph(master, height, dilation, offset, size):
    """One glyph drawn into a ``size × size`` image: float32 in [0, 1].

    Args:
        master: the glyph's tight bitmap.
        height: its height as a fraction of ``size``.
        dilation: stroke dilation radius (canvas pixels).
        offset: ``(dy, dx)`` in [0, 1]²: where the glyph sits in the free space around it.
        size: output side.
    """
    from PIL import Image  # loaded only when glyphs are drawn (as matplotlib's fonts above)

    canvas_side = size * _OVERSAMPLE
    glyph_h = max(2, round(height * canvas_side))
    glyph_w = max(2, min(canvas_side, round(master.shape[1] * glyph_h / master.shape[0])))
    glyph = np.asarray(Image.fromarray(master).resize((glyph_w, glyph_h), Image.BILINEAR), np.float32)
    glyph = _dilate(np.clip(glyph, 0.0, 1.0), dilation)[:canvas_side, :canvas_side]
    canvas = np.zeros((canvas_side, canvas_side), np.float32)
    top = int(offset[0] * (canvas_side - glyph.shape[0]))
    left = int(offset[1] * (canvas_side - glyph.shape[1]))
    canvas[top : top + glyph.shape[0], left : left + glyph.shape[1]] = glyph
    return canvas.reshape(size, _OVERSAMPLE, size, _OVERSAMPLE).mean(axis=(1, 3))


@functools.cache
def _glyph_split(split):
    rng = np.random.default_rng(SPLIT_SEEDS[split])
    count = SPLIT_SIZES[split]
    masters = _master_glyphs()
    labels = rng.integers(0, len(GLYPH_CLASSES), count)
    fonts = rng.integers(0, len(GLYPH_FONTS), count)
    heights = rng.uniform(*GLYPH_HEIGHT, count)
    dilations = rng.choice(GLYPH_DILATION, count)
    offsets = rng.uniform(0.0, 1.0, (count, 2))
    images = np.stack(
        [
            _render_glyph(masters[GLYPH_FONTS[f], GLYPH_CLASSES[c]], h, int(d), o, NATIVE_SIZE)
            for c, f, h, d, o in zip(labels, fonts, heights, dilations, offsets, strict=True)
        ]
    )
    pixels = np.round(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)[..., None]
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


def glyphs(split="train", return_labels=False):
    """The glyph set: digits and capital letters rendered from matplotlib's fonts.

    Args:
        split: ``train`` (5000), ``held_out`` (1000, other draws of the same
            fonts, heights, positions and strokes) or ``all`` (both, train first).
        return_labels: also return the ``[N]`` int64 class indices into ``GLYPH_CLASSES``.

    Returns:
        uint8 ``[N, 32, 32, 1]`` (read-only), white glyphs on black (and labels).
    """
    _check_split(split)
    images, labels = _joined(_glyph_split, split)
    return (images, labels) if return_labels else images


# ------------------------------------------------------------ photo patches
def _photo(package, name):
    """One shipped photograph as uint8 ``[H, W, 3]``."""
    if package == "sklearn":
        from sklearn.datasets import load_sample_image  # the data modules: loaded only when patches are made

        return load_sample_image(name)
    import skimage.data  # as scikit-learn's above

    image = getattr(skimage.data, name)()
    return image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disparity)


@functools.cache
def _photos():
    return tuple(_photo(package, name) for package, name in PHOTOS)


@functools.cache
def _patch_split(split):
    from PIL import Image  # loaded only when the patches are made (as the photos' modules above)

    rng = np.random.default_rng(SPLIT_SEEDS[split])
    photos = _photos()
    patches = []
    for _ in range(SPLIT_SIZES[split]):
        region = photos[int(rng.integers(0, len(photos)))]
        side = int(rng.integers(PATCH_SIDE[0], PATCH_SIDE[1] + 1))
        top = int(rng.integers(0, region.shape[0] - side + 1))
        left = int(rng.integers(0, region.shape[1] - side + 1))
        crop = Image.fromarray(np.ascontiguousarray(region[top : top + side, left : left + side]))
        patches.append(np.asarray(crop.resize((NATIVE_SIZE, NATIVE_SIZE), Image.BOX), np.uint8))
    images = np.stack(patches)
    images.flags.writeable = False
    return images


def photo_patches(split="train"):
    """The photo-patch set: square RGB crops of the photographs scikit-learn and scikit-image ship.

    Args:
        split: ``train`` (5000), ``held_out`` (1000 other crops of the same
            photos) or ``all``.

    Returns:
        uint8 ``[N, 32, 32, 3]`` (read-only).
    """
    _check_split(split)
    return _joined(_patch_split, split)
