"""The offline digits OOD suite (``hat_ebm_tf.evaluation.ood_suite``): deterministic, in range, the digits' format."""

import numpy as np

from hat_ebm_tf.evaluation.ood_suite import LETTERS, digits_suite, rendered_letters
from tests.helpers import SUITE_SETS


def test_the_digits_suite_is_offline_deterministic_and_in_range():
    (in_name, held_out), out_sets = digits_suite(16)
    assert in_name == "digits:test" and held_out.shape == (398, 16, 16, 1)
    assert [name for name, _ in out_sets] == SUITE_SETS
    for name, images in out_sets:
        assert images.dtype == np.float32 and images.shape[1:] == (16, 16, 1), name
        assert -1.0 <= images.min() and images.max() <= 1.0, name
        assert len(images) == (len(LETTERS) * 4 if name == "letters" else 398), name
        assert len({image.tobytes() for image in images}) == len(images), name  # no duplicates
    again = dict(digits_suite(16)[1])
    for name, images in out_sets:
        np.testing.assert_array_equal(images, again[name], err_msg=name)


def test_letters_take_the_digits_format():
    letters = rendered_letters(fonts=("DejaVuSans.ttf",), letters="IO")
    assert letters.shape == (2, 8, 8, 1)
    # 17 grey levels mapped to [-1, 1] as load_digits maps them: g / 8 - 1.
    np.testing.assert_array_equal((letters + 1.0) * 8.0, np.round((letters + 1.0) * 8.0))
    i, o = letters[..., 0] > -1.0
    assert i[:, 3:5].sum() > i[:, :2].sum() + i[:, 6:].sum()  # "I": a centred vertical stroke
    assert not o[3:5, 3:5].any() and o[:, 1].any() and o[:, 6].any()  # "O": a ring, hollow in the middle
