"""Data held in memory, visited in chunks of rows.

Statistics are computed chunk by chunk in the data's dtype and on its device, and summed in
float64, so memory beyond the data is bounded by one chunk (never n × K × D) and float32 data
do not lose precision over many rows. Rows are shifted by a fixed ``origin`` (by default the
data's mean) on the fly, chunk by chunk: parameters live in that shifted frame, which keeps
second moments free of cancellation for data far from zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

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
    """

    def __init__(
        self,
        X: Array,
        sample_weight: Array | None = None,
        *,
        origin: np.ndarray | None = None,
        chunk_size: int | None = None,
        row_width: int = 1,
    ) -> None:
        self.X = X
        self.sample_weight = sample_weight
        self.origin = None if origin is None else as_backend(origin, like=X)
        self.chunk_size = chunk_size or auto_chunk_size(X, row_width)
        self.xp = namespace(X)

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    def chunks(self) -> Iterator[tuple[int, Array, Array | None]]:
        """Yield ``(start, rows, weights)`` with rows shifted by the origin."""
        for start in range(0, self.n_samples, self.chunk_size):
            stop = min(start + self.chunk_size, self.n_samples)
            rows = self.X[start:stop]
            if self.origin is not None:
                rows = rows - self.origin
            weights = None if self.sample_weight is None else self.sample_weight[start:stop]
            yield start, rows, weights

    def _sum(self, parts: Iterator[Statistics]) -> Statistics:
        total = None
        for part in parts:
            part = part.astype(self.xp.float64)
            total = part if total is None else total + part
        return total.to_numpy()

    def expectation(self, model, params) -> PassResult:
        """E-step over every chunk; statistics and log-likelihood summed in float64."""
        prepared = model.prepare(params, self.X)
        totals = {"log_likelihood": 0.0, "weight": 0.0}

        def parts():
            for _, rows, weights in self.chunks():
                chunk = model.expectation(rows, weights, prepared)
                totals["log_likelihood"] += float(chunk.log_likelihood)
                totals["weight"] += float(chunk.weight)
                yield chunk.stats

        stats = self._sum(parts())
        return PassResult(stats, totals["log_likelihood"] / totals["weight"], totals["weight"])

    def statistics(self, model, resp_of: Callable[[int, Array], Array]) -> Statistics:
        """Statistics for given responsibilities: ``resp_of(start, rows)`` per chunk."""

        def parts():
            for start, rows, weights in self.chunks():
                resp = resp_of(start, rows)
                if weights is not None:
                    resp = resp * weights[:, None]
                yield model.statistics(rows, resp)

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
        return self.xp.concat([fn(rows) for _, rows, _ in self.chunks()], axis=0)

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

