"""Regression data in memory — features, observations, groups, concomitant covariates and
sample weights — visited in chunks of rows.

The structured model's E-step needs more than a data matrix: the features F (the
regression's design), the observations y, the group ID of every row and the concomitant
covariates w of the gating. :class:`ColumnData` holds these columns and hands the model one
:class:`~emkit.distributions.regression.Rows` chunk at a time, so that memory beyond the
data is bounded by a chunk; statistics are summed over chunks in float64 and in chunk order
(results do not depend on the chunk size beyond rounding). It has the interface of
:class:`~emkit.executors.memory.InMemory` that :func:`emkit.em.run_em` drives
(``expectation``, with an E-step strategy, and ``worst_rows``), plus
:meth:`ColumnData.revisit` for generalised M-steps, which re-visit the data with the
responsibilities of the last E-step to check that a Newton step increases Q.

Features and concomitant covariates are shifted by fixed origins (their means) on the fly,
and, for Gaussian observations, y too: parameters live in that shifted frame, which keeps
the sums of squares free of cancellation for data far from zero. The shifts are only made
for designs with an intercept, which absorbs them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np

from emkit.distributions._base import Statistics
from emkit.distributions.regression import Rows
from emkit.executors._chunked import PassResult
from emkit.executors.memory import auto_chunk_size, chunk_bounds

__all__ = ["ColumnData", "Expectation"]


@dataclasses.dataclass(frozen=True)
class Expectation(Statistics):
    """What the M-step gets from one E-step over all the data.

    It adds up and scales as its statistics do (online EM averages it over mini-batches);
    the result has no ``revisit``, since no single pass holds its responsibilities.

    Attributes
    ----------
    stats : Statistics
        The summed statistics.
    revisit : callable or None
        ``revisit(trial, **parts)``: statistics at the parameters ``trial`` with the
        responsibilities of this E-step (see :meth:`ColumnData.revisit`); ``None`` for
        statistics combined from several passes.
    """

    stats: Statistics
    revisit: Callable[..., Statistics] | None = None

    def _map(self, fn, *, references: bool = True) -> Expectation:
        return Expectation(self.stats._map(fn, references=references))

    def __add__(self, other: Expectation) -> Expectation:
        if not isinstance(other, Expectation):
            return NotImplemented
        return Expectation(self.stats + other.stats)


class ColumnData:
    """The columns of a regression problem, visited in chunks of rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The features (float64).
    y : ndarray of shape (n_samples, n_outputs) or None
        The observations; ``None`` where only the class prior is needed.
    groups : ndarray of int of shape (n_samples,) or None
        Group codes (-1: a group not seen in training).
    concomitant : ndarray of shape (n_samples, n_covariates) or None
        Covariates of the gating.
    sample_weight : ndarray of shape (n_samples,) or None
        Non-negative weights; ``None`` for unit weights.
    intercept : bool
        Append a column of ones to the design.
    x_origin, y_origin, gate_origin : ndarray or None
        Subtracted from the features, the observations and the concomitant covariates.
    chunk_size : int or None
        Rows per chunk; ``None``: about 2**19 working numbers per chunk.
    row_width : int
        Working numbers per row of the model's E-step, for the automatic chunk size.
    """

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray | None = None,
        *,
        groups: np.ndarray | None = None,
        concomitant: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
        intercept: bool = True,
        x_origin: np.ndarray | None = None,
        y_origin: np.ndarray | None = None,
        gate_origin: np.ndarray | None = None,
        chunk_size: int | None = None,
        row_width: int = 1,
    ) -> None:
        self.X = X
        self.y = y
        self.groups = groups
        self.concomitant = concomitant
        self.sample_weight = sample_weight
        self.intercept = intercept
        self.x_origin = x_origin
        self.y_origin = y_origin
        self.gate_origin = gate_origin
        self.chunk_size = chunk_size or auto_chunk_size(X, row_width)

    @property
    def n_samples(self) -> int:
        """The number of rows."""
        return int(self.X.shape[0])

    def _bounds(self) -> list[tuple[int, int]]:
        return chunk_bounds(self.n_samples, self.chunk_size)

    def _rows(self, index: slice | np.ndarray) -> Rows:
        """The rows at ``index`` (a slice or indices), origins subtracted."""
        features = self.X[index]
        n_rows = features.shape[0]
        if self.x_origin is not None:
            features = features - self.x_origin
        if self.intercept:
            features = np.hstack([features, np.ones((n_rows, 1))])
        y = None if self.y is None else self.y[index]
        if y is not None and self.y_origin is not None:
            y = y - self.y_origin
        gate = None
        if self.concomitant is not None:
            gate = self.concomitant[index]
            if self.gate_origin is not None:
                gate = gate - self.gate_origin
            gate = np.hstack([gate, np.ones((n_rows, 1))])
        return Rows(
            design=features,
            y=y,
            groups=None if self.groups is None else self.groups[index],
            gate=gate,
            weight=None if self.sample_weight is None else self.sample_weight[index],
        )

    def chunks(self) -> Iterator[tuple[int, Rows]]:
        """Yield ``(start, rows)`` in order, with the origins subtracted."""
        for start, stop in self._bounds():
            yield start, self._rows(slice(start, stop))

    @staticmethod
    def _sum(parts) -> Statistics:
        total = None
        for part in parts:
            total = part if total is None else total + part
        return total

    def _each(self, estep) -> Iterator[tuple[Rows, object]]:
        """``(rows, E-step pass of the chunk)`` in order (the pass ``None`` for the exact
        E-step)."""
        for index, (_, rows) in enumerate(self.chunks()):
            yield rows, None if estep is None else estep.for_chunk(index)

    def expectation(self, model, params, estep=None) -> PassResult:
        """E-step over every chunk: ``model.expectation(rows, params, estep)`` summed.

        ``estep`` (an :class:`emkit.em.strategies.EStepPass`, ``None`` for the exact E-step)
        forms the responsibilities; each chunk gets its own (``estep.for_chunk(index)``),
        so that its random draws depend on the chunk, not on when it is visited.

        Returns
        -------
        PassResult
            Its ``stats`` is an :class:`Expectation` (the statistics, and the way to revisit
            the data with the responsibilities of this E-step); its ``log_likelihood`` the
            mean log-likelihood per sample, its ``sums`` the strategy's per-row quantities
            per sample.
        """
        totals = [0.0, 0.0]
        sums: dict[str, float] = {}

        def parts():
            for rows, chunk_estep in self._each(estep):
                chunk = model.expectation(rows, params, chunk_estep)
                totals[0] += float(chunk.log_likelihood)
                totals[1] += float(chunk.weight)
                for name, value in chunk.sums.items():
                    sums[name] = sums.get(name, 0.0) + float(value)
                yield chunk.stats

        stats = self._sum(parts())

        def revisit(trial, **parts) -> Statistics:
            return self.revisit(model, params, trial, estep, **parts)

        return PassResult(
            Expectation(stats, revisit), totals[0] / totals[1], totals[1],
            {name: value / totals[1] for name, value in sums.items()},
        )

    def revisit(self, model, params, trial, estep=None, **parts) -> Statistics:
        """Statistics at ``trial`` with the responsibilities of the E-step at ``params``.

        This is what checking a generalised M-step needs: the value (and derivatives) of
        :math:`Q(\\theta_{\\text{trial}} \\mid q)` for the fixed responsibilities :math:`q`
        of the last E-step. They are recomputed chunk by chunk rather than stored, so that
        memory stays bounded by a chunk, by the same strategy ``estep``, whose random draws
        for a chunk are the same on every visit; ``parts`` says which of the model's parts
        the statistics are wanted for.
        """
        return self._sum(
            model.trial_statistics(rows, params, trial, chunk_estep, **parts)
            for rows, chunk_estep in self._each(estep)
        )

    def statistics(self, model, resp_of: Callable[[int, Rows], np.ndarray]) -> Statistics:
        """Initial statistics for given responsibilities ``resp_of(start, rows)`` (times the
        sample weights), chunks visited in order."""

        def parts():
            for start, rows in self.chunks():
                resp = resp_of(start, rows)
                if rows.weight is not None:
                    resp = resp * rows.weight[:, None]
                yield model.initial_statistics(rows, resp)

        return self._sum(parts())

    def gram(self) -> tuple[np.ndarray, np.ndarray | None]:
        r""":math:`\sum_n w_n \tilde x_n \tilde x_n^\top` of the design and of the
        concomitant design (``None`` without concomitant covariates)."""
        design = gate = None
        for _, rows in self.chunks():
            weight = np.ones(len(rows)) if rows.weight is None else rows.weight
            part = (rows.design * weight[:, None]).T @ rows.design
            design = part if design is None else design + part
            if rows.gate is not None:
                part = (rows.gate * weight[:, None]).T @ rows.gate
                gate = part if gate is None else gate + part
        return design, gate

    def map_rows(self, fn: Callable[[Rows], np.ndarray]) -> np.ndarray:
        """``fn`` applied to every chunk, the results stacked along rows."""
        return np.concatenate([fn(rows) for _, rows in self.chunks()], axis=0)

    def worst_rows(self, model, params, count: int) -> Rows:
        """The ``count`` rows (shifted) with the lowest log-likelihood under ``params``;
        rows with zero weight are never chosen."""
        scores = self.map_rows(lambda rows: model.log_likelihood(rows, params))
        if self.sample_weight is not None:
            scores = np.where(self.sample_weight > 0, scores, np.inf)
        order = np.argsort(scores, kind="stable")[:count]
        return self._rows(order)
