import pytest

from hat_ebm_tf.errors import DataError
from hat_ebm_tf.sources import DataSource, parse_source


@pytest.mark.parametrize(
    ("spec", "kind", "name", "split"),
    [
        ("digits", "digits", None, "train"),
        ("digits:held_out", "digits", None, "held_out"),
        ("tfds:cifar10", "tfds", "cifar10", "train"),
        ("tfds:cifar10:test[:5000]", "tfds", "cifar10", "test[:5000]"),  # a TFDS split may slice
        ("x.npz", "array", "x.npz", "train"),
        ("x.npy", "array", "x.npy", "train"),
    ],
)
def test_a_source_string_names_kind_name_and_split(spec, kind, name, split):
    source = parse_source(spec, 32, 3 if kind != "digits" else 1, data_dir="/tfds" if kind == "tfds" else None)
    assert (source.kind, source.name, source.split) == (kind, name, split)
    assert source.data_dir == ("/tfds" if kind == "tfds" else None) and source.image_size == 32


def test_an_existing_directory_is_a_folder_source_and_options_pass_through(tmp_path):
    source = parse_source(str(tmp_path), 16, 3, random_crop=[0.5, 1, 0.75, 1.33], flip=True)
    assert (source.kind, source.name, source.flip) == ("folder", str(tmp_path), True)
    assert source.random_crop == (0.5, 1.0, 0.75, 1.33)  # a tuple of floats, as a YAML list gives it


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: parse_source("digits:tests", 16, 1), r"digits split='tests': expected one of \['train', 'held_out'"),
        (lambda: parse_source("digits", 16, 3), "channels=3: the digits are single-channel"),
        (lambda: parse_source("tfds:mnist", 16, 1), r"tfds builder name='mnist': supported builders are \['cifar10'"),
        (lambda: parse_source("no/such/dir", 16, 1), r"not 'digits\[:SPLIT\]', 'tfds:NAME\[:SPLIT\]'"),
        (lambda: DataSource("images"), r"kind='images': expected one of \['digits', 'tfds', 'folder', 'array'\]"),
        (lambda: DataSource("array"), "kind='array' needs a path"),
        (lambda: DataSource(image_size=0), "image_size=0 must be a positive integer"),
        (lambda: DataSource("array", "x.npy", random_crop=(0.9, 0.5, 1.0, 1.0)), "random_crop=.* must be"),
    ],
)
def test_a_bad_source_is_a_data_error_naming_it(make, match):
    with pytest.raises(DataError, match=match):
        make()
