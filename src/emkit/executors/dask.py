"""Data in a Dask array: each block's E-step runs where the block lives.

Statistics add up, so an E-step over a Dask array is one task per block that reduces the
block to its statistics (K numbers per parameter, whatever the block's length), and a sum
of those on the client, in block order: the result is that of :class:`InMemory` with one
chunk per block, on a laptop's threads or on a cluster (a ``distributed.Client`` in scope
is Dask's default scheduler). Only statistics and parameters travel; the rows never leave
their workers in an E-step.

Requires the ``dask`` extra (``pip install "emkit[dask]"``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from emkit._backend import Array
from emkit.executors._chunked import ChunkedData

__all__ = ["DaskData", "is_dask_array", "map_blocks_of_rows"]

#: Rows that the starting point of a fit on a Dask array is computed from (origin and
#: ``init_params``): a uniform sample of this many rows, all rows of a smaller array.
INIT_SAMPLE_ROWS = 100_000


def is_dask_array(x: Any) -> bool:
    """Whether ``x`` is a Dask array (without importing Dask when it is not loaded)."""
    import sys

    module = sys.modules.get("dask.array")
    return module is not None and isinstance(x, module.Array)


def _checked_block(validate, rows, block_info=None):
    """``validate(rows)`` on one block; an error says which rows of the array it is in."""
    start, stop = block_info[0]["array-location"][0]
    try:
        return validate(rows)
    except ValueError as error:
        raise ValueError(
            f"in the Dask block of rows {start} to {stop - 1} (rows numbered from {start} "
            f"= row 0 below): {error}"
        ) from None


def map_blocks_of_rows(X, function, n_columns: int | None, dtype):
    """``function`` applied to each block of rows of the Dask array ``X``, lazily: a Dask
    array of shape (n_samples,) (``n_columns`` None) or (n_samples, n_columns)."""
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    if n_columns is None:
        return X.map_blocks(function, drop_axis=1, dtype=dtype)
    return X.map_blocks(function, chunks=(X.chunks[0], (n_columns,)), dtype=dtype)


def _shifted_block(work, index, start, rows, weights, prepared, origin):
    """``work`` on one block, its rows shifted by the origin (runs on a worker)."""
    if origin is not None:
        rows = rows - origin.astype(rows.dtype, copy=False)
    return work(index, start, rows, weights, prepared)


class DaskData(ChunkedData):
    """A Dask array of rows visited block by block, with optional sample weights.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Rows in blocks of NumPy arrays with known sizes; blocks along the columns are
        merged, so that each task sees whole rows. Persist ``X`` first
        (``X = X.persist()``) when its graph is costly: each EM iteration reads it once.
    sample_weight : array of shape (n_samples,) or None
        Non-negative weights (NumPy or Dask), rechunked to the row blocks of ``X``.
    origin : array of shape (n_features,) or None
        Subtracted from every row (on the workers) before the model sees it.
    scheduler : str, Client or None
        Passed to :func:`dask.compute`; ``None`` uses Dask's default (a
        ``distributed.Client`` if one is active, else threads).
    """

    def __init__(
        self,
        X,
        sample_weight: Array | None = None,
        *,
        origin: np.ndarray | None = None,
        scheduler: Any = None,
    ) -> None:
        import dask.array as da

        if X.ndim != 2:
            raise ValueError(f"Expected a 2D Dask array, got {X.ndim} dimensions.")
        if any(math.isnan(size) for size in X.chunks[0]):
            raise ValueError(
                "the Dask array has blocks of unknown size; call X.compute_chunk_sizes() "
                "(or X = X.persist(); X.compute_chunk_sizes()) first."
            )
        if not isinstance(X._meta, np.ndarray):
            raise TypeError(
                f"the Dask array's blocks must be NumPy arrays, got {type(X._meta).__name__}."
            )
        if X.numblocks[1] > 1:
            X = X.rechunk({1: -1})
        if sample_weight is not None:
            sample_weight = da.asarray(sample_weight)
            if sample_weight.shape != (X.shape[0],):
                raise ValueError(
                    f"sample_weight must have shape ({X.shape[0]},) to match X, got "
                    f"{sample_weight.shape}."
                )
            sample_weight = sample_weight.rechunk((X.chunks[0],))
        self.X = X
        self.sample_weight = sample_weight
        self.origin = None if origin is None else np.asarray(origin, dtype=np.float64)
        self.scheduler = scheduler

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    def validated(
        self, validate: Callable[[np.ndarray], np.ndarray], dtype, origin: np.ndarray | None
    ) -> DaskData:
        """The same data with ``validate`` applied to every block (lazily, on the workers,
        at every pass) and rows shifted by ``origin``. A first pass here runs it on every
        block and checks the sample weights, so that bad input is refused before any work
        starts, naming the rows."""
        import dask
        import dask.array as da

        X = self.X.map_blocks(functools.partial(_checked_block, validate), dtype=dtype)
        checks = [dask.delayed(len)(block) for block in X.to_delayed().ravel()]
        weights = self.sample_weight
        if weights is None:
            self._compute(*checks)
        else:
            bad = ~da.isfinite(weights) | (weights < 0)
            *_, n_bad, first_bad, total = self._compute(
                *checks, bad.sum(), da.argmax(bad), weights.sum()
            )
            if n_bad:
                value = float(self._compute(weights[int(first_bad)])[0])
                raise ValueError(
                    "sample_weight must be finite and non-negative; row "
                    f"{int(first_bad)} is {value!r}."
                )
            if not total > 0:
                raise ValueError("sample_weight sums to zero: at least one sample needs weight.")
        return DaskData(X, weights, origin=origin, scheduler=self.scheduler)

    def sample(self, count: int, random_state: np.random.RandomState):
        """NumPy rows and weights of ``count`` rows drawn uniformly without replacement,
        in their order in the array (every row when there are no more than ``count``)."""
        rows, weights = self.X, self.sample_weight
        if self.n_samples > count:
            index = np.sort(random_state.choice(self.n_samples, size=count, replace=False))
            rows = rows[index]
            weights = None if weights is None else weights[index]
        return self._compute(rows, weights)

    def _blocks(self) -> list[tuple[int, int, Any, Any]]:
        """``(index, start, rows, weights)`` of every block, as Dask delayed objects."""
        rows = self.X.to_delayed().ravel()
        weights = (
            [None] * len(rows) if self.sample_weight is None
            else self.sample_weight.to_delayed().ravel()
        )
        starts = np.concatenate([[0], np.cumsum(self.X.chunks[0])[:-1]])
        return [
            (index, int(start), block, weight)
            for index, (start, block, weight) in enumerate(zip(starts, rows, weights, strict=True))
        ]

    def _compute(self, *collections):
        import dask

        return dask.compute(*collections, scheduler=self.scheduler)

    def _pass(
        self, work: Callable[..., Any], prepare: Callable[[Array], Any] | None = None
    ) -> Iterator[Any]:
        import dask

        like = np.empty((0, self.X.shape[1]), dtype=self.X.dtype)
        prepared = None if prepare is None else prepare(like)
        task = dask.delayed(_shifted_block, pure=True)
        tasks = [
            task(work, index, start, rows, weights, prepared, self.origin)
            for index, start, rows, weights in self._blocks()
        ]
        return iter(self._compute(*tasks))

    def _chunks(self) -> Iterator[tuple[int, int, Array, Array | None]]:
        for index, start, rows, weights in self._blocks():
            rows, weights = self._compute(rows, weights)
            if self.origin is not None:
                rows = rows - self.origin.astype(rows.dtype, copy=False)
            yield index, start, rows, weights

    def mean(self) -> np.ndarray:
        """Weighted mean of the rows (without the origin), accumulated in float64."""
        X = self.X.astype(np.float64)
        if self.sample_weight is None:
            total, weight = X.sum(axis=0), self.n_samples
        else:
            w = self.sample_weight.astype(np.float64)
            total, weight = (X * w[:, None]).sum(axis=0), w.sum()
        total, weight = self._compute(total, weight)
        return np.asarray(total) / float(weight)
