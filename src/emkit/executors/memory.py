"""Data held in memory, visited in chunks of rows.

Statistics are computed chunk by chunk in the data's dtype and on its device, and summed in
float64, so memory beyond the data is bounded by one chunk (never n × K × D) and float32 data
do not lose precision over many rows. Rows are shifted by a fixed ``origin`` (by default the
data's mean) on the fly, chunk by chunk: parameters live in that shifted frame, which keeps
second moments free of cancellation for data far from zero.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from emkit._backend import (
    Array,
    as_backend,
    device_of,
    is_torch,
    log_normalize,
    namespace,
    to_numpy,
)
from emkit.distributions._base import Statistics

__all__ = ["InMemory", "PassResult", "auto_chunk_size"]

#: Working elements per chunk on the CPU (about 1 MB in float64): the E-step's temporaries
#: then stay in cache. GPUs prefer much larger chunks.
CPU_WORKING_ELEMENTS = 2**17
GPU_WORKING_ELEMENTS = 2**24


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def auto_chunk_size(X: Array, row_width: int) -> int:
    """Rows per chunk so that a chunk's working arrays hold about a fixed number of elements."""
    on_gpu = is_torch(X) and X.device.type != "cpu"
    budget = GPU_WORKING_ELEMENTS if on_gpu else CPU_WORKING_ELEMENTS
    return int(max(64, budget // max(row_width, 1)))


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
    """

    stats: Statistics
    log_likelihood: float
    total_weight: float


class InMemory:
    """An in-memory data matrix with optional sample weights, visited in chunks.

    Chunks of NumPy data are processed by a pool of threads (NumPy and BLAS release the
    interpreter lock), each with single-threaded BLAS; their statistics are summed in chunk
    order, so results do not depend on the number of threads. PyTorch tensors are processed
    in one thread: PyTorch parallelises (or runs on the GPU) by itself.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        NumPy array or PyTorch tensor.
    sample_weight : array of shape (n_samples,) or None
        Non-negative weights; ``None`` for unit weights.
    origin : array of shape (n_features,) or None
        Subtracted from every row before the model sees it.
    chunk_size : int or None
        Rows per chunk; ``None`` chooses it from ``row_width`` (see :func:`auto_chunk_size`).
    row_width : int
        Working elements per row of the model's E-step, for the automatic chunk size.
    n_jobs : int or None
        Threads for NumPy data: ``None`` or -1 for every available core, 1 for none.
    """

    def __init__(
        self,
        X: Array,
        sample_weight: Array | None = None,
        *,
        origin: np.ndarray | None = None,
        chunk_size: int | None = None,
        row_width: int = 1,
        n_jobs: int | None = None,
    ) -> None:
        self.X = X
        self.sample_weight = sample_weight
        self.origin = None if origin is None else as_backend(origin, like=X)
        self.chunk_size = chunk_size or auto_chunk_size(X, row_width)
        self.xp = namespace(X)
        self.n_jobs = n_jobs

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    def _bounds(self) -> list[tuple[int, int]]:
        return [
            (start, min(start + self.chunk_size, self.n_samples))
            for start in range(0, self.n_samples, self.chunk_size)
        ]

    def _rows(self, start: int, stop: int) -> tuple[Array, Array | None]:
        rows = self.X[start:stop]
        if self.origin is not None:
            rows = rows - self.origin
        weights = None if self.sample_weight is None else self.sample_weight[start:stop]
        return rows, weights

    def chunks(self) -> Iterator[tuple[int, Array, Array | None]]:
        """Yield ``(start, rows, weights)`` with rows shifted by the origin, in order."""
        for start, stop in self._bounds():
            yield (start, *self._rows(start, stop))

    def _threads(self, n_chunks: int) -> int:
        if is_torch(self.X) or n_chunks < 2:
            return 1
        available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1
        )
        wanted = available if self.n_jobs in (None, -1) else max(1, self.n_jobs)
        return min(wanted, n_chunks)

    def _map(self, work: Callable[[Array, Array | None], Any]) -> Iterator[Any]:
        """``work(rows, weights)`` on every chunk, results yielded in chunk order."""
        bounds = self._bounds()
        threads = self._threads(len(bounds))
        if threads == 1:
            for start, stop in bounds:
                yield work(*self._rows(start, stop))
            return
        with _blas_controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(
            threads
        ) as pool:
            yield from pool.map(lambda bound: work(*self._rows(*bound)), bounds)

    def _sum(self, parts: Iterable[Statistics]) -> Statistics:
        total = None
        for part in parts:
            total = part if total is None else total + part
        return total.to_numpy()

    def expectation(self, model, params) -> PassResult:
        """E-step over every chunk; statistics and log-likelihood summed in float64."""
        prepared = model.prepare(params, self.X)
        float64 = self.xp.float64

        def work(rows, weights):
            chunk = model.expectation(rows, weights, prepared)
            return chunk.stats.astype(float64), float(chunk.log_likelihood), float(chunk.weight)

        totals = [0.0, 0.0]

        def parts():
            for stats, log_likelihood, weight in self._map(work):
                totals[0] += log_likelihood
                totals[1] += weight
                yield stats

        stats = self._sum(parts())
        return PassResult(stats, totals[0] / totals[1], totals[1])

    def statistics(self, model, resp_of: Callable[[int, Array], Array]) -> Statistics:
        """Statistics for given responsibilities: ``resp_of(start, rows)`` per chunk.

        Chunks are visited in order in one thread, so that ``resp_of`` may draw random
        numbers in sequence.
        """

        def parts():
            for start, rows, weights in self.chunks():
                resp = resp_of(start, rows)
                if weights is not None:
                    resp = resp * weights[:, None]
                yield model.statistics(rows, resp).astype(self.xp.float64)

        return self._sum(parts())

    def mean(self) -> np.ndarray:
        """Weighted mean of the rows (without the origin), accumulated in float64."""
        xp = self.xp
        total = xp.zeros(self.X.shape[1], dtype=xp.float64, device=device_of(self.X))
        weight = 0.0
        for start in range(0, self.n_samples, self.chunk_size):
            rows = xp.astype(self.X[start : start + self.chunk_size], xp.float64, copy=False)
            if self.sample_weight is None:
                total = total + xp.sum(rows, axis=0)
                weight += rows.shape[0]
            else:
                w = xp.astype(self.sample_weight[start : start + self.chunk_size], xp.float64)
                total = total + w @ rows
                weight += float(xp.sum(w))
        return to_numpy(total) / weight

    def map_rows(self, fn: Callable[[Array], Array]) -> Array:
        """``fn`` applied to every chunk of shifted rows, the results stacked along rows."""
        return self.xp.concat(list(self._map(lambda rows, _: fn(rows))), axis=0)

    def worst_rows(self, model, params, count: int) -> np.ndarray:
        """The ``count`` rows (shifted) with the lowest log-likelihood under ``params``."""
        prepared = model.prepare(params, self.X)
        xp = self.xp
        scores = to_numpy(
            self.map_rows(lambda rows: log_normalize(model.log_joint(rows, prepared))[1])
        )
        if self.sample_weight is not None:
            scores = np.where(to_numpy(self.sample_weight) > 0, scores, np.inf)
        order = np.argsort(scores, kind="stable")[:count]
        rows = to_numpy(self.X[as_backend(order, like=self.X, dtype=xp.int64)], np.float64)
        if self.origin is not None:
            rows = rows - to_numpy(self.origin, np.float64)
        return rows

