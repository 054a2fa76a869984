"""Data that arrive as a stream of chunks: from an iterator, a generator function or a list.

Statistics add up, so a pass over a stream is a pass over memory read in pieces: each chunk
is reduced to its statistics as it arrives (by a pool of threads, at most a few chunks
ahead of the reader) and dropped. Memory is bounded by a few chunks whatever the length of
the stream. A NumPy memmap needs no stream: :class:`emkit.executors.InMemory` slices it
lazily, chunk by chunk.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from emkit._backend import Array, as_backend, is_torch, namespace, to_numpy
from emkit.executors._chunked import ChunkedData, ordered_map, threads_for

__all__ = ["ARRAY_CHUNK_ROWS", "Stream"]

#: Rows per slice when a stream reads an array (a memmap) without a given chunk size.
ARRAY_CHUNK_ROWS = 65536

Chunk = Any


class Stream(ChunkedData):
    """Chunks of rows read one after another, with optional sample weights.

    Parameters
    ----------
    source : array, callable, iterable or iterator
        Where the chunks come from. An array (a NumPy memmap, say) is read in slices of
        ``chunk_size`` rows. A callable is called once per pass and must return an
        iterable of chunks (a generator function that reopens a file, say); an iterable
        that is not an iterator (a list of arrays) is iterated once per pass; an iterator
        can be read for one pass only. Each chunk is an array of shape (n, n_features) or a
        pair ``(rows, sample_weight)``; every chunk has the same namespace, device and
        dtype.
    origin : array of shape (n_features,) or None
        Subtracted from every row before the model sees it.
    n_jobs : int or None
        Threads that reduce NumPy chunks: ``None`` or -1 for every available core.
    transform : callable or None
        Applied to each ``(rows, sample_weight)`` pair as read (validation, say); returns
        such a pair.
    chunk_size : int or None
        Rows per slice of an array ``source`` (``None``: :data:`ARRAY_CHUNK_ROWS`).
    """

    def __init__(
        self,
        source: Array | Callable[[], Iterable[Chunk]] | Iterable[Chunk],
        *,
        origin: np.ndarray | None = None,
        n_jobs: int | None = None,
        transform: Callable[[tuple[Array, Array | None]], tuple[Array, Array | None]]
        | None = None,
        chunk_size: int | None = None,
    ) -> None:
        self.source = source
        self.origin = None if origin is None else np.asarray(origin, dtype=np.float64)
        self.n_jobs = n_jobs
        self.transform = transform
        self.chunk_size = chunk_size or ARRAY_CHUNK_ROWS
        self._used = False

    @property
    def repeatable(self) -> bool:
        """Whether the stream can be read more than once (it is not an iterator)."""
        return not isinstance(self.source, Iterator)

    def _open(self) -> Iterable[Chunk]:
        source = self.source
        if hasattr(source, "shape") and hasattr(source, "__getitem__"):
            size = self.chunk_size
            return (source[start : start + size] for start in range(0, source.shape[0], size))
        if callable(source):
            return source()
        if isinstance(source, Iterator):
            if self._used:
                raise ValueError(
                    "this stream is an iterator, which can be read once; pass a callable "
                    "that returns a fresh iterable of chunks, a list or an array for more "
                    "than one pass"
                )
            self._used = True
        return source

    def read(self) -> Iterator[tuple[Array, Array | None]]:
        """One pass over the chunks as ``(rows, sample_weight)`` pairs, transformed, with
        rows as given (not shifted by the origin)."""
        for chunk in self._open():
            pair = chunk if isinstance(chunk, tuple) else (chunk, None)
            yield pair if self.transform is None else self.transform(pair)

    def _raw_chunks(self) -> Iterator[tuple[int, int, Array, Array | None]]:
        start = 0
        for index, (rows, weights) in enumerate(self.read()):
            yield index, start, rows, weights
            start += int(rows.shape[0])

    def _chunks(self) -> Iterator[tuple[int, int, Array, Array | None]]:
        for index, start, rows, weights in self._raw_chunks():
            if self.origin is not None:
                rows = rows - as_backend(self.origin, like=rows)
            yield index, start, rows, weights

    def _threads(self, like: Array) -> int:
        if is_torch(like):
            return 1
        return threads_for(self.n_jobs)

    def _pass(
        self, work: Callable[..., Any], prepare: Callable[[Array], Any] | None = None
    ) -> Iterator[Any]:
        chunks = self._chunks()
        first = next(chunks, None)
        if first is None:
            raise ValueError("the stream yielded no chunk")
        like = first[2]
        prepared = None if prepare is None else prepare(like)
        tasks = (
            (index, start, rows, weights, prepared)
            for index, start, rows, weights in itertools.chain([first], chunks)
        )
        return ordered_map(work, tasks, self._threads(like))

    def mean(self) -> np.ndarray:
        """Weighted mean of the rows (without the origin), accumulated in float64."""
        total = None
        weight = 0.0
        for _, _, rows, weights in self._raw_chunks():
            xp = namespace(rows)
            rows = xp.astype(rows, xp.float64, copy=False)
            if weights is None:
                part = xp.sum(rows, axis=0)
                weight += rows.shape[0]
            else:
                w = xp.astype(weights, xp.float64)
                part = w @ rows
                weight += float(xp.sum(w))
            part = to_numpy(part, np.float64)
            total = part if total is None else total + part
        if total is None:
            raise ValueError("the stream yielded no chunk")
        return total / weight
