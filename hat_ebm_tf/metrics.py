"""Sample-quality figures: FID and KID from feature statistics (the digits measure is ``hat_ebm_tf.evaluation``)."""

import json
import os
import zipfile

import numpy as np
import scipy.linalg

from hat_ebm_tf.errors import DataError


# ------------------------------------------------------------------ FID / KID
def _as_statistics(mu, sigma, name):
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise ValueError(
            f"frechet_distance: {name} needs mu [D] and sigma [D, D], got mu {list(mu.shape)} and "
            f"sigma {list(sigma.shape)}"
        )
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ValueError(f"frechet_distance: {name} has non-finite mean or covariance entries")
    return mu, sigma


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Fréchet distance between the Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``d² = |mu1 − mu2|² + tr(sigma1) + tr(sigma2) − 2·tr((sigma1·sigma2)^½)``
    (Heusel et al. 2017, "GANs trained by a two time-scale update rule",
    the TTUR FID). TTUR takes ``scipy.linalg.sqrtm`` of the non-symmetric
    product ``sigma1·sigma2``; here the trace is taken in symmetric form:
    with ``s = sigma1^½`` (from an eigendecomposition), ``sigma1·sigma2 =
    s·(s·sigma2)`` has the same eigenvalues as the symmetric positive
    semi-definite ``s·sigma2·s``, so ``tr((sigma1·sigma2)^½)`` is the sum of
    the square roots of that matrix's eigenvalues. Two ``eigh`` calls are
    faster than ``sqrtm`` and stay real and exact for rank-deficient
    covariances (fewer samples than dimensions), where ``sqrtm`` needs
    TTUR's ``eps·I`` offset.

    Args:
        mu1: ``[D]`` mean of the first feature set.
        sigma1: ``[D, D]`` covariance of the first feature set (symmetric PSD).
        mu2: ``[D]`` mean of the second feature set.
        sigma2: ``[D, D]`` covariance of the second feature set.

    Returns:
        The distance (float, ≥ 0 up to round-off; FID is this value).
    """
    mu1, sigma1 = _as_statistics(mu1, sigma1, "the first set")
    mu2, sigma2 = _as_statistics(mu2, sigma2, "the second set")
    if mu1.shape != mu2.shape:
        raise ValueError(f"frechet_distance: feature dimensions differ ({mu1.size} and {mu2.size})")
    eigenvalues, eigenvectors = scipy.linalg.eigh(sigma1)
    # Round-off makes zero eigenvalues of a PSD matrix slightly negative; clip them.
    sqrt_sigma1 = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T
    product = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    product_eigenvalues = scipy.linalg.eigvalsh((product + product.T) / 2.0)
    trace_sqrt = np.sqrt(np.clip(product_eigenvalues, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def frechet_distance_from_features(features1, features2):
    """Fréchet distance between the Gaussian fits of two feature sets (FID on Inception ``pool_3``).

    Args:
        features1: ``[N1, D]`` features, N1 ≥ 2.
        features2: ``[N2, D]`` features, N2 ≥ 2.

    Returns:
        ``frechet_distance`` of their means and (N − 1)-normalised covariances.
    """
    stats = []
    for features in (features1, features2):
        moments = StreamingMoments()
        moments.update(features)
        stats += [moments.mean, moments.covariance]
    return frechet_distance(*stats)


class StreamingMoments:
    """Mean and covariance of feature rows that arrive in batches, in float64.

    Each batch is reduced to its own mean and centred scatter matrix, and
    merged into the running ones with the pairwise update of Chan, Golub and
    LeVeque (1979): centring per batch avoids the cancellation of the
    ``Σxxᵀ − N·x̄x̄ᵀ`` form, and only ``[D]`` + ``[D, D]`` numbers are kept, so
    50 000 samples never sit in memory at once. The result equals
    ``np.mean(x, 0)`` and ``np.cov(x, rowvar=False)`` of all rows (as TTUR
    computes them) up to round-off.
    """

    def __init__(self):
        self.count = 0
        self._mean = None
        self._scatter = None

    def update(self, features):
        """Add ``[B, D]`` feature rows (any float dtype; accumulated in float64)."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or len(features) == 0:
            raise ValueError(f"StreamingMoments.update: expected features [B, D], B >= 1, got {list(features.shape)}")
        if self._mean is not None and features.shape[1] != self._mean.size:
            raise ValueError(
                f"StreamingMoments.update: features have dimension {features.shape[1]}, earlier ones {self._mean.size}"
            )
        batch_mean = features.mean(axis=0)
        centred = features - batch_mean
        batch_scatter = centred.T @ centred
        if self._mean is None:
            self.count, self._mean, self._scatter = len(features), batch_mean, batch_scatter
            return
        total = self.count + len(features)
        delta = batch_mean - self._mean
        self._scatter += batch_scatter + np.outer(delta, delta) * (self.count * len(features) / total)
        self._mean += delta * (len(features) / total)
        self.count = total

    @property
    def mean(self):
        """``[D]`` float64 mean of all rows so far."""
        if self._mean is None:
            raise ValueError("StreamingMoments: no features have been added")
        return self._mean.copy()

    @property
    def covariance(self):
        """``[D, D]`` float64 covariance of all rows so far, normalised by N − 1 (``np.cov``)."""
        if self.count < 2:
            raise ValueError(f"StreamingMoments: a covariance needs at least 2 rows, got {self.count}")
        return self._scatter / (self.count - 1)


class FeatureReservoir:
    """A uniform random subset of at most ``capacity`` feature rows from a stream.

    KID averages over random subsets of the features (below), so it cannot
    work from a mean and covariance. Each arriving row gets a random key and
    the ``capacity`` rows with the smallest keys are kept (bottom-k
    sampling): at any time they are a uniform random subset of the rows seen,
    and memory stays at ``[capacity, D]`` however long the stream.

    Args:
        capacity: most rows kept (≥ 2).
        seed: seed of the random keys.
    """

    def __init__(self, capacity, seed=0):
        if not isinstance(capacity, int) or capacity < 2:
            raise ValueError(f"FeatureReservoir: capacity={capacity!r} must be an integer >= 2")
        self.capacity = capacity
        self._rng = np.random.default_rng(seed)
        self._keys = np.empty(0)
        self._rows = None

    def update(self, features):
        """Offer ``[B, D]`` feature rows (stored as float32)."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2:
            raise ValueError(f"FeatureReservoir.update: expected features [B, D], got {list(features.shape)}")
        rows = features if self._rows is None else np.concatenate([self._rows, features])
        keys = np.concatenate([self._keys, self._rng.random(len(features))])
        keep = np.sort(np.argsort(keys, kind="stable")[: self.capacity])
        self._keys, self._rows = keys[keep], rows[keep]

    @property
    def features(self):
        """``[min(N, capacity), D]`` float32 rows kept, in arrival order."""
        if self._rows is None:
            raise ValueError("FeatureReservoir: no features have been added")
        return self._rows


def polynomial_mmd2(features1, features2):
    """Unbiased MMD² with the cubic polynomial kernel ``k(x, y) = (x·y / D + 1)³``.

    The kernel and estimator of KID (Bińkowski et al. 2018, "Demystifying MMD
    GANs"): the diagonal terms ``k(x, x)`` are left out of the within-set
    means, which makes the estimate unbiased (it can be slightly negative).

    Args:
        features1: ``[M, D]`` features, M ≥ 2.
        features2: ``[N, D]`` features, N ≥ 2.

    Returns:
        float MMD² estimate.
    """
    x = np.asarray(features1, dtype=np.float64)
    y = np.asarray(features2, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
        raise ValueError(
            f"polynomial_mmd2: expected features [M, D] and [N, D] with M, N >= 2, got {list(x.shape)} and "
            f"{list(y.shape)}"
        )
    m, n = len(x), len(y)

    def kernel_sum(a, b):
        # Σ_ij k(a_i, b_j), in place and with einsum: KID evaluates 3 × 100 such 1000×1000 sums.
        base = a @ b.T
        base /= x.shape[1]
        base += 1.0
        return np.einsum("ij,ij,ij->", base, base, base)

    def diagonal_sum(a):
        return np.sum((np.einsum("ij,ij->i", a, a) / x.shape[1] + 1.0) ** 3)

    within_x = (kernel_sum(x, x) - diagonal_sum(x)) / (m * (m - 1))
    within_y = (kernel_sum(y, y) - diagonal_sum(y)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * kernel_sum(x, y) / (m * n))


def kernel_inception_distance(features1, features2, num_subsets=100, subset_size=1000, seed=0):
    """KID (Bińkowski et al. 2018): the cubic-kernel MMD² averaged over random subsets.

    As in the authors' implementation, each of ``num_subsets`` rounds draws
    ``subset_size`` rows of each set without replacement and takes the
    unbiased ``polynomial_mmd2`` of the pair; the result is the mean and the
    standard deviation over rounds.

    Args:
        features1: ``[N1, D]`` features.
        features2: ``[N2, D]`` features.
        num_subsets: number of rounds (≥ 1).
        subset_size: rows per set and round; ``min(subset_size, N1, N2)`` is
            used (≥ 2).
        seed: seed of the subset draws.

    Returns:
        ``(mean, std)`` floats.
    """
    if not isinstance(num_subsets, int) or num_subsets < 1:
        raise ValueError(f"kernel_inception_distance: num_subsets={num_subsets!r} must be an integer >= 1")
    features1 = np.asarray(features1)
    features2 = np.asarray(features2)
    size = min(subset_size, len(features1), len(features2))
    if size < 2:
        raise ValueError(
            f"kernel_inception_distance: subsets of {size} rows (subset_size={subset_size}, sets of "
            f"{len(features1)} and {len(features2)}) are too small; need >= 2"
        )
    rng = np.random.default_rng(seed)
    values = [
        polynomial_mmd2(
            features1[rng.choice(len(features1), size, replace=False)],
            features2[rng.choice(len(features2), size, replace=False)],
        )
        for _ in range(num_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


# ------------------------------------------------------- statistics files
def save_statistics(path, moments, kid_features=None, metadata=None):
    """Write feature statistics as ``.npz``: ``mu`` ``[D]``, ``sigma`` ``[D, D]`` (TTUR's format) and extras.

    Args:
        path: output file.
        moments: ``StreamingMoments`` of the features.
        kid_features: optional ``[K, D]`` feature rows kept for KID.
        metadata: optional JSON-serialisable dict (e.g. the feature extractor
            and data source), stored as the JSON string ``metadata``.
    """
    arrays = {"mu": moments.mean, "sigma": moments.covariance, "count": np.int64(moments.count)}
    if kid_features is not None:
        arrays["kid_features"] = np.asarray(kid_features, np.float32)
    if metadata is not None:
        arrays["metadata"] = np.array(json.dumps(metadata, sort_keys=True))
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def load_statistics(path):
    """Read a statistics ``.npz`` written by ``save_statistics``, or TTUR's (``mu`` and ``sigma`` only).

    Returns:
        dict with ``mu`` ``[D]`` and ``sigma`` ``[D, D]`` (float64), and
        ``count`` (int), ``kid_features`` (``[K, D]``) and ``metadata`` (dict),
        each None when the file does not hold it.

    Raises:
        DataError: an unreadable file or one that is no ``.npz``, a missing
            ``mu``/``sigma`` or inconsistent shapes (each named).
    """
    where = os.fspath(path)
    try:
        loaded = np.load(path)  # allow_pickle=False: a file of objects fails here
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataError(f"statistics file {where!r} is not a .npz file (of arrays mu, sigma)")
        with loaded:
            arrays = {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        if isinstance(err, DataError):
            raise
        # NumPy's own message for a file that is no NumPy file suggests allow_pickle, which would run its code.
        reason = "not a .npz file" if "allow_pickle" in str(err) else str(err)
        raise DataError(f"cannot read statistics file {where!r}: {reason}") from err
    missing = [key for key in ("mu", "sigma") if key not in arrays]
    if missing:
        raise DataError(f"statistics file {where!r} lacks {missing} (it holds {sorted(arrays)})")
    mu, sigma = arrays["mu"].astype(np.float64), arrays["sigma"].astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise DataError(
            f"statistics file {where!r}: mu {list(mu.shape)} and sigma {list(sigma.shape)} are not [D] and [D, D]"
        )
    kid_features = arrays.get("kid_features")
    if kid_features is not None and (kid_features.ndim != 2 or kid_features.shape[1] != mu.size):
        raise DataError(f"statistics file {where!r}: kid_features {list(kid_features.shape)} are not [K, {mu.size}]")
    return {
        "mu": mu,
        "sigma": sigma,
        "count": int(arrays["count"]) if "count" in arrays else None,
        "kid_features": kid_features,
        "metadata": json.loads(str(arrays["metadata"])) if "metadata" in arrays else None,
    }
