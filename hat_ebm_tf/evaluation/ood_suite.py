"""The offline digits OOD suite of `hat-ebm ood --suite digits`.

**The suite** (``digits_suite``) needs no download: held-out digits (the
``test`` split, which neither training nor calibration saw) against six sets
built from what scikit-learn and matplotlib ship:

- ``rotated``: the same held-out digits turned by 90° or 270°;
- ``inverted``: the same digits, black on white (``-x``);
- ``uniform noise``: pixels i.i.d. uniform in [-1, 1];
- ``constant``: one grey level per image, evenly spaced from black to white;
- ``photo patches``: grey square crops of scikit-learn's sample photos
  (``china.jpg``, ``flower.jpg``), resized;
- ``letters``: A–Z and a–z rendered with four DejaVu fonts that matplotlib
  ships, brought to the digits' 8×8, 17-grey-level format first.

The report of scored sets is ``hat_ebm_tf.evaluation.ood``'s.
"""

import numpy as np
import tensorflow as tf
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font
from sklearn.datasets import load_sample_images

from hat_ebm_tf.data import read_source, uint8_to_model_range
from hat_ebm_tf.sources import DataSource

SUITE_SEED = 0
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
LETTER_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
# The scikit-learn digits: 8×8 pixels of 17 grey levels (0..16).
_DIGIT_SIDE, _DIGIT_LEVELS = 8, 16


def _resize(images, size):
    """``[N, h, w, 1]`` in [-1, 1] → ``[N, size, size, 1]``, with the data pipeline's antialiased bilinear filter."""
    resized = tf.image.resize(np.asarray(images, np.float32), (size, size), method="bilinear", antialias=True)
    return np.clip(resized.numpy(), -1.0, 1.0)


def _as_digit_format(pixels):
    """Grey ``[N, 8, 8]`` in [0, 1] → the digits' 17 levels, ``[N, 8, 8, 1]`` in [-1, 1] as ``load_digits``."""
    levels = np.round(np.clip(pixels, 0.0, 1.0) * _DIGIT_LEVELS)
    return (levels / (_DIGIT_LEVELS / 2) - 1.0).astype(np.float32)[..., None]


def rendered_letters(fonts=LETTER_FONTS, letters=LETTERS):
    """Letters rendered with fonts that matplotlib ships, in the digits' 8×8 format.

    Each glyph is drawn white on black, centred on a square canvas with a
    one-eighth margin (the digits fill their 8×8 box likewise), averaged down
    to 8×8 and quantised to 17 grey levels.

    Returns:
        ``[len(fonts) · len(letters), 8, 8, 1]`` float32 in [-1, 1].
    """
    directory = font_manager.findfont("DejaVu Sans").rpartition("/")[0]
    glyphs = []
    for name in fonts:
        font = FT2Font(f"{directory}/{name}")
        font.set_size(48, 72)
        for letter in letters:
            font.set_text(letter, 0.0)
            font.draw_glyphs_to_bitmap()
            glyph = np.asarray(font.get_image(), np.float32) / 255.0
            rows, cols = np.nonzero(glyph > 0)
            glyph = glyph[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            side = int(max(glyph.shape) * 1.25)
            canvas = np.zeros((side, side), np.float32)
            top, left = (side - glyph.shape[0]) // 2, (side - glyph.shape[1]) // 2
            canvas[top : top + glyph.shape[0], left : left + glyph.shape[1]] = glyph
            small = tf.image.resize(canvas[None, ..., None], (_DIGIT_SIDE, _DIGIT_SIDE), method="area")
            glyphs.append(small.numpy()[0, ..., 0])
    return _as_digit_format(np.stack(glyphs))


def photo_patches(count, size, seed=SUITE_SEED):
    """Grey square crops of scikit-learn's sample photos, resized to ``size``.

    Crops have a random side from 16 to 128 pixels and a random position, on
    ``china.jpg`` and ``flower.jpg`` alternately.

    Args:
        count: number of patches.
        size: output height and width.
        seed: seed of the crops' sides and positions.

    Returns:
        ``[count, size, size, 1]`` float32 in [-1, 1].
    """
    photos = [uint8_to_model_range(tf.image.rgb_to_grayscale(photo)).numpy() for photo in load_sample_images().images]
    rng = np.random.default_rng(seed)
    patches = []
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(rng.integers(16, 129))
        top, left = rng.integers(0, photo.shape[0] - side + 1), rng.integers(0, photo.shape[1] - side + 1)
        patches.append(_resize(photo[None, top : top + side, left : left + side], size)[0])
    return np.stack(patches)


def digits_suite(image_size=16, seed=SUITE_SEED):
    """The offline OOD suite of the digits model.

    Args:
        image_size: the model's height and width (≥ 8); single channel.
        seed: seed of the noise and of the photo crops.

    Returns:
        ``(in_distribution, out_sets)``: ``("digits:test", [N, S, S, 1])`` and a
        list of ``(name, [M, S, S, 1])``; all float32 in [-1, 1]. N = 398;
        each set but ``letters`` (208) has N images too.
    """
    held_out = read_source(DataSource("digits", split="test", image_size=image_size, channels=1))
    count = len(held_out)
    rng = np.random.default_rng(seed)
    turns = np.where(np.arange(count) % 2 == 0, 1, 3)
    greys = np.linspace(-1.0, 1.0, count, dtype=np.float32)[:, None, None, None]
    out_sets = [
        ("rotated", np.stack([np.rot90(image, k, axes=(0, 1)) for image, k in zip(held_out, turns, strict=True)])),
        ("inverted", -held_out),
        ("uniform noise", rng.uniform(-1.0, 1.0, held_out.shape).astype(np.float32)),
        ("constant", np.broadcast_to(greys, held_out.shape).copy()),
        ("photo patches", photo_patches(count, image_size, seed)),
        ("letters", _resize(rendered_letters(), image_size)),
    ]
    return ("digits:test", held_out), out_sets
