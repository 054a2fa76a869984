r"""Independent products: families whose columns are independent given the component.

Two kinds of product live here.

:class:`IndependentColumns` is the base of the families whose every column follows a
one-dimensional exponential family (Bernoulli, Poisson, exponential, gamma):

.. math::

    \log p(x \mid z = k) = \sum_{d \in O(x)} \left[\eta_{kd}^\top t(x_d) - A(\eta_{kd})
      + h(x_d)\right],

with natural parameters :math:`\eta_{kd}`, sufficient statistics :math:`t` (one or two per
cell), log-partition :math:`A` and base measure :math:`h`. The sum runs over the observed
cells :math:`O(x)`: a missing cell (NaN) is marginalised, it contributes nothing to the
log-density and nothing to the statistics. Stacking :math:`t(x_n)` into a row
:math:`T_n` of length :math:`mD`, the log-densities of a chunk for all components are one
matrix product :math:`T \eta^\top` minus :math:`\sum_d A_{kd}` (or, with missing cells,
minus a second product :math:`M A^\top` with the observed mask :math:`M`), and the statistics
are :math:`\Gamma^\top T` with the responsibilities :math:`\Gamma`. They are
:math:`N_k = \sum_n \gamma_{nk}`, the per-column counts :math:`N_{kd} = \sum_n \gamma_{nk}
M_{nd}` and the sums :math:`S_{kd} = \sum_n \gamma_{nk} t(x_{nd})`; the counts differ from
:math:`N_k` only where cells are missing.

:class:`Product` puts any families side by side on groups of columns (a Gaussian on the
continuous ones, a categorical on the categorical ones, a Poisson on the counts: the model
of latent class analysis). Its log-density is the sum of the groups' log-densities, its
statistics the tuple of theirs, and each group's M-step is its own.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from emkit._backend import Array, as_backend, namespace, to_numpy
from emkit.distributions._base import ComponentFamily, Statistics

__all__ = [
    "ColumnCoefficients",
    "ColumnStatistics",
    "IndependentColumns",
    "Product",
    "ProductParams",
    "ProductStatistics",
    "check_support",
]

#: Rows validated at a time, so that no temporary as large as the data is made.
_VALIDATION_ROWS = 65536


def check_support(
    X: Array,
    allowed: Callable[[Any, Array], Array],
    description: str,
    labels: Sequence[str],
    family: str,
    *,
    allow_nan: bool,
    nan_reason: str = "this family does not marginalise missing values",
) -> None:
    """Raise ``ValueError`` naming the first cell of ``X`` outside a family's support.

    Parameters
    ----------
    X : array of shape (n_samples, n_columns)
    allowed : callable
        ``allowed(xp, block)`` is a boolean array, true where a value is in the support.
    description : str
        The support in words (``"0 or 1"``).
    labels : sequence of str
        How to name each column in the message.
    family : str
        The family's name, for the message.
    allow_nan : bool
        Whether NaN (a missing value, marginalised by the family) is accepted.
    nan_reason : str
        Why NaN is refused, for the message (when ``allow_nan`` is false).

    Every support here lies in :math:`[0, \\infty)`, so a negative value is reported as
    "Negative values in data", scikit-learn's wording for estimators of non-negative data.
    """
    xp = namespace(X)
    for start in range(0, X.shape[0], _VALIDATION_ROWS):
        block = X[start : start + _VALIDATION_ROWS]
        ok = allowed(xp, block)
        if allow_nan:
            ok = ok | xp.isnan(block)
        if bool(xp.all(ok)):
            continue
        row, column = (int(i) for i in np.argwhere(~to_numpy(ok))[0])
        value = float(to_numpy(block[row, column]))
        if np.isnan(value):
            raise ValueError(
                f"{family} column {labels[column]} holds NaN at row {start + row}: "
                f"{nan_reason}. Remove or impute these rows first."
            )
        reason = "Negative values in data: " if value < 0 else ""
        raise ValueError(
            f"{reason}{family} column {labels[column]} must hold {description}, but row "
            f"{start + row} holds {value!r}."
        )


def replace_component(params: Any, component: int, source: Any, row: int = 0) -> Any:
    """``params`` (a dataclass of arrays with components first) with one component's
    entries taken from row ``row`` of ``source``, a dataclass of the same type."""
    updated = {}
    for field in dataclasses.fields(params):
        value = np.array(getattr(params, field.name), copy=True)
        value[component] = getattr(source, field.name)[row]
        updated[field.name] = value
    return type(params)(**updated)


@dataclasses.dataclass(frozen=True)
class ColumnStatistics(Statistics):
    r"""Sums of a family with independent columns, per component :math:`k` and column
    :math:`d`.

    ``resp_sum`` (K,) is :math:`N_k = \sum_n \gamma_{nk}`, ``counts`` (K, D) the
    responsibility of the rows in which column :math:`d` is observed,
    :math:`N_{kd} = \sum_n \gamma_{nk} M_{nd}`, ``sums`` (K, m, D) the weighted sums
    :math:`\sum_n \gamma_{nk} M_{nd}\, t_j(x_{nd})` of the :math:`m` statistics per cell,
    and ``base`` (K,) :math:`\sum_n \gamma_{nk} h(x_n)`, which only the value of Q needs.
    """

    resp_sum: Array
    counts: Array
    sums: Array
    base: Array


@dataclasses.dataclass(frozen=True)
class ColumnCoefficients:
    """E-step coefficients: natural parameters (mD, K), log-partitions (D, K), and the
    per-component constants with and without :math:`-\\sum_d A_{kd}` (bias included)."""

    natural: Array
    log_partition: Array
    constant: Array
    bias: Array


@dataclasses.dataclass(frozen=True)
class ColumnChunk:
    """A chunk as features: the stacked statistics ``t`` (n, mD), the observed mask
    (n, D) or ``None`` when nothing is missing, and the base measure (n,) or ``None``."""

    t: Array
    observed: Array | None
    base: Array | None


def has_missing(X: Array) -> bool:
    """Whether a chunk holds a NaN: its sum is NaN exactly then (other cells are finite),
    and one reduction costs less than a mask as large as the chunk."""
    xp = namespace(X)
    return bool(xp.isnan(xp.sum(X)))


class IndependentColumns(abc.ABC):
    """Base of the families with independent columns from a 1-D exponential family.

    A subclass defines the statistics ``transform`` (:math:`t`, ``n_statistics`` per cell),
    the ``base_measure`` (:math:`\\sum_d h(x_d)` per row), the natural parameters and
    log-partitions of its parameters, its M-step, its ``support`` and the regulariser's
    ``regularization_gap``. Missing cells (NaN) are marginalised.
    """

    n_statistics: ClassVar[int] = 1
    #: A value in the support, put in the place of missing cells before ``transform``.
    fill_value: ClassVar[float] = 0.0
    support_description: ClassVar[str] = ""
    location: ClassVar[bool] = False

    # ------------------------------------------------------------------ to define
    def transform(self, X: Array) -> Array:
        """Statistics :math:`t(x)` of every cell, stacked by statistic: (n, mD)."""
        return X

    def base_measure(self, X: Array) -> Array | None:
        """:math:`\\sum_d h(x_{nd})` per row (n,), or ``None`` when :math:`h = 0`."""
        return None

    @abc.abstractmethod
    def natural(self, params: Any) -> np.ndarray:
        """Natural parameters :math:`\\eta_{kd}`, (K, m, D)."""

    @abc.abstractmethod
    def log_partition(self, params: Any) -> np.ndarray:
        """Log-partition :math:`A(\\eta_{kd})`, (K, D)."""

    @abc.abstractmethod
    def support(self, xp, X: Array) -> Array:
        """Boolean array, true where a value lies in the support."""

    @abc.abstractmethod
    def mean(self, params: Any) -> np.ndarray:
        """:math:`E[x_d \\mid z = k]`, (K, D)."""

    # ------------------------------------------------------------------ E-step
    def prepare(
        self, params: Any, like: Array, bias: np.ndarray | None = None
    ) -> ColumnCoefficients:
        """Natural parameters and constants in the namespace and dtype of ``like``."""
        return self.coefficients(self.natural(params), self.log_partition(params), like, bias)

    def coefficients(
        self, natural: np.ndarray, partition: np.ndarray, like: Array,
        bias: np.ndarray | None = None,
    ) -> ColumnCoefficients:
        """E-step coefficients of natural parameters (K, m, D) and log-partitions (K, D),
        whatever they come from: the parameters, or their expectations under a variational
        posterior (:mod:`emkit.distributions.conjugate`)."""
        n_components = natural.shape[0]
        bias = np.zeros(n_components) if bias is None else bias
        return ColumnCoefficients(
            as_backend(np.ascontiguousarray(natural.reshape(n_components, -1).T), like),
            as_backend(np.ascontiguousarray(partition.T), like),
            as_backend(bias - partition.sum(axis=1), like),
            as_backend(bias, like),
        )

    def features(self, X: Array, prepared: ColumnCoefficients | None) -> ColumnChunk:
        """Statistics :math:`t(x)` of the chunk, with missing cells set to zero."""
        if not has_missing(X):
            return ColumnChunk(self.transform(X), None, self.base_measure(X))
        xp = namespace(X)
        missing = xp.isnan(X)
        observed = xp.astype(~missing, X.dtype)
        filled = xp.where(missing, xp.full_like(X, self.fill_value), X)
        mask = xp.concat([observed] * self.n_statistics, axis=1)
        base = self.base_measure(filled)
        return ColumnChunk(self.transform(filled) * mask, observed, base)

    def log_prob(self, chunk: ColumnChunk, prepared: ColumnCoefficients) -> Array:
        r""":math:`T_n \eta_k^\top - \sum_{d \in O(x_n)} A_{kd} + h(x_n)` + bias, (n, K)."""
        log_prob = chunk.t @ prepared.natural
        if chunk.observed is None:
            log_prob = log_prob + prepared.constant[None, :]
        else:
            log_prob = log_prob - chunk.observed @ prepared.log_partition
            log_prob = log_prob + prepared.bias[None, :]
        if chunk.base is not None:
            log_prob = log_prob + chunk.base[:, None]
        return log_prob

    def statistics(self, chunk: ColumnChunk, resp: Array) -> ColumnStatistics:
        r""":math:`N_k`, :math:`N_{kd}` and :math:`\sum_n \gamma_{nk} t(x_{nd})`."""
        xp = namespace(resp)
        resp_sum = xp.sum(resp, axis=0)
        n_components = resp.shape[1]
        n_columns = chunk.t.shape[1] // self.n_statistics
        sums = xp.reshape(resp.T @ chunk.t, (n_components, self.n_statistics, n_columns))
        if chunk.observed is None:
            counts = xp.broadcast_to(resp_sum[:, None], (n_components, n_columns))
        else:
            counts = resp.T @ chunk.observed
        base = xp.zeros_like(resp_sum) if chunk.base is None else chunk.base @ resp
        return ColumnStatistics(resp_sum, counts, sums, base)

    def expected_log_likelihood(self, params: Any, stats: ColumnStatistics) -> float:
        r""":math:`Q = \sum_{kd} [\eta_{kd}^\top S_{kd} - N_{kd} A(\eta_{kd})]
        + \sum_k \sum_n \gamma_{nk} h(x_n)`, the expected complete-data log-likelihood of
        the components, from the statistics."""
        return self.expected_value(self.natural(params), self.log_partition(params), stats)

    def expected_value(
        self, natural: np.ndarray, partition: np.ndarray, stats: ColumnStatistics
    ) -> float:
        r""":math:`\sum_{kd} [\eta_{kd}^\top S_{kd} - N_{kd} A_{kd}] + \sum_k \sum_n \gamma_{nk}
        h(x_n)` for natural parameters :math:`\eta` (K, m, D) and log-partitions :math:`A`
        (K, D): Q at the parameters, or, with :math:`\mathbb E_q[\eta]` and
        :math:`\mathbb E_q[A]`, its expectation under a variational posterior."""
        return float(
            (natural * stats.sums).sum() - (stats.counts * partition).sum() + stats.base.sum()
        )

    def impute(self, X: Array, chunk: ColumnChunk, params: Any, resp: Array) -> Array:
        r"""The chunk ``X`` with each missing cell replaced by its conditional expectation
        :math:`\sum_k \gamma_{nk} E[x_{nd} \mid z_n = k]` (the columns are independent
        given the component, so the observed cells enter through :math:`\gamma` only)."""
        if chunk.observed is None:
            return X
        xp = namespace(X)
        values = resp @ as_backend(self.mean(params), resp)
        return xp.where(xp.isnan(X), values, X)

    # ------------------------------------------------------------------ the rest
    def reseed(
        self, params: Any, stats: ColumnStatistics, component: int, point: np.ndarray
    ) -> Any:
        """Restart an empty component from the statistics of ``point`` plus one average
        sample (the pooled statistics divided by the number of samples); missing cells of
        ``point`` contribute nothing."""
        total = stats.resp_sum.sum()
        missing = np.isnan(point)
        filled = np.where(missing, self.fill_value, point)[None, :]
        observed = (~missing).astype(np.float64)
        t = to_numpy(self.transform(filled), np.float64).reshape(self.n_statistics, -1)
        seed = ColumnStatistics(
            np.array([2.0]),
            (observed + stats.counts.sum(axis=0) / total)[None],
            (t * observed + stats.sums.sum(axis=0) / total)[None],
            np.zeros(1),
        )
        return replace_component(params, component, self.maximize(seed))

    def validate(self, X: Array, labels: Sequence[str]) -> None:
        """Refuse values outside the support, naming the column and the row."""
        check_support(
            X, self.support, self.support_description, labels, type(self).__name__,
            allow_nan=True,
        )

    @abc.abstractmethod
    def maximize(self, stats: ColumnStatistics) -> Any:
        """The M-step of the subclass."""


@dataclasses.dataclass(frozen=True)
class ProductParams:
    """Parameters of each group of a :class:`Product`, in group order."""

    parts: tuple


@dataclasses.dataclass(frozen=True)
class ProductStatistics(Statistics):
    """Statistics of each group of a :class:`Product`; they add and scale group by group."""

    parts: tuple

    def _map(self, fn, *, references: bool = True) -> ProductStatistics:
        return ProductStatistics(
            tuple(part._map(fn, references=references) for part in self.parts)
        )

    def __add__(self, other: ProductStatistics) -> ProductStatistics:
        if type(other) is not type(self):
            return NotImplemented
        return ProductStatistics(
            tuple(mine + theirs for mine, theirs in zip(self.parts, other.parts, strict=True))
        )


@dataclasses.dataclass(frozen=True)
class ProductChunk:
    """Each group's features of a chunk."""

    parts: tuple


@dataclasses.dataclass(frozen=True, init=False)
class Product:
    r"""Independent families on disjoint groups of columns.

    .. math::

        \log p(x \mid z = k) = \sum_g \log p_g(x_{C_g} \mid z = k),

    where group :math:`g` models the columns :math:`C_g` with its own family. The groups
    must partition the columns ``0, ..., D - 1``.

    Parameters
    ----------
    groups : sequence of (columns, family)
        Column indices (into the data given to the family) and the family that models them,
        e.g. ``[([0, 1], Gaussian('diag')), ([2], Categorical((3,))), ([3, 4], Poisson())]``.
    """

    groups: tuple

    def __init__(self, groups: Sequence[tuple[Sequence[int], ComponentFamily]]) -> None:
        normalised = tuple(
            (tuple(int(c) for c in columns), family) for columns, family in groups
        )
        if not normalised:
            raise ValueError("A Product needs at least one group of columns.")
        columns = sorted(c for group, _ in normalised for c in group)
        if columns != list(range(len(columns))):
            raise ValueError(
                "The groups of a Product must partition the columns 0, ..., D - 1 (each "
                f"exactly once); got columns {columns}."
            )
        for group, _ in normalised:
            if not group:
                raise ValueError("Every group of a Product needs at least one column.")
        object.__setattr__(self, "groups", normalised)

    @property
    def n_features(self) -> int:
        return sum(len(columns) for columns, _ in self.groups)

    def _columns(self, X: Array, columns: tuple[int, ...]) -> Array:
        if columns == tuple(range(X.shape[1])):
            return X
        xp = namespace(X)
        index = as_backend(np.asarray(columns), X, dtype=xp.int64)
        return xp.take(X, index, axis=1)

    def prepare(
        self, params: ProductParams, like: Array, bias: np.ndarray | None = None
    ) -> tuple:
        """Each group's coefficients; the bias is folded into the first group's."""
        return tuple(
            family.prepare(part, like, bias if g == 0 else None)
            for g, ((_, family), part) in enumerate(zip(self.groups, params.parts, strict=True))
        )

    def features(self, X: Array, prepared: tuple | None) -> ProductChunk:
        """Each group's features of its columns of the chunk."""
        parts = []
        for g, (columns, family) in enumerate(self.groups):
            part = None if prepared is None else prepared[g]
            parts.append(family.features(self._columns(X, columns), part))
        return ProductChunk(tuple(parts))

    def log_prob(self, chunk: ProductChunk, prepared: tuple) -> Array:
        """The sum of the groups' log-densities, (n, K)."""
        total = None
        for (_, family), features, part in zip(
            self.groups, chunk.parts, prepared, strict=True
        ):
            log_prob = family.log_prob(features, part)
            total = log_prob if total is None else total + log_prob
        return total

    def statistics(self, chunk: ProductChunk, resp: Array) -> ProductStatistics:
        """Each group's statistics."""
        return ProductStatistics(
            tuple(
                family.statistics(features, resp)
                for (_, family), features in zip(self.groups, chunk.parts, strict=True)
            )
        )

    def maximize(self, stats: ProductStatistics) -> ProductParams:
        """Each group's M-step: Q is a sum over groups with separate parameters."""
        return ProductParams(
            tuple(
                family.maximize(part)
                for (_, family), part in zip(self.groups, stats.parts, strict=True)
            )
        )

    def expected_log_likelihood(self, params: ProductParams, stats: ProductStatistics) -> float:
        """Q of the product: the sum of the groups' Q (the columns are independent given the
        component)."""
        return float(
            sum(
                family.expected_log_likelihood(part, part_stats)
                for (_, family), part, part_stats in zip(
                    self.groups, params.parts, stats.parts, strict=True
                )
            )
        )

    def impute(self, X: Array, chunk: ProductChunk, params: ProductParams, resp: Array) -> Array:
        """The chunk ``X`` with each group's missing cells imputed by the group's family
        given ``resp``, the posterior given every observed cell of the row."""
        xp = namespace(X)
        filled = xp.asarray(X, copy=True)
        for (columns, family), features, part in zip(
            self.groups, chunk.parts, params.parts, strict=True
        ):
            index = as_backend(np.asarray(columns), X, dtype=xp.int64)
            filled[:, index] = family.impute(
                self._columns(X, columns), features, part, resp
            )
        return filled

    def regularization_gap(self, params: ProductParams, stats: ProductStatistics) -> float:
        """The sum of the groups' gaps (Q is a sum over groups)."""
        return float(
            sum(
                family.regularization_gap(part, part_stats)
                for (_, family), part, part_stats in zip(
                    self.groups, params.parts, stats.parts, strict=True
                )
            )
        )

    def reseed(
        self, params: ProductParams, stats: ProductStatistics, component: int,
        point: np.ndarray,
    ) -> ProductParams:
        """Each group re-seeds the component on its columns of ``point``."""
        return ProductParams(
            tuple(
                family.reseed(part, part_stats, component, point[list(columns)])
                for (columns, family), part, part_stats in zip(
                    self.groups, params.parts, stats.parts, strict=True
                )
            )
        )

    def n_parameters(self, params: ProductParams) -> int:
        """The sum over groups."""
        return sum(
            family.n_parameters(part)
            for (_, family), part in zip(self.groups, params.parts, strict=True)
        )

    def sample(
        self, params: ProductParams, counts: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        """Each group's draws placed in its columns (groups drawn in order)."""
        X = np.empty((int(np.sum(counts)), self.n_features))
        for (columns, family), part in zip(self.groups, params.parts, strict=True):
            X[:, list(columns)] = family.sample(part, counts, rng)
        return X

    def validate(self, X: Array, labels: Sequence[str]) -> None:
        """Each group's validation on its columns (groups without one accept any value)."""
        for columns, family in self.groups:
            check = getattr(family, "validate", None)
            if check is not None:
                check(self._columns(X, columns), [labels[c] for c in columns])
