"""What every executor does with its chunks: E-steps summed in float64, or one at a time.

An executor only says how its chunks are visited (:meth:`ChunkedData._pass`); the E-step of
a pass, the statistics of given responsibilities and the chunk-by-chunk E-steps of online
and incremental EM are the same for data in memory and for a stream.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from emkit._backend import Array, log_normalize, namespace, to_numpy
from emkit.distributions._base import Statistics

__all__ = [
    "ChunkResult", "ChunkedData", "PassResult", "available_cores", "available_threads",
    "ordered_map", "threads_for",
]


@dataclasses.dataclass(frozen=True)
class PassResult:
    """One E-step over all the data.

    Attributes
    ----------
    stats : Statistics
        The summed statistics, as float64 NumPy arrays.
    log_likelihood : float
        :math:`\\sum_n w_n \\log p(x_n) / \\sum_n w_n`, the mean log-likelihood per sample.
    total_weight : float
        :math:`\\sum_n w_n` (the number of rows without sample weights).
    sums : dict of str to float
        Further per-row quantities of the E-step strategy, as weighted means per sample
        (``'entropy'``: :math:`\\sum_n w_n H(q_n) / \\sum_n w_n`; ``'classification_log_
        likelihood'`` for hard EM).
    """

    stats: Statistics
    log_likelihood: float
    total_weight: float
    sums: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ChunkResult:
    """The E-step of one chunk, with totals (not means): what online and incremental EM keep.

    Attributes
    ----------
    index : int
        Position of the chunk in a pass.
    stats : Statistics
        Its statistics, float64 NumPy arrays.
    log_likelihood : float
        :math:`\\sum_{n \\in \\text{chunk}} w_n \\log p(x_n)`.
    weight : float
        :math:`\\sum_{n \\in \\text{chunk}} w_n`.
    sums : dict of str to float
        Weighted totals of the strategy's per-row quantities.
    """

    index: int
    stats: Statistics
    log_likelihood: float
    weight: float
    sums: dict[str, float] = dataclasses.field(default_factory=dict)


def _expect(model, rows, weights, prepared, estep, index: int) -> ChunkResult:
    """One chunk's E-step; statistics in float64 on the chunk's device."""
    if estep is None:
        chunk = model.expectation(rows, weights, prepared)
    else:
        chunk = model.expectation(rows, weights, prepared, estep.for_chunk(index))
    float64 = namespace(rows).float64
    sums = {name: float(value) for name, value in getattr(chunk, "sums", {}).items()}
    return ChunkResult(
        index, chunk.stats.astype(float64), float(chunk.log_likelihood), float(chunk.weight),
        sums,
    )


def available_cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def available_threads() -> int:
    """:func:`available_cores`, capped by ``OMP_NUM_THREADS`` when set (the k-means
    family's own thread pools follow scikit-learn's OpenMP convention)."""
    limit = os.environ.get("OMP_NUM_THREADS", "")
    cores = available_cores()
    return max(1, min(cores, int(limit))) if limit.isdigit() else cores


def threads_for(n_jobs: int | None) -> int:
    """Threads for ``n_jobs``: ``None`` or -1 for every available core, else at least 1."""
    return available_cores() if n_jobs in (None, -1) else max(1, n_jobs)


def ordered_map(
    work: Callable[..., Any], tasks: Iterable[tuple], threads: int
) -> Iterator[Any]:
    """``work(*task)`` for each task, in a pool of ``threads``, results in task order.

    At most ``2 * threads`` tasks are in flight, so a stream of tasks is read as it is
    processed, never ahead of need.
    """
    if threads <= 1:
        for task in tasks:
            yield work(*task)
        return
    with _blas_controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(
        threads
    ) as pool:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.submit(work, *task))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class ChunkedData(ABC):
    """Data visited in chunks of rows, shifted by an ``origin``; see :class:`InMemory` and
    :class:`Stream`."""

    @abstractmethod
    def _pass(
        self, work: Callable[..., Any], prepare: Callable[[Array], Any] | None = None
    ) -> Iterator[Any]:
        """``work(index, start, rows, weights, prepared)`` on every chunk (``rows`` shifted by
        the origin, ``start`` the offset of its first row), results yielded in chunk order.
        ``prepared`` is ``prepare(like)`` computed once, for an array ``like`` of the data's
        namespace, device and dtype (``None`` without ``prepare``)."""

    @abstractmethod
    def _chunks(self) -> Iterator[tuple[int, int, Array, Array | None]]:
        """``(index, start, rows, weights)`` of every chunk, in order, in this thread."""

    def chunks(self) -> Iterator[tuple[int, Array, Array | None]]:
        """Yield ``(start, rows, weights)`` with rows shifted by the origin, in order."""
        for _, start, rows, weights in self._chunks():
            yield start, rows, weights

    def expectation(self, model, params, estep=None) -> PassResult:
        """E-step over every chunk; statistics, log-likelihood and the strategy's sums added
        in float64 in chunk order.

        ``estep`` (an :class:`emkit.em.strategies.EStepPass`) is handed to
        ``model.expectation`` with the chunk's index; without it the model's exact E-step
        runs (and ``model.expectation`` is called with three arguments).
        """

        def work(index, start, rows, weights, prepared):
            return _expect(model, rows, weights, prepared, estep, index)

        total = None
        log_likelihood = weight = 0.0
        sums: dict[str, float] = {}
        for chunk in self._pass(work, lambda like: model.prepare(params, like)):
            total = chunk.stats if total is None else total + chunk.stats
            log_likelihood += chunk.log_likelihood
            weight += chunk.weight
            for name, value in chunk.sums.items():
                sums[name] = sums.get(name, 0.0) + value
        return PassResult(
            total.to_numpy(), log_likelihood / weight, weight,
            {name: value / weight for name, value in sums.items()},
        )

    def each_expectation(
        self, model, params_of: Callable[[], Any], estep_of: Callable[[int], Any] | None = None
    ) -> Iterator[ChunkResult]:
        """The E-step of one chunk after another, in this thread, each at the parameters
        ``params_of()`` returns when its turn comes (online and incremental EM change them
        between chunks); ``estep_of(index)`` gives its :class:`EStepPass` (or ``None``)."""
        for index, _, rows, weights in self._chunks():
            estep = None if estep_of is None else estep_of(index)
            prepared = model.prepare(params_of(), rows)
            chunk = _expect(model, rows, weights, prepared, estep, index)
            yield dataclasses.replace(chunk, stats=chunk.stats.to_numpy())

    def statistics(self, model, resp_of: Callable[[int, Array], Array]) -> Statistics:
        """Statistics for given responsibilities: ``resp_of(start, rows)`` per chunk.

        Chunks are visited in order in one thread, so that ``resp_of`` may draw random
        numbers in sequence.
        """
        total = None
        for _, start, rows, weights in self._chunks():
            resp = resp_of(start, rows)
            if weights is not None:
                resp = resp * weights[:, None]
            part = model.statistics(rows, resp).astype(namespace(rows).float64)
            total = part if total is None else total + part
        return total.to_numpy()

    def worst_rows(self, model, params, count: int) -> np.ndarray:
        """The ``count`` rows (shifted) with the lowest log-likelihood under ``params``,
        as float64 NumPy rows: each chunk keeps its ``count`` worst, merged in chunk order."""

        def work(index, start, rows, weights, prepared):
            scores = to_numpy(log_normalize(model.log_joint(rows, prepared))[1], np.float64)
            if weights is not None:
                scores = np.where(to_numpy(weights) > 0, scores, np.inf)
            keep = np.argsort(scores, kind="stable")[:count]
            return scores[keep], to_numpy(rows, np.float64)[keep]

        best_scores = np.empty(0)
        best_rows = None
        for scores, rows in self._pass(work, lambda like: model.prepare(params, like)):
            best_scores = np.concatenate([best_scores, scores])
            best_rows = rows if best_rows is None else np.concatenate([best_rows, rows])
            keep = np.argsort(best_scores, kind="stable")[:count]
            best_scores, best_rows = best_scores[keep], best_rows[keep]
        return best_rows
