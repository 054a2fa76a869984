r"""k-means: Lloyd's batch algorithm and its sequential (online) form.

k-means partitions :math:`N` points into :math:`K` clusters by minimising the distortion
(Bishop, *Pattern Recognition and Machine Learning*, eq. 9.1)

.. math::

    J = \sum_{n=1}^{N} \sum_{k=1}^{K} r_{nk}\, w_n \lVert x_n - \mu_k \rVert^2,

with :math:`r_{nk} \in \{0, 1\}` the hard assignment of point :math:`n` and :math:`w_n` its
weight (1 by default). Lloyd's algorithm is the limit of EM for a Gaussian mixture with
shared covariance :math:`\epsilon I`, :math:`\epsilon \to 0`: the E-step assigns each point
to its nearest centre (eq. 9.2) and the M-step moves each centre to the mean of its points
(eq. 9.4). :class:`OnlineKMeans` replaces the M-step by the Robbins–Monro update of
Bishop eq. 9.5.

Squared distances are computed through one matrix product per block of rows,

.. math::

    \lVert x - \mu \rVert^2 = \lVert x \rVert^2 - 2\, x^\top \mu + \lVert \mu \rVert^2,

on data centred on their mean, so memory beyond the data is O(rows per block × K). The
M-step only needs the per-cluster sums :math:`\sum_n r_{nk} w_n x_n` and
:math:`\sum_n r_{nk} w_n`, which add up over blocks; after the first iteration they are
updated with the contributions of the points whose assignment changed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy.sparse import csc_array
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.cluster import kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import row_norms
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from emkit._backend import Array, as_backend, device_of, namespace, to_numpy
from emkit._validation import check_data, check_finite, check_n_samples, check_sample_weight
from emkit.executors._chunked import available_threads

__all__ = ["KMeans", "OnlineKMeans"]

#: Elements of one block of the distance matrix: a cache-sized block for NumPy (several
#: blocks run at once on the CPU's cores), a large one for PyTorch devices.
NUMPY_BLOCK_ELEMENTS = 2**19
DEVICE_BLOCK_ELEMENTS = 2**24

#: Up to 2**SCREEN_INDEX_BITS clusters, the NumPy assignment step screens the nearest
#: centre in float32 and confirms it in float64 where float32 cannot tell (see
#: :meth:`_Data._screen`).
SCREEN_INDEX_BITS = 8

#: Unit roundoff of float32, and the range of squared norms screened in float32: below
#: SCREEN_LARGEST nothing overflows; differences below SCREEN_FLOOR (which covers underflow)
#: count as ties.
FLOAT32_ROUNDOFF = 2.0**-24
SCREEN_LARGEST = 2.0**100
SCREEN_FLOOR = 2.0**-100


def _screen_margin(n_clusters: int, n_features: int) -> float:
    r"""Relative margin :math:`c` of the float32 screening (see :meth:`_Data._screen`).

    A float32 dot product of m terms errs by at most :math:`m u / (1 - m u)` times the sum
    of the absolute products, here at most :math:`2 (\lVert x \rVert^2 +
    \lVert \mu \rVert^2)`; rounding the inputs to float32 adds :math:`3u` times as much,
    and clearing :math:`b` mantissa bits moves a value of at most
    :math:`2 (\lVert x \rVert^2 + \lVert \mu \rVert^2)` by a relative :math:`2^{b-23}`.
    The margin is twice the sum (two values are compared), with a safety factor of 2 for
    the float32 arithmetic of the threshold itself.
    """
    bits = max(1, (n_clusters - 1).bit_length())
    m = n_features + 2
    u = FLOAT32_ROUNDOFF
    error = 2.0 * (m * u / (1.0 - m * u) + 3.0 * u) + 2.0 * 2.0 ** (bits - 23)
    return 2.0 * 2.0 * error


class _Screen:
    """Float32 factors of the distance product and the constants of the screening."""

    def __init__(self, factors: np.ndarray, n_features: int, rows: int):
        n_clusters = factors.shape[0]
        bits = max(1, (n_clusters - 1).bit_length())
        margin = _screen_margin(n_clusters, n_features)
        self.offset = np.float32(factors[:, -2].max() * margin + SCREEN_FLOOR)
        self.factors = factors.astype(np.float32)
        self.mask = np.int32((1 << bits) - 1)
        self.ids = np.arange(n_clusters, dtype=np.int32)[:, None]
        self.rows = rows

    def buffers(self) -> dict:
        """Scratch arrays for one thread: blocks of up to ``rows`` rows."""
        n_clusters = self.factors.shape[0]
        return {
            "distances": np.empty(n_clusters * self.rows, dtype=np.float32),
            "close": np.empty(n_clusters * self.rows, dtype=bool),
            "threshold": np.empty(self.rows, dtype=np.float32),
            "nearest": np.empty(self.rows, dtype=np.int32),
            "rivals": np.empty(self.rows, dtype=np.int16),
        }


class _Data:
    """Data centred on a fixed point, as the assignment and M-steps read them.

    The data are not copied: blocks of rows are centred as they are read (in float64 for
    NumPy, in their own dtype on their device for PyTorch tensors). For NumPy and up to
    2**SCREEN_INDEX_BITS clusters, a float32 copy ``[x - m, 1, ||x - m||²]`` serves the
    screening of the assignment step: one matrix product with ``[-2 μ, ||μ||², 1]`` gives
    squared distances directly. NumPy work is spread over a pool of threads, as ranges of
    rows, BLAS single-threaded inside each (NumPy and BLAS release the GIL).

    A context manager: the thread pool lives from construction to exit.
    """

    def __init__(self, X: Array, centre: np.ndarray, sample_weight: Array | None,
                 n_clusters: int, chunk_size: int | None):
        self.xp = namespace(X)
        self.X = X
        self.n_samples, self.n_features = X.shape
        self.n_clusters = n_clusters
        self.weights = sample_weight
        self.on_numpy = isinstance(X, np.ndarray)
        self.shift = centre if self.on_numpy else as_backend(centre, like=X)
        budget = NUMPY_BLOCK_ELEMENTS if self.on_numpy else DEVICE_BLOCK_ELEMENTS
        widest = max(n_clusters, self.n_features + 2)
        self.rows = chunk_size if chunk_size is not None else max(64, budget // widest)
        n_blocks = math.ceil(self.n_samples / self.rows)
        self.n_threads = min(available_threads(), n_blocks) if self.on_numpy else 1
        self._pool = self._blas = None
        if self.n_threads > 1:
            self._blas = threadpool_limits(limits=1, user_api="blas")
            self._pool = ThreadPoolExecutor(self.n_threads)
        self.single = self.margins = None
        screened = max(1, (n_clusters - 1).bit_length()) <= SCREEN_INDEX_BITS
        self._screenable = self.on_numpy and screened

    def _fill_single(self) -> None:
        """The float32 copy ``[x - m, 1, ||x - m||²]`` and the per-row screening margins.

        Made at the first assignment; given up where squared norms could overflow float32.
        """
        d = self.n_features
        self.single = np.empty((self.n_samples, d + 2), np.float32)
        self.margins = np.empty(self.n_samples, np.float32)
        margin = _screen_margin(self.n_clusters, d)

        def fill(first, last):
            largest = 0.0
            for start, stop in self._blocks(first, last):
                x = self.centred(slice(start, stop))
                norms = row_norms(x, squared=True)
                self.single[start:stop, :d] = x
                self.single[start:stop, d] = 1.0
                self.single[start:stop, d + 1] = norms
                np.multiply(norms, margin, out=self.margins[start:stop])
                largest = max(largest, norms.max())
            return largest

        if max(self._map(fill)) > SCREEN_LARGEST:
            self.single = self.margins = None
            self._screenable = False

    def __enter__(self) -> _Data:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._blas.unregister()
            self._pool = self._blas = None

    def _map(self, task, n: int | None = None) -> list:
        """``task(first, last)`` over consecutive ranges covering rows ``0:n``, in order.

        With a thread pool, about four ranges per thread (a whole number of blocks each),
        run concurrently; otherwise a single range.
        """
        n = self.n_samples if n is None else n
        if self._pool is None:
            return [task(0, n)]
        n_blocks = math.ceil(n / self.rows)
        span = self.rows * max(1, math.ceil(n_blocks / (4 * self.n_threads)))
        ranges = [(first, min(first + span, n)) for first in range(0, n, span)]
        return list(self._pool.map(lambda bounds: task(*bounds), ranges))

    def _blocks(self, first: int, last: int):
        for start in range(first, last, self.rows):
            yield start, min(start + self.rows, last)

    # ------------------------------------------------------------------ rows

    def centred(self, index) -> Array:
        """Rows ``index`` (a slice or indices) minus the centre; float64 for NumPy."""
        return self.X[index] - self.shift

    @property
    def weights_host(self) -> np.ndarray:
        """Sample weights as float64 NumPy (ones when unweighted)."""
        if self.weights is None:
            return np.ones(self.n_samples)
        return to_numpy(self.weights, dtype=np.float64)

    def rows_host(self, rows: np.ndarray) -> np.ndarray:
        """Centred rows ``rows`` as float64 NumPy."""
        return to_numpy(self.centred(_indices(rows, self.X)), dtype=np.float64)

    # ------------------------------------------------------------------ E-step

    def assign(self, centres: np.ndarray, previous: Array | None = None):
        r"""Nearest centre of every row, :math:`\arg\min_k \lVert x_n - \mu_k \rVert^2`.

        Returns the labels and, when ``previous`` labels are given, the indices of the rows
        whose label changed (``None`` otherwise).
        """
        if self.on_numpy:
            return self._assign_numpy(centres, previous)
        xp = self.xp
        C = as_backend(centres, like=self.X)
        squared_norms = xp.sum(C * C, axis=1)

        def task(first, last):
            return [
                xp.argmin(squared_norms - 2.0 * (self.centred(slice(start, stop)) @ C.T), axis=1)
                for start, stop in self._blocks(first, last)
            ]

        labels = xp.concat([part for parts in self._map(task) for part in parts])
        if previous is None:
            return labels, None
        return labels, xp.nonzero(labels != previous)[0]

    def _assign_numpy(self, centres: np.ndarray, previous: np.ndarray | None):
        n_clusters, d = centres.shape
        factors = np.empty((n_clusters, d + 2))
        factors[:, :d] = -2.0 * centres
        factors[:, d] = row_norms(centres, squared=True)
        factors[:, d + 1] = 1.0
        labels = np.empty(self.n_samples, dtype=np.int32)
        if self._screenable and self.single is None:
            self._fill_single()
        screen = None
        if self.single is not None and factors[:, d].max() <= SCREEN_LARGEST:
            screen = _Screen(factors, d, self.rows)

        def task(first, last):
            return self._assign_range(factors, screen, labels, previous, first, last)

        changed = self._map(task)
        if previous is None:
            return labels, None
        return labels, np.concatenate(changed)

    def _assign_range(self, factors, screen, labels, previous, first: int,
                      last: int) -> np.ndarray:
        """Assign rows ``first:last`` block by block; the indices of changed labels."""
        buffers = None if screen is None else screen.buffers()
        changed = [np.empty(0, dtype=np.intp)]
        for start, stop in self._blocks(first, last):
            out = labels[start:stop]
            if screen is None:
                out[:] = self._nearest(factors, slice(start, stop))
            else:
                self._screen(screen, buffers, factors, start, stop, out)
            if previous is not None:
                changed.append(np.flatnonzero(out != previous[start:stop]) + start)
        return np.concatenate(changed)

    def _nearest(self, factors: np.ndarray, rows) -> np.ndarray:
        r"""Nearest centres of ``rows`` from float64 :math:`\lVert\mu\rVert^2 - 2x^\top\mu`."""
        d = self.n_features
        return np.argmin(self.centred(rows) @ factors[:, :d].T + factors[:, d], axis=1)

    def _screen(self, screen: _Screen, buffers: dict, factors: np.ndarray, start: int,
                stop: int, out: np.ndarray) -> None:
        r"""Nearest centres of rows ``start:stop``: float32 screening, float64 where in doubt.

        The squared distances :math:`s_{kn}` of the block come from one float32 product of
        shape (K, rows). The cluster index replaces the lowest
        :math:`b = \lceil \log_2 K \rceil` mantissa bits of each: non-negative floats
        order as their bit patterns do, so one integer minimum over the clusters gives the
        smallest value :math:`p_n` with its index in the low bits. Rounding (of the data,
        of the product, of the packing) moves each value by at most
        :math:`E_n = c\, (\lVert x_n \rVert^2 + \max_k \lVert \mu_k \rVert^2)`, with
        :math:`c` from the float32 unit roundoff, D and b (:func:`_screen_margin`); where another
        cluster comes within :math:`2 E_n` (or SCREEN_FLOOR) of the minimum, float32 cannot
        tell them apart and the row is assigned from float64 distances instead. The other
        rows get the nearest centre in exact arithmetic, hence the one float64 gives.
        """
        size = stop - start
        n_clusters = screen.factors.shape[0]
        distances = buffers["distances"][: n_clusters * size].reshape(n_clusters, size)
        close = buffers["close"][: n_clusters * size].reshape(n_clusters, size)
        threshold, nearest = buffers["threshold"][:size], buffers["nearest"][:size]
        rivals = buffers["rivals"][:size]
        np.matmul(screen.factors, self.single[start:stop].T, out=distances)
        keys = distances.view(np.int32)
        np.bitwise_and(keys, ~screen.mask, out=keys)
        np.bitwise_or(keys, screen.ids, out=keys)
        np.minimum.reduce(keys, axis=0, out=nearest)
        np.bitwise_and(nearest, screen.mask, out=out, casting="unsafe")
        np.add(self.margins[start:stop], screen.offset, out=threshold)
        threshold += nearest.view(np.float32)
        np.less_equal(distances, threshold, out=close)
        np.add.reduce(close, axis=0, dtype=np.int16, out=rivals)
        doubtful = np.flatnonzero(rivals > 1)
        if 4 * doubtful.size > size:
            out[:] = self._nearest(factors, slice(start, stop))
        elif doubtful.size:
            out[doubtful] = self._nearest(factors, doubtful + start)

    # ------------------------------------------------------------------ M-step statistics

    def statistics(self, labels: Array, previous: Array | None = None,
                   rows: Array | None = None) -> np.ndarray:
        r"""Per-cluster sums of ``[w x, w, 1{w > 0}]`` as float64, shape (K, D + 2).

        Without ``previous``, the sums over all rows under ``labels``. With ``previous``
        and ``rows``, the change of those sums when the rows ``rows`` move from their
        ``previous`` cluster to their cluster in ``labels``; the sums add up. NumPy data
        go through sparse products with the K × m matrix of :math:`\pm w_n`, other
        backends through one-hot matrix products, block by block.
        """
        if self.on_numpy:
            return self._statistics_numpy(labels, previous, rows)
        xp = self.xp
        cluster_ids = xp.arange(self.n_clusters, device=device_of(self.X))

        def task(first, last):
            total = np.zeros((self.n_clusters, self.n_features + 2))
            for start, stop in self._blocks(first, last):
                index = slice(start, stop) if rows is None else rows[start:stop]
                x = self.centred(index)
                weights = None if self.weights is None else self.weights[index]
                membership = xp.astype(labels[index][:, None] == cluster_ids, x.dtype)
                if previous is not None:
                    left = xp.astype(previous[index][:, None] == cluster_ids, x.dtype)
                    membership = membership - left
                if weights is None:
                    ones = xp.ones((stop - start, 1), dtype=x.dtype, device=device_of(x))
                    values = xp.concat([x, ones, ones], axis=1)
                else:
                    w = weights[:, None]
                    values = xp.concat([x * w, w, xp.astype(w > 0, x.dtype)], axis=1)
                total += to_numpy(membership.T @ values, dtype=np.float64)
            return total

        return sum(self._map(task, self.n_samples if rows is None else int(rows.shape[0])))

    def _statistics_numpy(self, labels: np.ndarray, previous: np.ndarray | None,
                          rows: np.ndarray | None) -> np.ndarray:
        k, d = self.n_clusters, self.n_features

        def task(first, last):
            total = np.zeros((k, d + 2))
            for start, stop in self._blocks(first, last):
                index = slice(start, stop) if rows is None else rows[start:stop]
                x, new = self.centred(index), labels[index]
                m = new.shape[0]
                weights = np.ones(m) if self.weights is None else self.weights[index]
                positive = weights > 0
                total[:, d] += np.bincount(new, weights=weights, minlength=k)
                total[:, d + 1] += np.bincount(new[positive], minlength=k)
                if previous is None:
                    entries, data, step = new, weights, 1
                else:
                    old = previous[index]
                    total[:, d] -= np.bincount(old, weights=weights, minlength=k)
                    total[:, d + 1] -= np.bincount(old[positive], minlength=k)
                    entries = np.stack([new, old], axis=1).ravel()
                    data = np.stack([weights, -weights], axis=1).ravel()
                    step = 2
                indptr = np.arange(0, step * m + 1, step)
                total[:, :d] += csc_array((data, entries, indptr), shape=(k, m)) @ x
            return total

        return sum(self._map(task, self.n_samples if rows is None else int(rows.shape[0])))

    # ------------------------------------------------------------------ distances

    def squared_distances(self, centres: np.ndarray, labels: Array) -> np.ndarray:
        r""":math:`\lVert x_n - \mu_{z_n} \rVert^2` for every row, as float64 NumPy."""
        xp = self.xp
        C = as_backend(centres, like=self.X)

        def task(first, last):
            parts = [np.empty(0)]
            for start, stop in self._blocks(first, last):
                diff = self.centred(slice(start, stop)) - C[labels[start:stop]]
                parts.append(to_numpy(xp.sum(diff * diff, axis=1), dtype=np.float64))
            return np.concatenate(parts)

        return np.concatenate(self._map(task))

    def inertia(self, centres: np.ndarray, labels: Array) -> float:
        r"""The objective :math:`J = \sum_n w_n \lVert x_n - \mu_{z_n} \rVert^2`."""
        distances = self.squared_distances(centres, labels)
        if self.weights is None:
            return float(distances.sum())
        return float(distances @ self.weights_host)

    def distances(self, centres: np.ndarray, dtype) -> Array:
        """Euclidean distances from every row to every centre, shape (N, K)."""
        xp = self.xp
        C = as_backend(centres, like=self.X)
        squared_norms = xp.sum(C * C, axis=1)

        def task(first, last):
            parts = []
            for start, stop in self._blocks(first, last):
                x = self.centred(slice(start, stop))
                squared = xp.sum(x * x, axis=1)[:, None] - 2.0 * (x @ C.T) + squared_norms
                parts.append(xp.astype(xp.sqrt(xp.clip(squared, min=0.0)), dtype))
            return parts

        return xp.concat([part for parts in self._map(task) for part in parts])


def _indices(index, like: Array) -> Array:
    """Integer indices ``index`` in the namespace and on the device of ``like``."""
    index = np.array(index, dtype=np.int64)
    if isinstance(like, np.ndarray):
        return index
    return as_backend(index, like=like, dtype=namespace(like).int64)


# ---------------------------------------------------------------------- initialisation


def _kmeans_plusplus(data: _Data, n_clusters: int, random_state) -> np.ndarray:
    """Greedy k-means++ seeds (Arthur and Vassilvitskii, 2007), centred, float64.

    NumPy data go through :func:`sklearn.cluster.kmeans_plusplus`, so the same random
    state gives scikit-learn's seeds; other backends run the same algorithm on their
    device, drawing the same random numbers.
    """
    if data.on_numpy:
        centres, _ = kmeans_plusplus(
            data.centred(slice(None)), n_clusters, sample_weight=data.weights_host,
            random_state=random_state,
        )
        return centres
    xp, X = data.xp, data.centred(slice(None))
    weights_host = data.weights_host
    weights = as_backend(weights_host, like=X)
    n_trials = 2 + int(np.log(n_clusters))
    squared_norms = xp.sum(X * X, axis=1)

    def squared_distances(index):
        rows = X[_indices(index, X)]
        squared = xp.sum(rows * rows, axis=1)[:, None] - 2.0 * (rows @ X.T) + squared_norms
        return xp.clip(squared, min=0.0)

    first = int(random_state.choice(data.n_samples, p=weights_host / weights_host.sum()))
    chosen = [first]
    closest = squared_distances([first])[0]
    potential = float(xp.sum(closest * weights))
    for _ in range(1, n_clusters):
        targets = random_state.uniform(size=n_trials) * potential
        cumulative = xp.cumulative_sum(weights * closest)
        candidates = xp.searchsorted(cumulative, as_backend(targets, like=cumulative))
        candidates = to_numpy(xp.clip(candidates, max=data.n_samples - 1))
        trial = xp.minimum(closest, squared_distances(candidates))
        potentials = trial @ weights
        best = int(xp.argmin(potentials))
        potential = float(potentials[best])
        closest = trial[best]
        chosen.append(int(candidates[best]))
    return data.rows_host(np.asarray(chosen))


def _random_rows(data: _Data, n_clusters: int, random_state) -> np.ndarray:
    """``n_clusters`` distinct rows drawn with probability proportional to weight."""
    weights = data.weights_host
    seeds = random_state.choice(
        data.n_samples, size=n_clusters, replace=False, p=weights / weights.sum()
    )
    return data.rows_host(seeds)


def _initial_centres(data: _Data, init, n_clusters: int, random_state,
                     centre: np.ndarray) -> np.ndarray:
    """Centred float64 starting centres from ``init``."""
    if isinstance(init, str) and init == "k-means++":
        return _kmeans_plusplus(data, n_clusters, random_state)
    if isinstance(init, str) and init == "random":
        return _random_rows(data, n_clusters, random_state)
    return init - centre


def _check_init_array(init, n_clusters: int, n_features: int) -> np.ndarray:
    """``init`` as float64 NumPy of shape (n_clusters, n_features), or a clear error."""
    centres = to_numpy(init, dtype=np.float64)
    if centres.ndim != 2 or centres.shape[0] != n_clusters:
        raise ValueError(
            f"The shape of the initial centers {centres.shape} does not match the number "
            f"of clusters {n_clusters}."
        )
    if centres.shape[1] != n_features:
        raise ValueError(
            f"The shape of the initial centers {centres.shape} does not match the number "
            f"of features of the data {n_features}."
        )
    check_finite(centres, "init")
    return centres


def _tolerance(X: Array, sample_weight: Array | None, tol: float) -> float:
    """``tol`` times the mean over features of the (weighted) variance of ``X``."""
    if tol == 0:
        return 0.0
    xp = namespace(X)
    if sample_weight is None:
        variances = xp.var(X, axis=0)
    else:
        w = sample_weight / xp.sum(sample_weight)
        mean = w @ X
        variances = w @ ((X - mean) ** 2)
    return float(xp.mean(variances)) * tol


# ---------------------------------------------------------------------- Lloyd


def _relocate_empty_clusters(data: _Data, centres: np.ndarray, sums: np.ndarray,
                             labels: Array) -> None:
    """Give each cluster of zero weight the point farthest from its centre.

    As scikit-learn's ``_relocate_empty_clusters``: the farthest points (by distance to
    the centre they are assigned to) move, for this M-step only, from their cluster's
    sums to the empty clusters, which become these points.
    """
    d = centres.shape[1]
    empty = np.flatnonzero(sums[:, d] == 0)
    if empty.size == 0:
        return
    distances = data.squared_distances(centres, labels)
    if distances.max() == 0:
        return
    far = np.argpartition(distances, -empty.size)[: -empty.size - 1 : -1]
    points = data.rows_host(far)
    weights = data.weights_host[far]
    owners = to_numpy(labels)[far]
    for cluster, point, weight, owner in zip(empty, points, weights, owners, strict=True):
        sums[owner, :d] -= point * weight
        sums[cluster, :d] = point * weight
        sums[cluster, d] = weight
        sums[owner, d] -= weight


def _average(sums: np.ndarray) -> np.ndarray:
    r"""Centres :math:`\mu_k = \sum_n r_{nk} w_n x_n / \sum_n r_{nk} w_n` (Bishop eq. 9.4).

    A cluster left without weight takes the centre of the heaviest cluster.
    """
    d = sums.shape[1] - 1
    weights = sums[:, d]
    centres = np.empty((sums.shape[0], d))
    full = weights > 0
    centres[full] = sums[full, :d] * (1.0 / weights[full])[:, None]
    centres[~full] = centres[np.argmax(weights)]
    return centres


def _lloyd(data: _Data, centres: np.ndarray, max_iter: int, tol: float, verbose: int):
    """One run of Lloyd's algorithm from centred ``centres``, as scikit-learn's.

    Stops when no label changes (strict convergence) or when the squared shift of the
    centres, summed over clusters, is at most ``tol``. Returns labels, inertia, centred
    centres and the number of iterations.
    """
    n, d = data.n_samples, data.n_features
    labels = sums = None
    moved = 0
    strict = False
    for iteration in range(max_iter):
        new_labels, changed = data.assign(centres, labels)
        n_changed = n if changed is None else int(changed.shape[0])
        incremental = sums is not None and moved + n_changed <= n
        if incremental:
            if n_changed:
                sums += data.statistics(new_labels, labels, changed)
                moved += n_changed
                sums[sums[:, d + 1] == 0] = 0.0
            incremental = not np.any((sums[:, d] <= 0) & (sums[:, d + 1] > 0))
        if not incremental:
            sums = data.statistics(new_labels)
            moved = 0
        step = sums[:, : d + 1].copy()
        _relocate_empty_clusters(data, centres, step, new_labels)
        new_centres = _average(step)
        shift = float(((new_centres - centres) ** 2).sum())
        if verbose:
            print(f"Iteration {iteration}, inertia {data.inertia(centres, new_labels)}.")
        centres = new_centres
        labels = new_labels
        if n_changed == 0:
            strict = True
            if verbose:
                print(f"Converged at iteration {iteration}: strict convergence.")
            break
        if shift <= tol:
            if verbose:
                print(
                    f"Converged at iteration {iteration}: center shift {shift} within "
                    f"tolerance {tol}."
                )
            break
    if not strict:
        labels, _ = data.assign(centres)
    return labels, data.inertia(centres, labels), centres, iteration + 1


def _same_clustering(first: Array, second: Array, n_clusters: int) -> bool:
    """Whether two labelings are the same partition up to a renaming of the clusters."""
    first, second = to_numpy(first), to_numpy(second)
    mapping = np.full(n_clusters, -1)
    mapping[first] = second
    return bool(np.array_equal(mapping[first], second))


# ---------------------------------------------------------------------- estimators


class _CentroidClustering(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator
):
    """Prediction, distances and score shared by the k-means estimators."""

    def _query(self, X, sample_weight=None) -> tuple[Array, np.ndarray, _Data]:
        """Validated ``X``, the centres centred on their mean, and ``X`` so centred."""
        check_is_fitted(self)
        X = check_data(self, X, reset=False)
        weights = check_sample_weight(sample_weight, X)
        centres = to_numpy(self.cluster_centers_, dtype=np.float64)
        centre = centres.mean(axis=0)
        data = _Data(X, centre, weights, centres.shape[0], self.chunk_size)
        return X, centres - centre, data

    def predict(self, X) -> Array:
        """Index of the nearest centre for each row of ``X``.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        labels : array of shape (n_samples,)
            On the device of ``X`` for a tensor.
        """
        _, centres, data = self._query(X)
        with data:
            labels, _ = data.assign(centres)
        return labels

    def transform(self, X) -> Array:
        r"""Euclidean distances :math:`\lVert x_n - \mu_k \rVert` to every centre.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        distances : array of shape (n_samples, n_clusters)
            In the dtype and on the device of ``X``.
        """
        X, centres, data = self._query(X)
        with data:
            return data.distances(centres, X.dtype)

    def fit_transform(self, X, y=None, sample_weight=None) -> Array:
        """Fit, then return the distances of ``X`` to the centres."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None) -> float:
        r"""Negative distortion :math:`-J` of ``X`` under the fitted centres.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
            :math:`-\sum_n w_n \min_k \lVert x_n - \mu_k \rVert^2`.
        """
        _, centres, data = self._query(X, sample_weight)
        with data:
            labels, _ = data.assign(centres)
        return -data.inertia(centres, labels)

    def _store(self, X: Array, centres: np.ndarray, labels: Array, inertia: float) -> None:
        """Set the fitted attributes, in the namespace and dtype of ``X``."""
        self.cluster_centers_ = as_backend(centres, like=X)
        self.labels_ = labels
        self.inertia_ = float(inertia)
        self._n_features_out = centres.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class KMeans(_CentroidClustering):
    r"""k-means clustering by Lloyd's algorithm.

    Minimises the distortion (Bishop eq. 9.1)

    .. math::

        J = \sum_{n=1}^{N} \sum_{k=1}^{K} r_{nk}\, w_n \lVert x_n - \mu_k \rVert^2

    by alternating the assignment :math:`r_{nk} = 1` for
    :math:`k = \arg\min_j \lVert x_n - \mu_j \rVert^2` (E-step, eq. 9.2) and the means
    :math:`\mu_k = \sum_n r_{nk} w_n x_n / \sum_n r_{nk} w_n` (M-step, eq. 9.4). From the
    same starting centres, the iterates are scikit-learn's ``KMeans(algorithm="lloyd")``:
    same centres, labels, inertia and number of iterations, up to rounding.

    Squared distances are computed block by block as
    :math:`\lVert x \rVert^2 - 2 x^\top \mu + \lVert \mu \rVert^2` (one matrix product per
    block, memory O(block × K)) on data centred on their mean. The per-cluster sums of the
    M-step add up over blocks; after the first iteration only the points whose label
    changed update them. NumPy data run on all cores (blocks in threads); PyTorch tensors
    stay on their device, and so do the fitted labels and centres.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters :math:`K`.
    init : {'k-means++', 'random'} or array-like of shape (n_clusters, n_features), \
            default='k-means++'
        Starting centres: greedy k-means++ seeding (scikit-learn's
        :func:`~sklearn.cluster.kmeans_plusplus`, which NumPy input calls, so a given
        ``random_state`` gives scikit-learn's seeds), ``n_clusters`` rows drawn with
        probability proportional to their weight, or the given centres.
    n_init : 'auto' or int, default='auto'
        Number of runs from different seeds; the run of lowest inertia is kept. 'auto' is
        1 for 'k-means++' or an array and 10 for 'random'.
    max_iter : int, default=300
        Maximum number of iterations of one run.
    tol : float, default=1e-4
        Convergence tolerance on the squared shift of the centres in one iteration,
        :math:`\sum_k \lVert \mu_k^{new} - \mu_k^{old} \rVert^2`, relative to the mean over
        features of the variance of the data (weighted by ``sample_weight`` when given).
        A run also stops when no label changes.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation.
    chunk_size : int or None, default=None
        Rows per block of the distance computation. None picks a cache-sized block for
        NumPy (about 524,000 distances) and about 16.8 million distances for tensors.
    verbose : int, default=0
        Print the inertia at each iteration.

    Attributes
    ----------
    cluster_centers_ : array of shape (n_clusters, n_features)
        Centres :math:`\mu_k`, in the dtype and namespace of the training data.
    labels_ : array of shape (n_samples,)
        Cluster of each training row (int32 for NumPy, int64 for tensors).
    inertia_ : float
        Distortion :math:`J` of the training data at the fitted centres.
    n_iter_ : int
        Iterations of the kept run.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen during fit, when ``X`` has string column names.

    Notes
    -----
    One iteration costs O(N K D) operations. The data are not copied: blocks are centred as
    they are read. Up to 256 clusters, the NumPy assignment step screens the nearest centre
    with float32 distances from a float32 copy of the data (the cluster index packed in
    their lowest bits, so that one integer minimum finds it) and recomputes in float64 the
    rows where a rigorous bound on the float32 rounding cannot exclude another centre: the
    labels are those of float64 distances, at about half the cost. With
    ``sample_weight``, the tolerance uses the weighted variance, so that integer weights
    and repeated rows give the same fit (scikit-learn uses the unweighted variance).

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import KMeans
    >>> X = np.array([[1.0, 2.0], [1.0, 4.0], [1.0, 0.0], [10.0, 2.0], [10.0, 4.0],
    ...               [10.0, 0.0]])
    >>> model = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> model.cluster_centers_
    array([[10.,  2.],
           [ 1.,  2.]])
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"k-means++", "random"}), "array-like"],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init="k-means++",
        n_init="auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state=None,
        chunk_size: int | None = None,
        verbose: int = 0,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.chunk_size = chunk_size
        self.verbose = verbose

    def _n_runs(self) -> int:
        if self.n_init == "auto":
            return 10 if isinstance(self.init, str) and self.init == "random" else 1
        if not isinstance(self.init, str) and self.n_init != 1:
            warnings.warn(
                "Explicit initial center position passed: performing only one init in "
                f"KMeans instead of n_init={self.n_init}.",
                RuntimeWarning,
                stacklevel=3,
            )
            return 1
        return self.n_init

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None) -> KMeans:
        """Compute k-means clustering.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
            Training data. Tensors stay on their device.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights :math:`w_n`; integer weights act as repeated rows.

        Returns
        -------
        self : KMeans
        """
        X = check_data(self, X, reset=True)
        check_n_samples(X, self.n_clusters, what="n_clusters")
        weights = check_sample_weight(sample_weight, X)
        init = self.init
        if not isinstance(init, str):
            init = _check_init_array(init, self.n_clusters, X.shape[1])
        n_runs = self._n_runs()
        random_state = check_random_state(self.random_state)
        tol = _tolerance(X, weights, self.tol)
        centre = to_numpy(namespace(X).mean(X, axis=0), dtype=np.float64)

        best = None
        with _Data(X, centre, weights, self.n_clusters, self.chunk_size) as data:
            for _ in range(n_runs):
                start = _initial_centres(data, init, self.n_clusters, random_state, centre)
                if self.verbose:
                    print("Initialization complete")
                run = _lloyd(data, start, self.max_iter, tol, self.verbose)
                if best is None or (
                    run[1] < best[1] and not _same_clustering(run[0], best[0], self.n_clusters)
                ):
                    best = run
        labels, inertia, centres, self.n_iter_ = best
        self._store(X, centres + centre, labels, inertia)
        distinct = np.unique(to_numpy(labels)).size
        if distinct < self.n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than n_clusters "
                f"({self.n_clusters}). Possibly due to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self


LearningRate = Callable[[np.ndarray], np.ndarray]


class OnlineKMeans(_CentroidClustering):
    r"""Sequential k-means: the Robbins–Monro update of Bishop §9.1, one batch at a time.

    Each point :math:`x_n` (of weight :math:`w_n`) moves its nearest centre towards it
    (Bishop eq. 9.5),

    .. math::

        \mu_k \leftarrow \mu_k + \eta_n (x_n - \mu_k),
        \qquad \eta_n = w_n\, \rho(N_k),

    where :math:`N_k` is the weight seen by cluster :math:`k` so far, this point included.
    With :math:`\rho(N) = 1/N` (``learning_rate='count'``) each centre is the running mean
    of its points (MacQueen's k-means). A mini-batch assigns its points with the centres
    fixed and applies, per cluster, one step towards the batch mean
    :math:`\bar x_k` with :math:`\eta = \min(1, W_k\, \rho(N_k))`, :math:`W_k` the batch
    weight of cluster :math:`k`; with 'count' this is the exact running mean, the update of
    scikit-learn's ``MiniBatchKMeans``. ``batch_size=1`` is the purely sequential
    algorithm.

    ``fit`` makes epochs over a fresh random permutation of the rows (batches are slices of
    it, each row used once per epoch and weighted by its ``sample_weight``) until the
    centres move less than ``tol`` in an epoch; ``partial_fit`` takes the rows of each call
    in order, as a stream.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters :math:`K`.
    init : {'k-means++', 'random'} or array-like of shape (n_clusters, n_features), \
            default='k-means++'
        Starting centres, as :class:`KMeans`, drawn from ``init_size`` random rows (``fit``)
        or from the first call's rows (``partial_fit``).
    batch_size : int, default=1024
        Rows per update.
    learning_rate : {'count', 'power'} or callable, default='count'
        :math:`\rho(N)`: 'count' is :math:`1/N`; 'power' is
        :math:`(\tau_0 + N)^{-\kappa}` with :math:`\kappa` = ``learning_decay`` and
        :math:`\tau_0` = ``learning_offset`` (Robbins–Monro conditions hold for
        :math:`\kappa \in (0.5, 1]`); a callable maps an array of :math:`N_k` to an array
        of :math:`\rho(N_k)`.
    learning_decay : float, default=0.7
        :math:`\kappa` of the 'power' schedule.
    learning_offset : float, default=10.0
        :math:`\tau_0` of the 'power' schedule.
    max_iter : int, default=100
        Maximum number of epochs of ``fit``.
    tol : float, default=1e-4
        ``fit`` stops after an epoch in which
        :math:`\sum_k \lVert \Delta\mu_k \rVert^2` is at most ``tol`` times the mean
        variance of the features, as :class:`KMeans`.
    init_size : int or None, default=None
        Rows drawn for the initialisation in ``fit``; None is
        ``max(3 * batch_size, 3 * n_clusters)``, at most all rows.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and the permutations.
    chunk_size : int or None, default=None
        Rows per block when labelling whole data sets, as :class:`KMeans`.
    verbose : int, default=0
        Print the centre shift of each epoch.

    Attributes
    ----------
    cluster_centers_ : array of shape (n_clusters, n_features)
        Centres :math:`\mu_k`.
    counts_ : ndarray of shape (n_clusters,)
        Weight :math:`N_k` seen by each cluster.
    labels_ : array of shape (n_samples,)
        Nearest centre of each row of the last data passed to ``fit`` or ``partial_fit``.
    inertia_ : float
        Distortion :math:`J` of those rows at the final centres.
    n_iter_ : int
        Epochs run by ``fit`` (``partial_fit`` counts one per call).
    n_steps_ : int
        Batch updates made.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen during fit, when ``X`` has string column names.
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"k-means++", "random"}), "array-like"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"count", "power"}), callable],
        "learning_decay": [Interval(Real, 0, 1, closed="right")],
        "learning_offset": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "init_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init="k-means++",
        batch_size: int = 1024,
        learning_rate: str | LearningRate = "count",
        learning_decay: float = 0.7,
        learning_offset: float = 10.0,
        max_iter: int = 100,
        tol: float = 1e-4,
        init_size: int | None = None,
        random_state=None,
        chunk_size: int | None = None,
        verbose: int = 0,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.max_iter = max_iter
        self.tol = tol
        self.init_size = init_size
        self.random_state = random_state
        self.chunk_size = chunk_size
        self.verbose = verbose

    def _rho(self, counts: np.ndarray) -> np.ndarray:
        if callable(self.learning_rate):
            return np.asarray(self.learning_rate(counts), dtype=np.float64)
        if self.learning_rate == "count":
            return 1.0 / counts
        return (self.learning_offset + counts) ** -self.learning_decay

    def _start(self, X: Array, weights: Array | None, random_state) -> None:
        """Initial centres from the rows of ``X`` (all of them or ``init_size``)."""
        init = self.init
        if not isinstance(init, str):
            init = _check_init_array(init, self.n_clusters, X.shape[1])
        centre = to_numpy(namespace(X).mean(X, axis=0), dtype=np.float64)
        data = _Data(X, centre, weights, self.n_clusters, self.chunk_size)
        with data:
            centres = _initial_centres(data, init, self.n_clusters, random_state, centre)
        self._offset = centre
        self._centres = centres + centre
        self.counts_ = np.zeros(self.n_clusters)
        self.n_steps_ = 0

    def _update(self, x: Array, w: Array | None) -> None:
        """One batch step: assign ``x`` to the current centres, move each centre.

        Distances are computed relative to the mean of the rows the centres started from.
        """
        xp = namespace(x)
        x = x - as_backend(self._offset, like=x)
        C = as_backend(self._centres - self._offset, like=x)
        labels = xp.argmin(xp.sum(C * C, axis=1) - 2.0 * (x @ C.T), axis=1)
        cluster_ids = xp.arange(self.n_clusters, device=device_of(x))
        membership = xp.astype(labels[:, None] == cluster_ids, x.dtype)
        if w is None:
            batch_weight = to_numpy(xp.sum(membership, axis=0), dtype=np.float64)
            sums = to_numpy(membership.T @ x, dtype=np.float64)
        else:
            batch_weight = to_numpy(membership.T @ w, dtype=np.float64)
            sums = to_numpy(membership.T @ (x * w[:, None]), dtype=np.float64)
        hit = batch_weight > 0
        counts = self.counts_[hit] + batch_weight[hit]
        eta = np.minimum(1.0, batch_weight[hit] * self._rho(counts))
        means = sums[hit] / batch_weight[hit, None] + self._offset
        self._centres[hit] += eta[:, None] * (means - self._centres[hit])
        self.counts_[hit] = counts
        self.n_steps_ += 1

    def _finish(self, X: Array, weights: Array | None) -> None:
        """Fitted attributes for the rows ``X`` at the current centres."""
        centre = self._centres.mean(axis=0)
        centres = self._centres - centre
        with _Data(X, centre, weights, self.n_clusters, self.chunk_size) as data:
            labels, _ = data.assign(centres)
            inertia = data.inertia(centres, labels)
        self._store(X, self._centres, labels, inertia)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None) -> OnlineKMeans:
        """Fit by epochs of mini-batch updates over random permutations of the rows.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights :math:`w_n` of the updates.

        Returns
        -------
        self : OnlineKMeans
        """
        X = check_data(self, X, reset=True)
        check_n_samples(X, self.n_clusters, what="n_clusters")
        weights = check_sample_weight(sample_weight, X)
        if not isinstance(self.init, str):
            _check_init_array(self.init, self.n_clusters, X.shape[1])
        random_state = check_random_state(self.random_state)
        tol = _tolerance(X, weights, self.tol)
        n = X.shape[0]
        init_size = self.init_size
        if init_size is None:
            init_size = max(3 * self.batch_size, 3 * self.n_clusters)
        init_size = min(max(init_size, self.n_clusters), n)
        if init_size < n:
            subset = np.sort(random_state.choice(n, init_size, replace=False))
            index = _indices(subset, X)
            self._start(X[index], None if weights is None else weights[index], random_state)
        else:
            self._start(X, weights, random_state)
        for epoch in range(self.max_iter):
            before = self._centres.copy()
            order = _indices(random_state.permutation(n), X)
            for start in range(0, n, self.batch_size):
                index = order[start : start + self.batch_size]
                self._update(X[index], None if weights is None else weights[index])
            shift = float(((self._centres - before) ** 2).sum())
            if self.verbose:
                print(f"Epoch {epoch}: center shift {shift}.")
            if shift <= tol:
                break
        self.n_iter_ = epoch + 1
        self._finish(X, weights)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None) -> OnlineKMeans:
        """Update the centres with the rows of ``X``, in order, ``batch_size`` at a time.

        The first call starts the centres from its rows (it needs at least
        ``n_clusters`` of them).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : OnlineKMeans
        """
        first = not hasattr(self, "cluster_centers_")
        X = check_data(self, X, reset=first)
        weights = check_sample_weight(sample_weight, X)
        if first:
            check_n_samples(X, self.n_clusters, what="n_clusters")
            self._random_state = check_random_state(self.random_state)
            self._start(X, weights, self._random_state)
            self.n_iter_ = 0
        for start in range(0, X.shape[0], self.batch_size):
            stop = start + self.batch_size
            self._update(X[start:stop], None if weights is None else weights[start:stop])
        self.n_iter_ += 1
        self._finish(X, weights)
        return self
