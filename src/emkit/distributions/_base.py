"""The protocol every component family follows, and additive sufficient statistics."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from emkit._backend import Array, namespace, to_numpy

__all__ = ["ComponentFamily", "Statistics", "reference"]


def reference(**kwargs) -> dataclasses.Field:
    """A field of :class:`Statistics` that locates the sums instead of being summed."""
    return dataclasses.field(metadata={"reference": True}, **kwargs)


@dataclasses.dataclass(frozen=True)
class Statistics:
    """Expected sufficient statistics: a small bundle of arrays that adds up.

    The statistics of two disjoint pieces of data are the sum of their statistics, which is
    what lets one model run in memory, in chunks, on a GPU, online or on a cluster. Online
    EM also needs scaling (``rho * stats``). Subclasses are frozen dataclasses of arrays;
    fields declared with :func:`reference` (a point the sums are taken about, say) are not
    added: :meth:`aligned` first expresses the other operand about the same reference.
    """

    def _map(self, fn, *, references: bool = True) -> Statistics:
        def apply(field):
            value = getattr(self, field.name)
            if field.metadata.get("reference") and not references:
                return value
            return value._map(fn, references=references) if isinstance(
                value, Statistics
            ) else fn(value)

        return type(self)(**{f.name: apply(f) for f in dataclasses.fields(self)})

    def aligned(self, other: Statistics) -> Statistics:
        """``other`` expressed about this object's reference fields (no reference: as is)."""
        return other

    def __add__(self, other: Statistics) -> Statistics:
        if type(other) is not type(self):
            return NotImplemented
        other = self.aligned(other)

        def total(field):
            mine = getattr(self, field.name)
            return mine if field.metadata.get("reference") else mine + getattr(other, field.name)

        return type(self)(**{f.name: total(f) for f in dataclasses.fields(self)})

    def __mul__(self, scale: float) -> Statistics:
        return self._map(lambda a: a * scale, references=False)

    __rmul__ = __mul__

    def astype(self, dtype) -> Statistics:
        """The same statistics in ``dtype`` (for accumulating chunks in float64)."""
        return self._map(lambda a: namespace(a).astype(a, dtype))

    def to_numpy(self) -> Statistics:
        """The same statistics as float64 NumPy arrays in host memory."""
        return self._map(lambda a: to_numpy(a, dtype=np.float64))


class ComponentFamily(Protocol):
    """What a family of component distributions provides for K components.

    A family holds options only (a covariance structure, a regulariser); parameters are
    passed in and returned. Parameters live in host memory as float64 NumPy arrays;
    :meth:`prepare` turns them into whatever the E-step wants on the data's device and in
    its dtype, once per pass over the data. The E-step on a chunk is then
    ``features(X, prepared)`` (whatever the chunk is reduced to, computed once),
    ``log_prob(features, prepared)`` and, with the responsibilities,
    ``statistics(features, resp)``.

    A family may offer more, and gets more of the engine for it (the engine looks these up
    with ``getattr``):

    ``expected_log_likelihood(params, stats) -> float``
        :math:`Q(\\theta) = \\sum_n \\sum_k q_{nk} \\log p(x_n \\mid z_n = k, \\theta_k)`
        from the statistics alone: needed by generalized and conditional M-steps (the engine
        checks that Q does not decrease), incremental EM (its free energy), the ELBO
        diagnostics and :func:`emkit.diagnostics.check_family`.
    ``pack(params) -> ndarray`` and ``unpack(vector, like) -> params``
        The parameters as one vector of unconstrained coordinates (log-variances, say) and
        back: the generic generalized M-step climbs Q in them.
    ``improve(params, stats) -> params``
        A partial M-step (a few Newton steps, say) that increases Q.
    ``conditional_blocks`` (tuple of str) and ``conditional_maximize(params, stats, block)``
        The blocks of an ECM step, each maximising Q over its parameters given the others.
    ``impute(X, features, params, resp) -> X``
        The chunk with its missing values (NaN, marginalised by ``log_prob`` and
        ``statistics``) replaced given the observed ones and the posterior ``resp``:
        :math:`\\sum_k r_{nk} E[x_{nd} \\mid x_{n,o}, z_n = k]` (the estimators'
        ``impute``).
    """

    def prepare(self, params: Any, like: Array, bias: np.ndarray | None = None) -> Any:
        """Parameters for the E-step in the namespace of ``like``; ``bias`` (K,) is added
        to every row of :meth:`log_prob` (the mixture's log-weights)."""

    def features(self, X: Array, prepared: Any | None) -> Any:
        """What :meth:`log_prob` and :meth:`statistics` need of a chunk (``prepared`` is
        ``None`` when only statistics are wanted, at initialisation)."""

    def log_prob(self, features: Any, prepared: Any) -> Array:
        r""":math:`\log p(x_n \mid z_n = k)` + bias for every row and component, (n, K)."""

    def statistics(self, features: Any, resp: Array) -> Statistics:
        r"""Responsibility-weighted sufficient statistics :math:`\sum_n \gamma_{nk} T(x_n)`."""

    def maximize(self, stats: Statistics) -> Any:
        """The M-step: parameters maximising the expected complete-data log-likelihood."""

    def regularization_gap(self, params: Any, stats: Statistics) -> float:
        """How far below the exact maximum of Q a regularised M-step may land, per sample
        (0 for an exact M-step); the monotonicity check allows for it."""

    def reseed(self, params: Any, stats: Statistics, component: int, point: np.ndarray) -> Any:
        """Parameters with an empty ``component`` moved onto the data ``point``."""

    def n_parameters(self, params: Any) -> int:
        """Number of free scalar parameters of the K components."""

    def sample(self, params: Any, counts: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        """``counts[k]`` draws from component k, stacked in component order."""
