r"""Categorical components: J independent columns, column :math:`j` with :math:`C_j` levels.

A column is given as integer codes :math:`0, \dots, C_j - 1` (NaN where missing) and seen
through its one-hot encoding :math:`e(x_j)`. For component :math:`k` with probabilities
:math:`\theta_{kjc} = p(x_j = c \mid z = k)`,

.. math::

    \log p(x \mid z = k) = \sum_j \log\theta_{k j x_j} = e(x)^\top \log\theta_k,

one matrix product of the one-hot rows (length :math:`L = \sum_j C_j`) with the log
probabilities. The statistics are the weighted level counts
:math:`S_{kjc} = \sum_n \gamma_{nk} [x_{nj} = c]`; the M-step is

.. math::

    \theta_{kjc} = \frac{S_{kjc} + \alpha}{\sum_{c'} S_{kjc'} + C_j \alpha},

the maximum a posteriori estimate under a symmetric :math:`\mathrm{Dirichlet}(1 + \alpha)`
prior (:math:`\alpha` pseudo-observations of every level), which keeps every probability
positive; :math:`\alpha \to 0` is maximum likelihood. A missing cell has an all-zero one-hot
encoding: it contributes to neither the log-density nor the counts, and
:math:`\sum_c S_{kjc}` is the responsibility of the rows where column :math:`j` is observed.

The module also turns columns of arbitrary levels (strings, numbers) into codes and back
(:func:`learn_categories`, :func:`encode_categories`, :func:`decode_categories`).
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence

import numpy as np
from scipy.special import rel_entr

from emkit._backend import Array, as_backend, device_of, namespace, to_numpy
from emkit.distributions._base import Statistics
from emkit.distributions.product import check_support, replace_component

__all__ = [
    "Categorical",
    "CategoricalParams",
    "CategoricalStatistics",
    "decode_categories",
    "encode_categories",
    "learn_categories",
]


@dataclasses.dataclass(frozen=True)
class CategoricalParams:
    """Probabilities :math:`\\theta_{kjc}`, (K, J, C_max), zero beyond each column's levels."""

    probabilities: np.ndarray


@dataclasses.dataclass(frozen=True)
class CategoricalStatistics(Statistics):
    r""":math:`N_k = \sum_n \gamma_{nk}` (K,) and the level counts :math:`S_{kjc}`, (K, L)
    with the levels of all columns side by side."""

    resp_sum: Array
    counts: Array


@dataclasses.dataclass(frozen=True)
class CategoricalCoefficients:
    """Log-probabilities (L, K) and the bias (K,)."""

    log_probabilities: Array
    bias: Array


@dataclasses.dataclass(frozen=True)
class CategoricalChunk:
    """The one-hot encoding of a chunk, (n, L)."""

    one_hot: Array


@dataclasses.dataclass(frozen=True)
class Categorical:
    """Family of products of J categorical distributions.

    Parameters
    ----------
    n_levels : sequence of int
        :math:`C_j`, the number of levels of every column (at least 1).
    alpha : float
        Positive pseudo-count added to every level of every component (MAP under a
        Dirichlet(1 + α) prior), so that no probability is zero.
    """

    n_levels: tuple
    alpha: float = 1e-6
    location = False

    def __post_init__(self) -> None:
        levels = tuple(int(c) for c in self.n_levels)
        if not levels or min(levels) < 1:
            raise ValueError(f"Every column needs at least one level; got n_levels={levels}.")
        object.__setattr__(self, "n_levels", levels)

    @property
    def _valid(self) -> np.ndarray:
        """(J, C_max) mask of the levels that exist."""
        levels = np.asarray(self.n_levels)
        return np.arange(levels.max())[None, :] < levels[:, None]

    # ------------------------------------------------------------------ E-step
    def prepare(
        self, params: CategoricalParams, like: Array, bias: np.ndarray | None = None
    ) -> CategoricalCoefficients:
        r""":math:`\log\theta` of the existing levels, (L, K), in the dtype of ``like``."""
        return self.coefficients(np.log(params.probabilities[:, self._valid]), like, bias)

    def coefficients(
        self, log_probabilities: np.ndarray, like: Array, bias: np.ndarray | None = None
    ) -> CategoricalCoefficients:
        r"""E-step coefficients of log-probabilities (K, L) of the existing levels, whatever
        they come from: :math:`\log\theta`, or :math:`\mathbb E_q[\log\theta]` under a
        variational posterior (:mod:`emkit.distributions.conjugate`)."""
        n_components = log_probabilities.shape[0]
        bias = np.zeros(n_components) if bias is None else bias
        return CategoricalCoefficients(
            as_backend(np.ascontiguousarray(log_probabilities.T), like), as_backend(bias, like)
        )

    def features(self, X: Array, prepared: CategoricalCoefficients | None) -> CategoricalChunk:
        """One-hot encoding of the codes; a missing code (NaN) matches no level."""
        xp = namespace(X)
        levels = xp.arange(max(self.n_levels), dtype=X.dtype, device=device_of(X))
        blocks = [
            xp.astype(X[:, j : j + 1] == levels[None, :count], X.dtype)
            for j, count in enumerate(self.n_levels)
        ]
        return CategoricalChunk(blocks[0] if len(blocks) == 1 else xp.concat(blocks, axis=1))

    def log_prob(self, chunk: CategoricalChunk, prepared: CategoricalCoefficients) -> Array:
        r""":math:`e(x_n)^\top \log\theta_k` + bias, (n, K)."""
        return chunk.one_hot @ prepared.log_probabilities + prepared.bias[None, :]

    def statistics(self, chunk: CategoricalChunk, resp: Array) -> CategoricalStatistics:
        r""":math:`N_k` and :math:`S_{kjc} = \sum_n \gamma_{nk} e(x_n)_{jc}`."""
        xp = namespace(resp)
        return CategoricalStatistics(xp.sum(resp, axis=0), resp.T @ chunk.one_hot)

    def impute(
        self, X: Array, chunk: CategoricalChunk, params: CategoricalParams, resp: Array
    ) -> Array:
        r"""The chunk ``X`` with each missing code replaced by its most probable level given
        the observed cells, :math:`\arg\max_c \sum_k \gamma_{nk} \theta_{kjc}` (the mode
        of the predictive distribution, which is the conditional expectation of the one-hot
        encoding; the expectation of a code has no meaning)."""
        xp = namespace(X)
        n_components, n_columns, width = params.probabilities.shape
        flat = as_backend(params.probabilities.reshape(n_components, -1), resp)
        predictive = xp.reshape(resp @ flat, (X.shape[0], n_columns, width))
        codes = xp.astype(xp.argmax(predictive, axis=2), X.dtype)
        return xp.where(xp.isnan(X), codes, X)

    def expected_log_likelihood(
        self, params: CategoricalParams, stats: CategoricalStatistics
    ) -> float:
        r""":math:`Q = \sum_{kjc} S_{kjc} \log\theta_{kjc}`, from the statistics."""
        return float((stats.counts * np.log(params.probabilities[:, self._valid])).sum())

    # ------------------------------------------------------------------ M-step
    def _padded(self, counts: np.ndarray) -> np.ndarray:
        """(K, L) counts laid out as (K, J, C_max), zero beyond each column's levels."""
        valid = self._valid
        padded = np.zeros((counts.shape[0], *valid.shape))
        padded[:, valid] = counts
        return padded

    def maximize(self, stats: CategoricalStatistics) -> CategoricalParams:
        r""":math:`\theta_{kjc} = (S_{kjc} + \alpha) / (\sum_{c'} S_{kjc'} + C_j\alpha)`."""
        counts = self._padded(stats.counts) + self.alpha * self._valid
        return CategoricalParams(counts / counts.sum(axis=2, keepdims=True))

    def regularization_gap(
        self, params: CategoricalParams, stats: CategoricalStatistics
    ) -> float:
        r"""Loss of Q per sample from the pseudo-counts, exactly: :math:`\sum_{kj} N_{kj}
        \mathrm{KL}(\theta^*_{kj} \,\|\, \theta_{kj}) / \sum_k N_k` with
        :math:`N_{kj} = \sum_c S_{kjc}` and :math:`\theta^*_{kj} = S_{kj} / N_{kj}`."""
        counts = self._padded(stats.counts)
        totals = counts.sum(axis=2, keepdims=True)
        best = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        loss = totals * rel_entr(best, params.probabilities)
        return float(loss.sum() / stats.resp_sum.sum())

    def reseed(
        self, params: CategoricalParams, stats: CategoricalStatistics, component: int,
        point: np.ndarray,
    ) -> CategoricalParams:
        """Restart an empty component from the levels of ``point`` plus one average sample
        (the pooled counts divided by the number of samples)."""
        one_hot = to_numpy(self.features(np.asarray(point, dtype=np.float64)[None, :], None)
                           .one_hot)
        pooled = stats.counts.sum(axis=0) / stats.resp_sum.sum()
        seed = CategoricalStatistics(np.array([2.0]), one_hot + pooled[None, :])
        return replace_component(params, component, self.maximize(seed))

    # ------------------------------------------------------------------ the rest
    def n_parameters(self, params: CategoricalParams) -> int:
        """K · Σ_j (C_j − 1) free probabilities."""
        return int(params.probabilities.shape[0] * sum(c - 1 for c in self.n_levels))

    def sample(
        self, params: CategoricalParams, counts: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        """``counts[k]`` rows of codes from each component (inverse CDF), in order."""
        probabilities = np.repeat(params.probabilities, np.asarray(counts, dtype=int), axis=0)
        cumulative = np.cumsum(probabilities, axis=2)
        uniform = rng.uniform(size=probabilities.shape[:2]) * cumulative[:, :, -1]
        codes = (uniform[:, :, None] >= cumulative).sum(axis=2)
        return np.minimum(codes, np.asarray(self.n_levels) - 1).astype(np.float64)

    def validate(self, X: Array, labels: Sequence[str]) -> None:
        """Refuse codes that are not integers in ``[0, C_j)``, naming column and row."""
        for j, count in enumerate(self.n_levels):
            check_support(
                X[:, j : j + 1],
                lambda xp, x, count=count: (x >= 0) & (x < count) & (x == xp.floor(x)),
                f"integer codes 0 to {count - 1}", [labels[j]], "Categorical", allow_nan=True,
            )


# ---------------------------------------------------------------------- levels and codes
def _is_number(value) -> bool:
    return isinstance(value, numbers.Number | np.bool_) and not isinstance(value, complex)


def _is_missing(value) -> bool:
    return value is None or (_is_number(value) and np.isnan(float(value)))


def _text(value) -> str:
    """The text a level is compared by when a model has text levels: numbers that are
    integers print without a decimal point (``1``, ``1.0`` and ``True`` are all ``'1'``)."""
    if isinstance(value, str):
        return value
    if _is_number(value):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def _refuse(label: str, row: int, value) -> ValueError:
    """The error for an infinite value (never a level) or a missing one (not accepted)."""
    if _is_number(value) and np.isinf(float(value)):
        return ValueError(
            f"Categorical column {label} holds {float(value)} (inf) at row {row}: a level is "
            "text or a finite number."
        )
    return ValueError(
        f"Categorical column {label} holds NaN (a missing value) at row {row}, and this "
        "estimator does not accept missing values. Remove or impute these rows first."
    )


def _check_cells(cells: list, label: str, *, allow_missing: bool) -> None:
    """Refuse infinite numbers and, unless allowed, missing values."""
    for row, value in enumerate(cells):
        infinite = _is_number(value) and np.isinf(float(value))
        if infinite or (not allow_missing and _is_missing(value)):
            raise _refuse(label, row, value)


def _check_numbers(values: np.ndarray, label: str, *, allow_missing: bool) -> None:
    """:func:`_check_cells` for a float64 array, vectorised."""
    bad = np.isinf(values) if allow_missing else ~np.isfinite(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise _refuse(label, row, values[row])


def learn_categories(
    columns: Sequence[np.ndarray], declared: Sequence[Sequence | None], labels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Levels of each column, as a padded array and the number of levels per column.

    Parameters
    ----------
    columns : sequence of 1-D arrays
        The values of each categorical column; ``None`` and NaN are missing.
    declared : sequence of (sequence or None)
        Levels declared for a column (a pandas ``category`` dtype), kept in their order;
        ``None`` for columns whose levels are the sorted distinct values.
    labels : sequence of str
        How messages name each column.

    Returns
    -------
    categories : ndarray of shape (J, C_max)
        Float64 (padded with NaN) when every level is a number, otherwise text (padded with
        ``''``; numbers written as by :func:`_text`).
    n_categories : ndarray of shape (J,)
        :math:`C_j`.

    Raises
    ------
    ValueError
        For an infinite value, or a column without any observed value.
    """
    per_column = []
    for values, levels, label in zip(columns, declared, labels, strict=True):
        if levels is None:
            cells = np.asarray(values, dtype=object).ravel().tolist()
            _check_cells(cells, label, allow_missing=True)
            present = [v for v in cells if not _is_missing(v)]
            if not present:
                raise ValueError(f"Categorical column {label} has no observed value.")
            if all(_is_number(v) for v in present):
                levels = list(np.unique(np.asarray(present, dtype=np.float64)))
            else:
                levels = sorted({_text(v) for v in present})
        per_column.append(list(levels))
    n_categories = np.array([len(levels) for levels in per_column], dtype=np.int64)
    width = int(n_categories.max())
    if all(_is_number(v) for levels in per_column for v in levels):
        categories = np.full((len(per_column), width), np.nan)
    else:
        per_column = [[_text(v) for v in levels] for levels in per_column]
        longest = max(len(v) for levels in per_column for v in levels)
        categories = np.full((len(per_column), width), "", dtype=f"<U{max(longest, 1)}")
    for j, levels in enumerate(per_column):
        categories[j, : len(levels)] = levels
    return categories, n_categories


def encode_categories(
    columns: Sequence[np.ndarray], categories: np.ndarray, n_categories: np.ndarray,
    labels: Sequence[str], *, allow_missing: bool,
) -> np.ndarray:
    """Codes of the values of each column, (n, J) float64 with NaN where missing.

    Raises
    ------
    ValueError
        For an infinite value, a missing value when ``allow_missing`` is false, or a value
        that is not a level seen at fit, naming the column, the row and the value.
    """
    numeric = categories.dtype.kind == "f"
    codes = np.empty((len(columns[0]) if columns else 0, len(columns)))
    for j, values in enumerate(columns):
        levels = categories[j, : n_categories[j]]
        values = np.asarray(values)
        if numeric and values.dtype.kind in "biuf":
            values = values.astype(np.float64).ravel()
            _check_numbers(values, labels[j], allow_missing=allow_missing)
            codes[:, j] = _numeric_codes(values, levels, labels[j])
        else:
            cells = values.ravel().tolist()
            _check_cells(cells, labels[j], allow_missing=allow_missing)
            codes[:, j] = _keyed_codes(cells, levels, numeric, labels[j])
    return codes


def _unknown_level(label: str, row: int, value, levels: np.ndarray) -> ValueError:
    known = ", ".join(repr(level) for level in levels.tolist())
    return ValueError(
        f"Categorical column {label} holds {value!r} at row {row}, a level not seen at fit "
        f"(known levels: {known})."
    )


def _numeric_codes(values: np.ndarray, levels: np.ndarray, label: str) -> np.ndarray:
    """Codes of numbers by binary search among the levels (NaN stays NaN)."""
    order = np.argsort(levels)
    ordered = levels[order]
    position = np.minimum(np.searchsorted(ordered, values), len(levels) - 1)
    missing = np.isnan(values)
    unknown = (ordered[position] != values) & ~missing
    if unknown.any():
        row = int(np.argmax(unknown))
        raise _unknown_level(label, row, values[row].item(), levels)
    return np.where(missing, np.nan, order[position])


def _keyed_codes(cells: list, levels: np.ndarray, numeric: bool, label: str) -> np.ndarray:
    """Codes of arbitrary values, looked up by number (numeric levels) or by text."""
    lookup = {(float(level) if numeric else str(level)): float(code)
              for code, level in enumerate(levels.tolist())}
    codes = np.empty(len(cells))
    for row, value in enumerate(cells):
        if _is_missing(value):
            codes[row] = np.nan
            continue
        key = (float(value) if _is_number(value) else value) if numeric else _text(value)
        code = lookup.get(key)
        if code is None:
            raise _unknown_level(label, row, value, levels)
        codes[row] = code
    return codes


def decode_categories(codes: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """The levels of (n, J) integer codes: float64 for numeric levels, else text."""
    codes = np.asarray(codes, dtype=np.int64)
    return categories[np.arange(codes.shape[1])[None, :], codes]
