import pytest

from hat_ebm_tf.errors import DataError
from hat_ebm_tf.sources import DataSource, parse_source, split_rows


@pytest.mark.parametrize(
    ("spec", "kind", "name", "split"),
    [
        ("digits", "digits", None, "train"),
        ("digits:held_out", "digits", None, "held_out"),
        ("digits:train[:200]", "digits", None, "train[:200]"),
        ("glyphs", "glyphs", None, "train"),
        ("photo-patches:held_out", "photo-patches", None, "held_out"),
        ("tfds:cifar10", "tfds", "cifar10", "train"),
        ("tfds:cifar10:test[:5000]", "tfds", "cifar10", "test[:5000]"),  # a TFDS split may slice
        ("x.npz", "array", "x.npz", "train"),
        ("x.npy", "array", "x.npy", "train"),
    ],
)
def test_a_source_string_names_kind_name_and_split(spec, kind, name, split):
    source = parse_source(
        spec, 32, 1 if kind in ("digits", "glyphs") else 3, data_dir="/tfds" if kind == "tfds" else None
    )
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
        (lambda: parse_source("no/such/dir", 16, 1), r"not 'digits', 'glyphs' or 'photo-patches' \(each \[:SPLIT\]\)"),
        (lambda: DataSource("images"), r"kind='images': expected one of \['digits', 'glyphs', 'photo-patches', 'tfds'"),
        (
            lambda: parse_source("glyphs:test", 16, 1),
            r"glyphs split='test': expected one of \['train', 'held_out', 'all'\]",
        ),
        (lambda: parse_source("digits:train[2]", 16, 1), r"split 'train\[2\]': expected NAME or NAME\[start:stop\]"),
        (lambda: DataSource("array", "x.npy", hold_out="test"), r"hold_out='test': expected one of \[None, 'train'"),
        (lambda: DataSource("array"), "kind='array' needs a path"),
        (lambda: DataSource(image_size=0), "image_size=0 must be a positive integer"),
        (lambda: DataSource("array", "x.npy", random_crop=(0.9, 0.5, 1.0, 1.0)), "random_crop=.* must be"),
    ],
)
def test_a_bad_source_is_a_data_error_naming_it(make, match):
    with pytest.raises(DataError, match=match):
        make()


def test_a_named_split_may_be_sliced():
    assert split_rows("train") == ("train", slice(None))
    assert split_rows("train[:200]") == ("train", slice(None, 200))
    assert split_rows("held_out[-5:]") == ("held_out", slice(-5, None))


@pytest.mark.parametrize(
    ("spec", "train", "held_out"),
    [
        # A train split keeps its split; the held-out images are the source's own held-out split.
        ("digits", ("train", None), ("held_out", None)),
        ("digits:train[:200]", ("train[:200]", None), ("held_out", None)),
        ("glyphs", ("train", None), ("held_out", None)),
        ("tfds:cifar10", ("train", None), ("test", None)),
        ("tfds:imagenet2012:train[:10%]", ("train[:10%]", None), ("validation", None)),
        # Any other source keeps every tenth image out of training for the quality report.
        ("digits:all", ("all", "train"), ("all", "held_out")),
        ("x.npz", ("train", "train"), ("train", "held_out")),
    ],
)
def test_each_training_source_has_its_held_out_images(spec, train, held_out):
    source = parse_source(spec, 16, 3 if spec.startswith(("tfds", "x")) else 1, flip=True)
    for part, (split, hold_out) in zip(source.train_and_held_out(), (train, held_out), strict=True):
        assert (part.kind, part.split, part.hold_out) == (source.kind, split, hold_out)
    assert source.train_and_held_out()[0].flip and not source.train_and_held_out()[1].flip  # no augmentation


def test_a_source_describes_itself_as_configs_name_it():
    assert parse_source("glyphs:train[:10]", 16, 1).describe() == "glyphs:train[:10]"
    assert parse_source("tfds:cifar10", 16, 3).describe() == "tfds:cifar10:train"
    held_out = parse_source("x.npy", 16, 1).train_and_held_out()[1]
    assert held_out.describe() == "x.npy (held_out rows of every 10)"
