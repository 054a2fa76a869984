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

import math
from numbers import Integral
from typing import ClassVar

import numpy as np
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

from emkit._backend import to_numpy
from emkit._validation import check_data, check_n_samples, describe_position

__all__ = ["KMedoids"]

#: Dissimilarities held at once: rows per block are this divided by the number of points.
BLOCK_ELEMENTS = 2**21

#: Candidates evaluated together in the SWAP phase: after an (eager) swap, the rest of the
#: window is evaluated again with the new medoids, so small windows waste little work.
SWAP_WINDOW = 64

#: A swap must lower the objective by more than this fraction of it (guards against
#: cycling between configurations that differ only by rounding).
SWAP_TOLERANCE = 1e-12


class _Dissimilarities:
    """Dissimilarities between the training points, block by block or from a matrix."""

    def __init__(self, X: np.ndarray, metric, metric_params: dict | None,
                 chunk_size: int | None):
        self.X = X
        self.n = X.shape[0]
        self.precomputed = isinstance(metric, str) and metric == "precomputed"
        self.metric = metric
        self.params = metric_params or {}
        self.rows_per_block = chunk_size or max(1, BLOCK_ELEMENTS // self.n)

    def between(self, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """:math:`d(x_i, x_j)` for ``i`` in ``rows`` and ``j`` in ``columns``.

        Computed dissimilarities of a point to itself are exactly 0 (the matrix product
        behind the Euclidean distance leaves rounding noise there).
        """
        if self.precomputed:
            return self.X[np.ix_(rows, columns)]
        block = pairwise_distances(
            self.X[rows], self.X[columns], metric=self.metric, **self.params
        )
        block[rows[:, None] == columns[None, :]] = 0.0
        return block

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """:math:`d(x_i, x_j)` for ``i`` in ``rows`` and every point ``j``."""
        if self.precomputed:
            return self.X[rows]
        block = pairwise_distances(self.X[rows], self.X, metric=self.metric, **self.params)
        block[np.arange(rows.shape[0]), rows] = 0.0
        return block

    def blocks(self, rows: np.ndarray):
        """:meth:`rows` over consecutive blocks of ``rows``."""
        for start in range(0, rows.shape[0], self.rows_per_block):
            yield self.rows(rows[start : start + self.rows_per_block])

    def to_medoids(self, medoids: np.ndarray) -> np.ndarray:
        """Dissimilarities of every point to the medoids, shape (N, K)."""
        everything = np.arange(self.n)
        return np.vstack([
            self.between(everything[start : start + self.rows_per_block], medoids)
            for start in range(0, self.n, self.rows_per_block)
        ])


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
    """Nearest medoid of each point, its dissimilarity, and that of the second nearest."""
    rows = np.arange(to_medoids.shape[0])
    nearest = np.argmin(to_medoids, axis=1)
    first = to_medoids[rows, nearest]
    if to_medoids.shape[1] == 1:
        return nearest, first, np.full_like(first, np.inf)
    others = to_medoids.copy()
    others[rows, nearest] = np.inf
    return nearest, first, others.min(axis=1)


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
            costs = np.concatenate([
                dist.between(members[start : start + dist.rows_per_block], members).sum(axis=1)
                for start in range(0, members.size, dist.rows_per_block)
            ])
            costs[np.isin(members, medoids) & (members != medoids[k])] = np.inf
            best = int(np.argmin(costs))
            current = dist.between(medoids[k : k + 1], members).sum()
            if costs[best] < current * (1.0 - SWAP_TOLERANCE):
                medoids[k] = members[best]
                to_medoids[:, k] = dist.between(np.arange(dist.n), medoids[k : k + 1])[:, 0]
                moved = True
        if not moved:
            return iteration
    return max_iter


class _SwapState:
    r"""FasterPAM's caches for the current medoids.

    For each point :math:`o`: its nearest medoid :math:`n(o)`, the dissimilarity
    :math:`d_o` to it and :math:`s_o` to the second nearest (:math:`\infty` for K = 1); per
    medoid :math:`i`, :math:`D_i = \sum_{o:\, n(o) = i} d_o`.
    """

    def __init__(self, to_medoids: np.ndarray):
        n, n_clusters = to_medoids.shape
        self.nearest, self.first, self.second = _nearest_two(to_medoids)
        self.membership = np.zeros((n, n_clusters))
        self.membership[np.arange(n), self.nearest] = 1.0
        self.own = np.bincount(self.nearest, weights=self.first, minlength=n_clusters)
        self.total = float(self.first.sum())

    def changes(self, block: np.ndarray) -> np.ndarray:
        r"""Change of :math:`\tilde J` when each candidate replaces each medoid, (b, K).

        For candidate :math:`c` with :math:`r_o = d(o, c)`, FasterPAM's change for giving up
        medoid :math:`i` is the removal loss :math:`\sum_{n(o)=i} (s_o - d_o)`, plus the
        gain :math:`\sum_o \min(r_o - d_o, 0)` shared by all :math:`i`, plus, for the
        points of :math:`i`, :math:`d_o - s_o` if :math:`r_o < d_o` and
        :math:`\min(r_o - s_o, 0)` otherwise. The last two cases are
        :math:`\operatorname{clip}(r_o, d_o, s_o) - s_o`, so that, for all K medoids at once,

        .. math::

            \Delta_{ci} = \sum_{o:\, n(o) = i} \operatorname{clip}(r_o, d_o, s_o) - D_i
            + \sum_o \min(r_o, d_o) - \sum_o d_o,

        one clip, one minimum and one (b × N)(N × K) product for the whole block: the
        O(K) improvement of FasterPAM over PAM's O(K) separate passes.
        """
        clipped = np.clip(block, self.first, self.second)
        per_medoid = clipped @ self.membership
        np.minimum(block, self.first, out=clipped)
        shared = clipped.sum(axis=1) - self.total
        return per_medoid - self.own + shared[:, None]


def _swap(dist: _Dissimilarities, medoids: np.ndarray, to_medoids: np.ndarray,
          max_iter: int) -> int:
    """FasterPAM's SWAP phase; updates ``medoids`` and ``to_medoids`` in place.

    Candidates are visited in cyclic order, a block of their dissimilarity rows at a time,
    evaluated ``SWAP_WINDOW`` at once; the first candidate whose best swap improves the
    objective is swapped at once (eager swapping), and the search goes on from the next
    candidate with the updated caches. Stops after a full cycle without an improving swap
    or ``max_iter`` passes. Returns the number of passes.
    """
    n = to_medoids.shape[0]
    is_medoid = np.zeros(n, dtype=bool)
    is_medoid[medoids] = True
    state = _SwapState(to_medoids)
    examined = since_swap = position = 0
    limit = max_iter * n
    while since_swap < n and examined < limit:
        size = min(dist.rows_per_block, n - since_swap, limit - examined)
        candidates = (position + np.arange(size)) % n
        block = dist.rows(candidates)
        offset = 0
        while offset < size:
            window = slice(offset, min(offset + SWAP_WINDOW, size))
            changes = state.changes(block[window])
            best = np.argmin(changes, axis=1)
            gain = changes[np.arange(best.size), best]
            gain[is_medoid[candidates[window]]] = np.inf
            improving = np.flatnonzero(gain < -SWAP_TOLERANCE * state.total)
            if improving.size == 0:
                examined += best.size
                since_swap += best.size
                offset += best.size
                continue
            j = int(improving[0])
            k, candidate = int(best[j]), int(candidates[offset + j])
            is_medoid[medoids[k]] = False
            is_medoid[candidate] = True
            medoids[k] = candidate
            to_medoids[:, k] = block[offset + j]
            state = _SwapState(to_medoids)
            examined += j + 1
            since_swap = 1
            offset += j + 1
        position = (position + size) % n
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
        Starting medoids: greedy k-medoids++ seeding (O(N K log K) dissimilarities), PAM's
        BUILD (deterministic, K passes over the N² dissimilarities), ``n_clusters``
        distinct random points, or the row indices of the medoids.
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
    'alternate' iteration and N² per 'pam' pass — so k-medoids suits thousands to tens of
    thousands of points. PyTorch tensors are copied to host memory.

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
        to_medoids = dist.to_medoids(medoids)
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
