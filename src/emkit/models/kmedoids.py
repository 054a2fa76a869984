r"""k-medoids: clustering around data points, for any dissimilarity.

k-medoids replaces the centres of k-means by medoids, points of the data set, and the
squared Euclidean distance by any dissimilarity :math:`d` (Bishop §9.1, eq. 9.6):

.. math::

    \tilde J = \sum_{n=1}^{N} \sum_{k=1}^{K} r_{nk}\, d(x_n, m_k),
    \qquad m_k \in \{x_1, \dots, x_N\}.

Two optimisers are provided. 'alternate' (Voronoi iteration) is the k-means scheme:
assign each point to its nearest medoid, then make each medoid the member of its cluster
with the smallest sum of dissimilarities to the other members. 'pam' (Kaufman and
Rousseeuw's Partitioning Around Medoids) swaps a medoid and a non-medoid whenever that
lowers :math:`\tilde J`, with the accelerations of FasterPAM (Schubert and Rousseeuw,
2021): the best medoid to give up for a candidate is found for all K medoids in one pass,
thanks to cached removal losses, and an improving swap is made at once (eager swapping).

Dissimilarities are computed block by block from the data (never the N × N matrix) unless
a precomputed matrix is given. Each iteration costs O(N²) dissimilarities: :math:`\sum_k
N_k^2` for 'alternate', N per candidate and N² per pass over the candidates for 'pam'.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from numbers import Integral
from typing import ClassVar, NamedTuple

import numpy as np
from sklearn import config_context
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.metrics import pairwise_distances, pairwise_distances_argmin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from emkit._backend import to_numpy
from emkit._validation import check_data, check_n_samples, describe_position
from emkit.executors._chunked import available_threads

__all__ = ["KMedoids"]

#: Dissimilarities held at once: rows per block are this divided by the number of points.
BLOCK_ELEMENTS = 2**21

#: Dissimilarities of the candidates evaluated together by a thread in the SWAP phase
#: (a whole number of rows, at least one, at most a block of rows): few enough to stay in
#: the CPU caches with their scratch, enough to spread the fixed cost of a block (for
#: N = 5,000, 26 candidates). After an (eager) swap, what the threads computed beyond the
#: swapped candidate, up to a block each, is wasted.
SWAP_BLOCK_ELEMENTS = 2**17

#: A swap must lower the objective by more than this fraction of it (guards against
#: cycling between configurations that differ only by rounding).
SWAP_TOLERANCE = 1e-12

#: Metrics computed from one matrix product of the (centred) points.
EUCLIDEAN_METRICS = ("euclidean", "l2", "sqeuclidean")


class _Columns(NamedTuple):
    """Points that blocks of dissimilarities are computed to, prepared once for many blocks.

    ``index`` holds their row indices, ``position[i]`` the column of point ``i`` (-1 for
    points that are not among them), ``operand`` the right-hand side of the computation.
    """

    index: np.ndarray
    position: np.ndarray
    operand: np.ndarray | None


class _Dissimilarities:
    r"""Dissimilarities between the training points, block by block or from a matrix.

    For 'euclidean' ('l2') and 'sqeuclidean' (without ``metric_params``), a block is one
    matrix product: with the points centred, :math:`\tilde x = x - \bar x` (so that
    rounding is relative to the spread of the data, not to their offset), the rows
    :math:`(\tilde x_i, 1, \lVert \tilde x_i \rVert^2)` and
    :math:`(-2 \tilde x_j, \lVert \tilde x_j \rVert^2, 1)` have the inner product

    .. math::

        \lVert \tilde x_i \rVert^2 + \lVert \tilde x_j \rVert^2 - 2\, \tilde x_i^\top
        \tilde x_j = \lVert x_i - x_j \rVert^2,

    clipped at 0 (rounding may leave it slightly negative for close points) and, for
    'euclidean', square-rooted: the expansion of
    :func:`sklearn.metrics.pairwise.euclidean_distances`, in float64. Other metrics go
    through :func:`sklearn.metrics.pairwise_distances`. Computed dissimilarities of a point
    to itself are set to exactly 0.
    """

    def __init__(self, X: np.ndarray, metric, metric_params: dict | None,
                 chunk_size: int | None):
        self.X = X
        self.n = X.shape[0]
        self.precomputed = isinstance(metric, str) and metric == "precomputed"
        self.metric = metric
        self.params = metric_params or {}
        self.rows_per_block = chunk_size or max(1, BLOCK_ELEMENTS // self.n)
        self.left = self.right = None
        self.squared = isinstance(metric, str) and metric == "sqeuclidean"
        if isinstance(metric, str) and metric in EUCLIDEAN_METRICS and not self.params:
            centred = X - X.mean(axis=0, dtype=np.float64)
            norms = np.einsum("ij,ij->i", centred, centred)[:, None]
            ones = np.ones_like(norms)
            self.left = np.hstack([centred, ones, norms])
            self.right = np.vstack([-2.0 * centred.T, norms.T, ones.T])
        self.everything = self.columns(np.arange(self.n))

    def columns(self, index: np.ndarray) -> _Columns:
        """The points ``index``, prepared as the columns of blocks of dissimilarities."""
        position = np.full(self.n, -1, dtype=np.intp)
        position[index] = np.arange(index.shape[0])
        if self.precomputed:
            operand = None
        elif self.right is not None:
            operand = np.take(self.right, index, axis=1)
        else:
            operand = self.X[index]
        return _Columns(index, position, operand)

    def between(self, rows: np.ndarray, columns: _Columns,
                out: np.ndarray | None = None) -> np.ndarray:
        """:math:`d(x_i, x_j)` for ``i`` in ``rows`` and ``j`` in ``columns.index``.

        The Euclidean block is written to ``out`` when given (shape (len(rows),
        len(columns.index))), sparing the allocation; other blocks are new arrays.
        """
        if self.precomputed:
            return self.X[np.ix_(rows, columns.index)]
        if self.left is not None:
            block = np.matmul(self.left[rows], columns.operand, out=out)
            np.maximum(block, 0.0, out=block)
            if not self.squared:
                np.sqrt(block, out=block)
        else:
            # The data were validated by fit: skip the checks of every call (some 0.2 ms).
            with config_context(assume_finite=True, skip_parameter_validation=True):
                block = pairwise_distances(
                    self.X[rows], columns.operand, metric=self.metric, **self.params
                )
        position = columns.position[rows]
        itself = np.flatnonzero(position >= 0)
        block[itself, position[itself]] = 0.0
        return block

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """:math:`d(x_i, x_j)` for ``i`` in ``rows`` and every point ``j``."""
        return self.between(rows, self.everything)

    def blocks(self, rows: np.ndarray, columns: _Columns | None = None) -> Iterator[np.ndarray]:
        """:meth:`between` ``rows`` (in consecutive blocks) and ``columns`` (all points)."""
        columns = self.everything if columns is None else columns
        for start in range(0, rows.shape[0], self.rows_per_block):
            yield self.between(rows[start : start + self.rows_per_block], columns)

    def to_medoids(self, medoids: np.ndarray) -> np.ndarray:
        """Dissimilarities of every point to the medoids, shape (N, K)."""
        return np.vstack(list(self.blocks(np.arange(self.n), self.columns(medoids))))


@contextmanager
def _thread_map(threads: int) -> Iterator[Callable]:
    """``map(function, tasks)`` as a list, over ``threads`` threads with single-threaded BLAS.

    The first task runs in this thread, the others in a pool of ``threads - 1`` (NumPy and
    BLAS release the interpreter lock). Small matrix products are faster on one thread
    each than spread over BLAS threads, which spin while they wait for each other.
    """
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(
        max(1, threads - 1)
    ) as pool:

        def map_threads(function: Callable, tasks: list) -> list:
            others = [pool.submit(function, task) for task in tasks[1:]]
            return [function(tasks[0]), *(other.result() for other in others)]

        yield map_threads


# ---------------------------------------------------------------------- initialisation


def _build(dist: _Dissimilarities, n_clusters: int) -> np.ndarray:
    r"""PAM's BUILD: greedily add the medoid that lowers :math:`\tilde J` the most.

    The first medoid minimises the sum of dissimilarities to all points; each next one
    maximises :math:`\sum_o \max(d_o - d(o, c), 0)`, :math:`d_o` the dissimilarity of
    :math:`o` to its nearest medoid so far. K passes over the N² dissimilarities.
    """
    everything = np.arange(dist.n)
    totals = np.concatenate([block.sum(axis=1) for block in dist.blocks(everything)])
    medoids = [int(np.argmin(totals))]
    nearest = dist.rows(np.array(medoids))[0]
    for _ in range(1, n_clusters):
        gains = np.concatenate([
            np.maximum(nearest - block, 0.0).sum(axis=1) for block in dist.blocks(everything)
        ])
        gains[medoids] = -1.0
        medoids.append(int(np.argmax(gains)))
        nearest = np.minimum(nearest, dist.rows(np.array(medoids[-1:]))[0])
    return np.array(medoids)


def _kmedoids_plusplus(dist: _Dissimilarities, n_clusters: int, random_state) -> np.ndarray:
    r"""Greedy k-medoids++ seeding: k-means++ with probabilities proportional to :math:`d`.

    The first medoid is uniform; each next one is the best, by the objective, of
    :math:`2 + \lfloor \ln K \rfloor` points drawn with probability proportional to their
    dissimilarity to the nearest medoid so far. O(N K log K) dissimilarities.
    """
    n_trials = 2 + int(np.log(n_clusters))
    medoids = [int(random_state.randint(dist.n))]
    nearest = dist.rows(np.array(medoids))[0]
    for _ in range(1, n_clusters):
        weights = nearest.copy()
        weights[medoids] = 0.0
        cumulative = np.cumsum(weights)
        if cumulative[-1] <= 0:
            others = np.setdiff1d(np.arange(dist.n), medoids)
            return np.concatenate([medoids, others[: n_clusters - len(medoids)]])
        targets = random_state.uniform(size=n_trials) * cumulative[-1]
        candidates = np.minimum(np.searchsorted(cumulative, targets, side="right"), dist.n - 1)
        candidates = np.where(weights[candidates] > 0, candidates, np.argmax(weights))
        trial = np.minimum(nearest, dist.rows(candidates))
        best = int(np.argmin(trial.sum(axis=1)))
        nearest = trial[best]
        medoids.append(int(candidates[best]))
    return np.array(medoids)


def _check_init_indices(init, n_clusters: int, n_samples: int) -> np.ndarray:
    """``init`` as ``n_clusters`` distinct row indices, or a clear error."""
    indices = np.asarray(to_numpy(init))
    if indices.ndim != 1 or indices.shape[0] != n_clusters:
        raise ValueError(
            f"init must be 'k-medoids++', 'build', 'random' or {n_clusters} row indices of "
            f"the medoids, got an array of shape {indices.shape}."
        )
    if indices.dtype.kind not in "iu":
        raise ValueError(f"init indices must be integers, got dtype {indices.dtype}.")
    if indices.min() < 0 or indices.max() >= n_samples:
        raise ValueError(
            f"init indices must lie in [0, {n_samples}), got {indices.min()} to "
            f"{indices.max()}."
        )
    if np.unique(indices).size != n_clusters:
        raise ValueError("init indices must be distinct: each medoid is a different point.")
    return indices.astype(np.intp)


# ---------------------------------------------------------------------- optimisers


def _nearest_two(to_medoids: np.ndarray):
    """Nearest and second nearest medoid of each point, with the dissimilarities to them.

    Ties go to the lower medoid index, as with :func:`numpy.argmin`; with K = 1 the second
    nearest is the only medoid, at dissimilarity :math:`\\infty`.
    """
    rows = np.arange(to_medoids.shape[0])
    nearest = np.argmin(to_medoids, axis=1)
    first = to_medoids[rows, nearest]
    others = to_medoids.astype(np.float64)
    others[rows, nearest] = np.inf
    runner_up = np.argmin(others, axis=1)
    return nearest, first, runner_up, others[rows, runner_up]


def _alternate(dist: _Dissimilarities, medoids: np.ndarray, to_medoids: np.ndarray,
               max_iter: int) -> int:
    r"""Voronoi iteration; updates ``medoids`` and ``to_medoids`` in place.

    Each iteration assigns points to their nearest medoid, then replaces each medoid by
    the member :math:`i` of its cluster :math:`C_k` minimising
    :math:`\sum_{j \in C_k} d(x_i, x_j)` when that is lower than the medoid's own sum;
    :math:`\sum_k N_k^2` dissimilarities. Returns the number of iterations.
    """
    for iteration in range(1, max_iter + 1):
        labels = np.argmin(to_medoids, axis=1)
        moved = False
        for k in range(medoids.shape[0]):
            members = np.flatnonzero(labels == k)
            if members.size == 0:
                continue
            cluster = dist.columns(members)
            costs = np.concatenate([block.sum(axis=1) for block in dist.blocks(members, cluster)])
            costs[np.isin(members, medoids) & (members != medoids[k])] = np.inf
            best = int(np.argmin(costs))
            current = dist.between(medoids[k : k + 1], cluster).sum()
            if costs[best] < current * (1.0 - SWAP_TOLERANCE):
                medoids[k] = members[best]
                to_medoids[:, k] = dist.rows(medoids[k : k + 1])[0]
                moved = True
        if not moved:
            return iteration
    return max_iter


class _SwapState:
    r"""FasterPAM's caches for the current medoids, updated swap by swap.

    For each point :math:`o`: its nearest medoid :math:`n(o)` and second nearest, the
    dissimilarities :math:`d_o` and :math:`s_o` to them (:math:`s_o = \infty` for K = 1);
    ``order`` lists the points by nearest medoid, so that each cluster is a contiguous
    segment (starting at ``starts``, of medoid ``segments``), and ``first`` and ``second``
    hold :math:`d_o` and :math:`s_o` in that order. Blocks of dissimilarities given to
    :meth:`changes` and :meth:`replace` have their columns in that order.
    """

    def __init__(self, to_medoids: np.ndarray):
        self.to_medoids = to_medoids
        self.n_clusters = to_medoids.shape[1]
        nearest, self.nearest_distance, self.runner_up, self.second_distance = (
            _nearest_two(to_medoids)
        )
        # The smallest integer type: stable sorting sorts 8- and 16-bit keys in linear time.
        self.nearest = nearest.astype(np.min_scalar_type(self.n_clusters - 1))
        self._arrange()

    def _arrange(self) -> None:
        self.order = np.argsort(self.nearest, kind="stable")
        by_cluster = self.nearest[self.order]
        self.starts = np.flatnonzero(np.r_[True, by_cluster[1:] != by_cluster[:-1]])
        self.segments = by_cluster[self.starts].astype(np.intp)
        self.first = self.nearest_distance[self.order]
        self.second = self.second_distance[self.order]
        self.total = float(self.first.sum())

    def replace(self, k: int, block_row: np.ndarray) -> None:
        r"""Make a point with dissimilarities ``block_row`` (in ``order``) medoid ``k``.

        Points whose nearest or second nearest medoid was ``k`` look for theirs again among
        the K dissimilarities to the medoids; for the others the new medoid, at :math:`c_o`,
        becomes the nearest if :math:`(c_o, k)` precedes :math:`(d_o, n(o))` (ties to the
        lower index), else the second nearest if it precedes that one: O(N) plus O(K) per
        point that lost a medoid, the same caches as computed afresh.
        """
        column = np.empty(block_row.shape[0])
        column[self.order] = block_row
        self.to_medoids[:, k] = column
        lost = np.flatnonzero((self.nearest == k) | (self.runner_up == k))
        tie = column == self.nearest_distance
        closest = np.flatnonzero((column < self.nearest_distance) | (tie & (k < self.nearest)))
        tie = column == self.second_distance
        closer = (column < self.second_distance) | (tie & (k < self.runner_up))
        closer[closest] = False
        closer = np.flatnonzero(closer)
        self.second_distance[closest] = self.nearest_distance[closest]
        self.runner_up[closest] = self.nearest[closest]
        self.nearest_distance[closest] = column[closest]
        self.nearest[closest] = k
        self.second_distance[closer] = column[closer]
        self.runner_up[closer] = k
        (self.nearest[lost], self.nearest_distance[lost], self.runner_up[lost],
         self.second_distance[lost]) = _nearest_two(self.to_medoids[lost])
        self._arrange()

    def changes(self, block: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        r"""Change of :math:`\tilde J` when each candidate replaces each medoid, (b, K).

        For candidate :math:`c` with :math:`r_o = d(o, c)`, a point :math:`o` of medoid
        :math:`i` goes to :math:`\min(r_o, s_o)` when :math:`i` is given up for :math:`c`,
        any other point to :math:`\min(r_o, d_o)`; so, for all K medoids at once,

        .. math::

            \Delta_{ci} = \sum_{o:\, n(o) = i} \bigl(\min(r_o, s_o) - \min(r_o, d_o)\bigr)
            + \sum_o \min(r_o, d_o) - \sum_o d_o,

        the removal loss and the shared gain of FasterPAM in two minima and two sums over
        the contiguous clusters per candidate: the O(K) improvement over PAM's K passes.
        ``scratch`` is a float64 array of the shape of ``block``, overwritten.
        """
        lower = np.minimum(block, self.first, out=scratch)
        kept = np.add.reduceat(lower, self.starts, axis=1)
        upper = np.minimum(block, self.second, out=lower)
        served = np.add.reduceat(upper, self.starts, axis=1)
        served -= kept
        changes = np.empty((block.shape[0], self.n_clusters))
        changes[:] = (kept.sum(axis=1) - self.total)[:, None]
        changes[:, self.segments] += served
        return changes


def _swap(dist: _Dissimilarities, medoids: np.ndarray, to_medoids: np.ndarray,
          max_iter: int) -> int:
    """FasterPAM's SWAP phase; updates ``medoids`` and ``to_medoids`` in place.

    Candidates are visited in cyclic order; the first whose best swap improves the
    objective is swapped at once (eager swapping), and the search goes on from the next
    candidate with the updated caches. Stops after a full cycle without an improving swap
    or ``max_iter`` passes. Returns the number of passes.

    The threads take consecutive blocks of candidates (SWAP_BLOCK_ELEMENTS) in turn,
    each computing their dissimilarity rows and changes, and stop at the first block that
    holds an improving swap: every block before it has been evaluated, so the swap made
    is the first in candidate order, whatever the number of threads.
    """
    n = to_medoids.shape[0]
    is_medoid = np.zeros(n, dtype=bool)
    is_medoid[medoids] = True
    state = _SwapState(to_medoids)
    towards = dist.columns(state.order)
    rows = max(1, min(SWAP_BLOCK_ELEMENTS // n, dist.rows_per_block, n))
    threads = max(1, min(available_threads(), dist.rows_per_block // rows, math.ceil(n / rows)))
    # Reused for every block (fresh arrays of this size cost page faults): per thread, a
    # block of dissimilarities and the scratch of the changes.
    buffers = np.empty((threads, 2, rows, n))

    def first_improving(first: int, count: int, map_threads: Callable):
        """The first improving swap among candidates ``first, first + 1, ...`` (cyclic, at
        most ``count``): its offset from ``first``, the medoid given up and the candidate's
        dissimilarities (columns in ``state.order``); None if there is none."""
        n_blocks = math.ceil(count / rows)
        taken = itertools.count()
        found: list = [n_blocks, None]
        lock = threading.Lock()

        def work(thread: int) -> None:
            block_buffer, scratch = buffers[thread]
            while (index := next(taken)) < min(n_blocks, found[0]):
                start = index * rows
                candidates = (first + np.arange(start, min(start + rows, count))) % n
                size = candidates.shape[0]
                block = dist.between(candidates, towards, out=block_buffer[:size])
                if index > found[0]:
                    return
                changes = state.changes(block, scratch[:size])
                best = np.argmin(changes, axis=1)
                gain = changes[np.arange(size), best]
                gain[is_medoid[candidates]] = np.inf
                improving = np.flatnonzero(gain < -SWAP_TOLERANCE * state.total)
                if improving.size:
                    j = int(improving[0])
                    with lock:
                        if index < found[0]:
                            found[:] = index, (start + j, int(best[j]), block[j].copy())
                    return

        map_threads(work, list(range(threads)))
        return found[1]

    examined = since_swap = position = 0
    limit = max_iter * n
    with _thread_map(threads) as map_threads:
        while since_swap < n and examined < limit:
            count = min(n - since_swap, limit - examined)
            swap = first_improving(position, count, map_threads)
            if swap is None:
                examined += count
                since_swap += count
                position = (position + count) % n
                continue
            offset, k, row = swap
            candidate = (position + offset) % n
            is_medoid[medoids[k]] = False
            is_medoid[candidate] = True
            medoids[k] = candidate
            state.replace(k, row)
            towards = dist.columns(state.order)
            examined += offset + 1
            since_swap = 1
            position = (candidate + 1) % n
    return max(1, math.ceil(examined / n))


# ---------------------------------------------------------------------- estimator


class KMedoids(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    r"""k-medoids clustering for any dissimilarity.

    Minimises

    .. math::

        \tilde J = \sum_{n=1}^{N} \min_k d(x_n, m_k)

    over medoids :math:`m_1, \dots, m_K` taken among the data points (Bishop eq. 9.6),
    for any metric of :func:`sklearn.metrics.pairwise_distances` (scikit-learn's and
    SciPy's, or a callable) or a precomputed dissimilarity matrix.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of medoids :math:`K`.
    metric : str or callable, default='euclidean'
        Dissimilarity: a metric name accepted by :func:`sklearn.metrics.pairwise_distances`,
        a callable on two rows, or 'precomputed', in which case ``X`` is the square N × N
        matrix of non-negative dissimilarities.
    metric_params : dict or None, default=None
        Keyword arguments of the metric (``p`` for 'minkowski', ...).
    method : {'alternate', 'pam'}, default='alternate'
        'alternate' (Voronoi iteration: assign, then make each medoid the member with the
        smallest within-cluster sum) or 'pam' (BUILD-or-other start, then FasterPAM swaps:
        slower per iteration, lower objective).
    init : {'k-medoids++', 'build', 'random'} or array-like of int, default='k-medoids++'
        Starting medoids: greedy k-medoids++ seeding (O(N K log K) dissimilarities,
        negligible next to one pass of 'pam' or iteration of 'alternate'), PAM's BUILD
        (deterministic, K passes over the N² dissimilarities: each costs about as much as
        a SWAP pass, for fewer swaps afterwards), ``n_clusters`` distinct random points,
        or the row indices of the medoids.
    max_iter : int, default=300
        Maximum number of iterations ('alternate') or passes over all candidates ('pam').
    random_state : int, RandomState instance or None, default=None
        Seeds 'k-medoids++' and 'random'.
    chunk_size : int or None, default=None
        Rows per block of dissimilarities (each block holds ``chunk_size × N`` of them);
        None is about two million dissimilarities per block.

    Attributes
    ----------
    medoid_indices_ : ndarray of shape (n_clusters,)
        Row indices of the medoids in the training data.
    cluster_centers_ : ndarray of shape (n_clusters, n_features) or None
        The medoids themselves, ``X[medoid_indices_]``; None with ``metric='precomputed'``,
        where the points are unknown.
    labels_ : ndarray of shape (n_samples,)
        Nearest medoid of each training point.
    inertia_ : float
        :math:`\tilde J`, the sum of the dissimilarities of the points to their medoid.
    n_iter_ : int
        Iterations ('alternate') or passes over the candidates ('pam').
    n_features_in_ : int
        Number of features (the number of training points for 'precomputed').
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen during fit, when ``X`` has string column names.

    Notes
    -----
    Without a precomputed matrix, dissimilarities are computed block by block and the
    N × N matrix is never held in memory: memory is O(``chunk_size`` × N + N K). The price
    is time: each iteration recomputes O(N²) dissimilarities — :math:`\sum_k N_k^2` per
    'alternate' iteration and N² per 'pam' pass, usually two passes — so k-medoids suits
    thousands to tens of thousands of points. Euclidean dissimilarities come from one
    matrix product per block; the SWAP phase of 'pam' shares blocks of candidates out
    between the CPU cores, with the same result whatever their number. PyTorch tensors
    are copied to host memory.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import KMedoids
    >>> X = np.array([[1.0, 2.0], [1.0, 4.0], [1.0, 0.0], [10.0, 2.0], [10.0, 4.0],
    ...               [10.0, 0.0]])
    >>> model = KMedoids(n_clusters=2, method="pam", random_state=0).fit(X)
    >>> sorted(model.medoid_indices_.tolist())
    [0, 3]
    """

    _parameter_constraints: ClassVar[dict] = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "metric": [str, callable],
        "metric_params": [dict, None],
        "method": [StrOptions({"alternate", "pam"})],
        "init": [StrOptions({"k-medoids++", "build", "random"}), "array-like"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        metric="euclidean",
        metric_params: dict | None = None,
        method: str = "alternate",
        init="k-medoids++",
        max_iter: int = 300,
        random_state=None,
        chunk_size: int | None = None,
    ):
        self.n_clusters = n_clusters
        self.metric = metric
        self.metric_params = metric_params
        self.method = method
        self.init = init
        self.max_iter = max_iter
        self.random_state = random_state
        self.chunk_size = chunk_size

    @property
    def _precomputed(self) -> bool:
        return isinstance(self.metric, str) and self.metric == "precomputed"

    def _check_metric(self, X: np.ndarray) -> None:
        """Evaluate the metric once on one row, to fail before any work."""
        if self._precomputed:
            return
        try:
            pairwise_distances(X[:1], X[:1], metric=self.metric, **(self.metric_params or {}))
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"metric={self.metric!r} with metric_params={self.metric_params!r} cannot "
                f"be used: {error}"
            ) from error

    def _validate(self, X, reset: bool) -> np.ndarray:
        X = check_data(self, X, reset=reset)
        X = to_numpy(X)
        if self._precomputed:
            if reset and X.shape[0] != X.shape[1]:
                raise ValueError(
                    "With metric='precomputed', X must be a square matrix of dissimilarities "
                    f"between the training points, got shape {X.shape}."
                )
            if (X < 0).any():
                row, column = np.argwhere(X < 0)[0]
                raise ValueError(
                    "A precomputed dissimilarity matrix must be non-negative; "
                    f"{describe_position(int(row), int(column))} holds {float(X[row, column])!r}."
                )
        return X

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None) -> KMedoids:
        """Find the medoids.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, n_samples)
            Training points, or their dissimilarities with ``metric='precomputed'``.
        y : ignored

        Returns
        -------
        self : KMedoids
        """
        X = self._validate(X, reset=True)
        check_n_samples(X, self.n_clusters, what="n_clusters")
        self._check_metric(X)
        init = self.init
        if not isinstance(init, str):
            init = _check_init_indices(init, self.n_clusters, X.shape[0])
        random_state = check_random_state(self.random_state)
        dist = _Dissimilarities(X, self.metric, self.metric_params, self.chunk_size)
        if isinstance(init, str) and init == "k-medoids++":
            medoids = _kmedoids_plusplus(dist, self.n_clusters, random_state)
        elif isinstance(init, str) and init == "build":
            medoids = _build(dist, self.n_clusters)
        elif isinstance(init, str):
            medoids = random_state.choice(X.shape[0], self.n_clusters, replace=False)
        else:
            medoids = init.copy()
        to_medoids = dist.to_medoids(medoids).astype(np.float64, copy=False)
        optimise = _alternate if self.method == "alternate" else _swap
        self.n_iter_ = optimise(dist, medoids, to_medoids, self.max_iter)
        self.medoid_indices_ = medoids
        self.cluster_centers_ = None if self._precomputed else X[medoids]
        self.labels_ = np.argmin(to_medoids, axis=1)
        self.inertia_ = float(to_medoids.min(axis=1).sum())
        self._n_features_out = self.n_clusters
        return self

    def transform(self, X) -> np.ndarray:
        """Dissimilarities of the rows of ``X`` to the medoids.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Points, or with ``metric='precomputed'`` their dissimilarities to the training
            points, shape (n_queries, n_samples_fit).

        Returns
        -------
        distances : ndarray of shape (n_queries, n_clusters)
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        if self._precomputed:
            return X[:, self.medoid_indices_]
        return pairwise_distances(
            X, self.cluster_centers_, metric=self.metric, **(self.metric_params or {})
        )

    def predict(self, X) -> np.ndarray:
        """Nearest medoid of each row of ``X`` (points, or dissimilarities if precomputed).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features) or (n_queries, n_samples_fit)

        Returns
        -------
        labels : ndarray of shape (n_queries,)
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        if self._precomputed:
            return np.argmin(X[:, self.medoid_indices_], axis=1)
        return pairwise_distances_argmin(
            X, self.cluster_centers_, metric=self.metric,
            metric_kwargs=self.metric_params or {},
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self._precomputed
        return tags
