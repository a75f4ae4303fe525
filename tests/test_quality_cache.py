"""The quality networks' weight cache (``hat_ebm_tf.quality.cache``): keys, whole files, and a cache it cannot use."""

import numpy as np
import pytest

from hat_ebm_tf.quality import cache


def test_keys_name_everything_that_trains_the_network():
    assert cache.cache_key(a=1, b=[2, 3]) == cache.cache_key(b=[2, 3], a=1)
    assert cache.cache_key(a=1) != cache.cache_key(a=2)
    images = np.zeros((2, 4, 4, 1), "float32")
    assert cache.array_digest(images) != cache.array_digest(images.reshape(2, 16))  # the shape is part of it
    assert cache.array_digest(images) != cache.array_digest(images.astype("float64"))


def test_weights_round_trip_and_a_damaged_file_is_unreadable(tmp_path):
    weights = [np.arange(6, dtype="float32").reshape(2, 3), np.ones(4, "float32")]
    cache.save_weights(tmp_path / "net.npz", weights, {"key": "k"}, "a network")
    loaded, metadata = cache.load_weights(tmp_path / "net.npz")
    assert metadata == {"key": "k", "num_weights": 2}
    for a, b in zip(loaded, weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]  # no temporary left beside it
    (tmp_path / "net.npz").write_bytes((tmp_path / "net.npz").read_bytes()[:100])
    with pytest.raises(cache.UNREADABLE):
        cache.load_weights(tmp_path / "net.npz")


def test_a_cache_that_is_a_file_costs_a_warning_and_nothing_else(tmp_path, caplog):
    # As `HAT_EBM_CACHE=FILE hat-ebm sample --quality`: the network is used, not cached, and the file is kept.
    (tmp_path / "file").write_text("not a directory")
    with caplog.at_level("WARNING"):
        cache.save_weights(tmp_path / "file" / "net.npz", [np.ones(2, "float32")], {}, "the digits classifier")
    assert "cannot cache the digits classifier in" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"] and (tmp_path / "file").read_text()


def test_the_cache_directory_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    assert cache.cache_dir() == tmp_path
