"""Data held in memory, visited in chunks of rows.

Statistics are computed chunk by chunk in the data's dtype and on its device, and summed in
float64, so memory beyond the data is bounded by one chunk (never n × K × D) and float32 data
do not lose precision over many rows. Rows are shifted by a fixed ``origin`` (by default the
data's mean) on the fly, chunk by chunk: parameters live in that shifted frame, which keeps
second moments free of cancellation for data far from zero.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from emkit._backend import (
    Array,
    as_backend,
    device_of,
    is_torch,
    namespace,
    to_numpy,
)
from emkit.executors._chunked import ChunkedData, PassResult, ordered_map, threads_for

__all__ = ["InMemory", "PassResult", "auto_chunk_size", "chunk_bounds"]

#: Working elements per chunk on the CPU (about 4 MB in float64): large enough that the
#: per-chunk overhead is small, small enough for the E-step's temporaries to stay in cache.
#: GPUs prefer much larger chunks.
CPU_WORKING_ELEMENTS = 2**19
GPU_WORKING_ELEMENTS = 2**24


def chunk_bounds(n_samples: int, chunk_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive chunks of ``chunk_size`` rows covering the data."""
    return [
        (start, min(start + chunk_size, n_samples)) for start in range(0, n_samples, chunk_size)
    ]


def auto_chunk_size(X: Array, row_width: int) -> int:
    """Rows per chunk so that a chunk's working arrays hold about a fixed number of elements."""
    on_gpu = is_torch(X) and X.device.type != "cpu"
    budget = GPU_WORKING_ELEMENTS if on_gpu else CPU_WORKING_ELEMENTS
    return int(max(64, budget // max(row_width, 1)))


class InMemory(ChunkedData):
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
        return chunk_bounds(self.n_samples, self.chunk_size)

    def _rows(self, start: int, stop: int) -> tuple[Array, Array | None]:
        rows = self.X[start:stop]
        if self.origin is not None:
            rows = rows - self.origin
        weights = None if self.sample_weight is None else self.sample_weight[start:stop]
        return rows, weights

    def _chunks(self) -> Iterator[tuple[int, int, Array, Array | None]]:
        for index, (start, stop) in enumerate(self._bounds()):
            yield (index, start, *self._rows(start, stop))

    def _threads(self, n_chunks: int) -> int:
        if is_torch(self.X) or n_chunks < 2:
            return 1
        return min(threads_for(self.n_jobs), n_chunks)

    def _pass(
        self, work: Callable[..., Any], prepare: Callable[[Array], Any] | None = None
    ) -> Iterator[Any]:
        prepared = None if prepare is None else prepare(self.X)
        bounds = self._bounds()

        def task(index, start, stop):
            return work(index, start, *self._rows(start, stop), prepared)

        tasks = ((index, start, stop) for index, (start, stop) in enumerate(bounds))
        return ordered_map(task, tasks, self._threads(len(bounds)))

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
        parts = self._pass(lambda index, start, rows, weights, prepared: fn(rows))
        return self.xp.concat(list(parts), axis=0)
