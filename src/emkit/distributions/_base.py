"""The protocol every component family follows, and additive sufficient statistics."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, runtime_checkable

import numpy as np

from emkit._backend import Array, namespace, to_numpy

__all__ = ["ComponentFamily", "Statistics"]


@dataclasses.dataclass(frozen=True)
class Statistics:
    """Expected sufficient statistics: a small bundle of arrays that adds up.

    The statistics of two disjoint pieces of data are the sum of their statistics, which is
    what lets one model run in memory, in chunks, on a GPU, online or on a cluster. Online
    EM also needs scaling (``rho * stats``). Subclasses are frozen dataclasses whose fields
    are all arrays of a fixed shape.
    """

    def _map(self, fn) -> Statistics:
        def apply(value):
            return value._map(fn) if isinstance(value, Statistics) else fn(value)

        return type(self)(
            **{f.name: apply(getattr(self, f.name)) for f in dataclasses.fields(self)}
        )

    def __add__(self, other: Statistics) -> Statistics:
        if type(other) is not type(self):
            return NotImplemented
        return type(self)(
            **{
                f.name: getattr(self, f.name) + getattr(other, f.name)
                for f in dataclasses.fields(self)
            }
        )

    def __mul__(self, scale: float) -> Statistics:
        return self._map(lambda a: a * scale)

    __rmul__ = __mul__

    def astype(self, dtype) -> Statistics:
        """The same statistics in ``dtype`` (for accumulating chunks in float64)."""

        def cast(a):
            return namespace(a).astype(a, dtype)

        return self._map(cast)

    def to_numpy(self) -> Statistics:
        """The same statistics as float64 NumPy arrays in host memory."""
        return self._map(lambda a: to_numpy(a, dtype=np.float64))


@runtime_checkable
class ComponentFamily(Protocol):
    """What a family of component distributions provides for K components.

    A family holds options only (a covariance structure, a regulariser); parameters are
    passed in and returned. Parameters live in host memory as float64 NumPy arrays;
    :meth:`prepare` turns them into whatever :meth:`log_prob` wants on the data's device and
    in its dtype, once per pass over the data.
    """

    def prepare(self, params: Any, like: Array) -> Any:
        """Parameters in the form :meth:`log_prob` uses, in the namespace of ``like``."""

    def log_prob(self, X: Array, prepared: Any) -> Array:
        r""":math:`\log p(x_n \mid z_n = k)` for every row and component, shape (n, K)."""

    def statistics(self, X: Array, resp: Array) -> Statistics:
        r"""Responsibility-weighted sufficient statistics :math:`\sum_n \gamma_{nk} T(x_n)`."""

    def maximize(self, stats: Statistics) -> Any:
        """The M-step: parameters maximising the expected complete-data log-likelihood."""

    def n_parameters(self, params: Any) -> int:
        """Number of free scalar parameters of the K components."""

    def sample(self, params: Any, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``counts[k]`` draws from component k, stacked in component order."""
