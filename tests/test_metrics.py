import numpy as np
import pytest
import scipy.linalg

from hat_ebm_tf.metrics import (
    FeatureReservoir,
    StreamingMoments,
    frechet_distance,
    frechet_distance_from_features,
    kernel_inception_distance,
    load_statistics,
    polynomial_mmd2,
    save_statistics,
)


# ------------------------------------------------------------------ FID / KID
def _ttur_frechet_distance(mu1, sigma1, mu2, sigma2):
    """TTUR's form: scipy sqrtm of the non-symmetric product sigma1·sigma2."""
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    diff = mu1 - mu2
    return diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)


@pytest.mark.parametrize("rows", [(400, 300), (12, 300), (9, 20)], ids=["full-rank", "one-rank-deficient", "both"])
def test_frechet_distance_matches_scipy_sqrtm(rng, rows):
    dim = 32
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    a = rng.normal(size=(rows[0], dim)) @ mixing + 0.3
    b = 1.5 * rng.normal(size=(rows[1], dim)) - 0.1
    stats = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    expected = _ttur_frechet_distance(*stats)
    assert frechet_distance(*stats) == pytest.approx(expected, rel=1e-4)
    assert frechet_distance_from_features(a, b) == pytest.approx(expected, rel=1e-4)
    # d(P, P) = 0, up to the square roots of round-off at the zero eigenvalues of rank-deficient covariances.
    assert abs(frechet_distance(*stats[:2], *stats[:2])) < 1e-6 * np.trace(stats[1])


def test_frechet_distance_names_bad_statistics():
    with pytest.raises(ValueError, match=r"mu \[3\] and sigma \[3, 2\]"):
        frechet_distance(np.zeros(3), np.eye(3)[:, :2], np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match=r"dimensions differ \(3 and 2\)"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="non-finite"):
        frechet_distance(np.zeros(2), np.eye(2), np.array([0.0, np.nan]), np.eye(2))


def test_streaming_moments_equal_the_batch_statistics(rng):
    # A large common offset: the per-batch centring must not lose the small spread.
    features = 1e4 + rng.normal(size=(131, 6)) @ rng.normal(size=(6, 6))
    moments = StreamingMoments()
    for start, stop in [(0, 1), (1, 8), (8, 100), (100, 131)]:
        moments.update(features[start:stop])
    assert moments.count == 131
    np.testing.assert_allclose(moments.mean, features.mean(0), rtol=1e-12)
    np.testing.assert_allclose(moments.covariance, np.cov(features, rowvar=False), rtol=1e-9)
    with pytest.raises(ValueError, match="dimension 5, earlier ones 6"):
        moments.update(np.zeros((2, 5)))
    one = StreamingMoments()
    one.update(features[:1])
    with pytest.raises(ValueError, match="at least 2 rows, got 1"):
        _ = one.covariance


def _direct_mmd2(x, y):
    """Unbiased MMD² with k(a, b) = (a·b/d + 1)³, pair by pair."""
    d = x.shape[1]

    def k(a, b):
        return (np.dot(a, b) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2.0 * xy


def test_kid_matches_a_direct_numpy_implementation(rng):
    x = rng.normal(size=(15, 5))
    y = 0.8 * rng.normal(size=(12, 5)) + 0.2
    assert polynomial_mmd2(x, y) == pytest.approx(_direct_mmd2(x, y), rel=1e-10)
    # Subsets as large as the sets hold every row: each round is the full-set MMD², in another order.
    mean, std = kernel_inception_distance(x[:12], y, num_subsets=3, subset_size=100, seed=1)
    assert mean == pytest.approx(_direct_mmd2(x[:12], y), rel=1e-10) and std == pytest.approx(0.0, abs=1e-12)
    # Smaller subsets: rounds differ; the mean of many rounds estimates the full-set value.
    mean, std = kernel_inception_distance(x, y, num_subsets=200, subset_size=8, seed=0)
    assert std > 0 and abs(mean - _direct_mmd2(x, y)) < 3 * std
    with pytest.raises(ValueError, match="too small"):
        kernel_inception_distance(x, y[:1])


def test_feature_reservoir_keeps_a_uniform_subset(rng):
    stream = np.arange(20, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    hits = np.zeros(20)
    for seed in range(500):
        reservoir = FeatureReservoir(5, seed=seed)
        for start in range(0, 20, 6):
            reservoir.update(stream[start : start + 6])
        kept = reservoir.features[:, 0]
        assert len(kept) == 5 and np.all(np.diff(kept) > 0)  # distinct rows, in arrival order
        hits[kept.astype(int)] += 1
    # Each row is kept with probability 5/20: 125 of 500 times, binomial std ≈ 9.7.
    assert np.all(np.abs(hits - 125) < 45)
    everything = FeatureReservoir(50)
    everything.update(stream[:7])
    everything.update(stream[7:])
    np.testing.assert_array_equal(everything.features, stream)


def test_statistics_files_round_trip_and_read_ttur_files(tmp_path, rng):
    moments = StreamingMoments()
    moments.update(rng.normal(size=(10, 4)))
    save_statistics(tmp_path / "s.npz", moments, np.ones((3, 4)), {"features": {"sha256": "abc"}})
    loaded = load_statistics(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded["mu"], moments.mean)
    np.testing.assert_array_equal(loaded["sigma"], moments.covariance)
    assert loaded["count"] == 10 and loaded["kid_features"].shape == (3, 4)
    assert loaded["metadata"] == {"features": {"sha256": "abc"}}
    np.savez(tmp_path / "ttur.npz", mu=moments.mean, sigma=moments.covariance)  # TTUR's published format
    ttur = load_statistics(tmp_path / "ttur.npz")
    assert ttur["count"] is None and ttur["kid_features"] is None and ttur["metadata"] is None
    np.savez(tmp_path / "bad.npz", mu=moments.mean)
    with pytest.raises(ValueError, match=r"lacks \['sigma'\]"):
        load_statistics(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="cannot read statistics file"):
        load_statistics(tmp_path / "missing.npz")
