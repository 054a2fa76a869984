r"""Mixtures of any component family, and of several families side by side.

:class:`MixtureModel` fits :math:`p(x) = \sum_k \pi_k \prod_g p_g(x_{C_g} \mid \theta_{gk})`:
the columns are split into groups :math:`C_g`, each modelled by a family (Gaussian for
continuous columns, categorical for categorical ones, Poisson for counts, ...), independent
given the component. With categorical columns only this is latent class analysis; with
mixed columns it clusters mixed data. :class:`FamilyMixture` is what it shares with
:class:`~emkit.BernoulliMixture` and :class:`~emkit.CategoricalMixture`: the columns'
families, the coding of categorical levels, validation of values per family, fitted
attributes named after the families' parameters, and a Dirichlet prior on the weights
(:class:`MAPMixture`).
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from scipy.special import rel_entr
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array

from emkit._backend import Array, as_backend, device_of, is_torch, namespace, to_numpy
from emkit.distributions.bernoulli import Bernoulli, BernoulliParams
from emkit.distributions.categorical import (
    Categorical,
    CategoricalParams,
    decode_categories,
    encode_categories,
    learn_categories,
)
from emkit.distributions.exponential import Exponential, ExponentialParams
from emkit.distributions.gamma import Gamma, GammaParams
from emkit.distributions.gaussian import Gaussian, GaussianParams
from emkit.distributions.lognormal import LogNormal
from emkit.distributions.multinomial import Multinomial, MultinomialParams
from emkit.distributions.poisson import Poisson, PoissonParams
from emkit.distributions.product import Product, ProductParams
from emkit.distributions.student_t import StudentT, StudentTParams
from emkit.em.mixture import Mixture, MixtureParams, MixtureStatistics
from emkit.executors.dask import is_dask_array
from emkit.models._mixture import BaseMixture, to_like, weighted_mean

__all__ = ["FAMILIES", "FamilyMixture", "KnownComponents", "MAPMixture", "MixtureModel"]

#: The family names accepted by ``MixtureModel(families=...)`` and their parameters.
FAMILIES: dict[str, type] = {
    "gaussian": GaussianParams,
    "student_t": StudentTParams,
    "lognormal": GaussianParams,
    "bernoulli": BernoulliParams,
    "categorical": CategoricalParams,
    "multinomial": MultinomialParams,
    "poisson": PoissonParams,
    "exponential": ExponentialParams,
    "gamma": GammaParams,
}

#: Families of location parameters: their columns are centred during fitting.
LOCATION_FAMILIES = frozenset({"gaussian", "student_t"})

#: Families whose values cannot be negative.
_NON_NEGATIVE = frozenset(
    {"lognormal", "gamma", "exponential", "poisson", "bernoulli", "multinomial"}
)

#: Families that do not marginalise missing values (they refuse NaN).
_NO_MISSING = frozenset({"multinomial"})

#: Families whose initial k-means sees the columns standardised (the others are 0/1).
_CONTINUOUS = frozenset({"gaussian", "student_t", "lognormal", "poisson", "exponential", "gamma"})


@dataclasses.dataclass(frozen=True)
class MAPMixture(Mixture):
    r"""A mixture with a symmetric Dirichlet prior on the weights.

    The M-step of the weights is the maximum a posteriori estimate under
    :math:`\mathrm{Dir}(c, \dots, c)` with :math:`c \ge 1`,

    .. math::

        \pi_k = \frac{N_k + c - 1}{N + K(c - 1)},

    which keeps every weight away from zero (:math:`c = 1` is maximum likelihood).
    Compared with :math:`\pi^*_k = N_k / N` it lowers Q by exactly
    :math:`N\,\mathrm{KL}(\pi^* \,\|\, \pi)`, which :meth:`regularization_gap` adds to the
    family's.
    """

    weight_concentration: float = 1.0

    def maximize(self, stats: MixtureStatistics) -> MixtureParams:
        """The family's M-step and the MAP weights."""
        params = super().maximize(stats)
        if self.weight_concentration == 1.0:
            return params
        pseudo = stats.resp_sum + (self.weight_concentration - 1.0)
        return MixtureParams(pseudo / pseudo.sum(), params.components)

    def regularization_gap(self, params: MixtureParams, stats: MixtureStatistics) -> float:
        r"""The family's gap plus :math:`\mathrm{KL}(\pi^* \,\|\, \pi)` per sample."""
        gap = super().regularization_gap(params, stats)
        if self.weight_concentration == 1.0:
            return gap
        best = stats.resp_sum / stats.resp_sum.sum()
        return gap + float(rel_entr(best, params.weights).sum())


@dataclasses.dataclass(frozen=True)
class KnownComponentsChunk:
    """The wrapped family's features of a chunk, and the known component of each row."""

    features: object
    known: Array


@dataclasses.dataclass(frozen=True)
class KnownComponents:
    r"""A family whose data carry, as a last column, the component of each row if known.

    :math:`\log p(x_n \mid z_n = k)` is the wrapped family's where the component is
    unknown (-1) or is :math:`k`, and :math:`-\infty` elsewhere: the E-step then gives a
    labelled row the responsibility 1 for its component and :math:`\log p(x_n, z_n = y_n)`
    as its log-likelihood, which is semi-supervised EM with nothing else changed. Everything
    but the log-densities is the wrapped family's, on the other columns.
    """

    family: object

    def prepare(self, params, like: Array, bias: np.ndarray | None = None):
        """The wrapped family's coefficients."""
        return self.family.prepare(params, like, bias)

    def features(self, X: Array, prepared) -> KnownComponentsChunk:
        """The wrapped family's features of all columns but the last, and the last."""
        return KnownComponentsChunk(self.family.features(X[:, :-1], prepared), X[:, -1])

    def log_prob(self, chunk: KnownComponentsChunk, prepared) -> Array:
        """The wrapped family's log-densities, :math:`-\\infty` off a known component."""
        xp = namespace(chunk.known)
        log_prob = self.family.log_prob(chunk.features, prepared)
        components = xp.arange(log_prob.shape[1], dtype=log_prob.dtype,
                               device=device_of(log_prob))
        known = chunk.known[:, None]
        excluded = (known >= 0) & (known != components[None, :])
        return xp.where(excluded, xp.full_like(log_prob, -np.inf), log_prob)

    def statistics(self, chunk: KnownComponentsChunk, resp: Array):
        """The wrapped family's statistics."""
        return self.family.statistics(chunk.features, resp)

    def maximize(self, stats):
        """The wrapped family's M-step."""
        return self.family.maximize(stats)

    def regularization_gap(self, params, stats) -> float:
        """The wrapped family's gap."""
        return self.family.regularization_gap(params, stats)

    def reseed(self, params, stats, component: int, point: np.ndarray):
        """The wrapped family's re-seeding on the point without its label."""
        return self.family.reseed(params, stats, component, point[:-1])

    def n_parameters(self, params) -> int:
        """The wrapped family's count."""
        return self.family.n_parameters(params)


# ---------------------------------------------------------------------- tabular input
class _Table:
    """Column access to a DataFrame, an array(-like) or a tensor, before validation."""

    def __init__(self, X) -> None:
        self.frame = X if hasattr(X, "iloc") and hasattr(X, "columns") else None
        self.tensor = X if is_torch(X) else None
        if self.frame is None and self.tensor is None:
            self.array = check_array(
                X, dtype=None, accept_sparse=False, ensure_all_finite=False, input_name="X"
            )
            if self.array.dtype == object:
                self.array = _tightened(self.array)
        source = self.frame if self.frame is not None else (
            self.tensor if self.tensor is not None else self.array
        )
        if len(source.shape) != 2 or min(source.shape) == 0:
            raise ValueError(
                f"Expected a 2D X with at least one sample and one feature, got shape "
                f"{tuple(source.shape)}: 0 feature(s) (shape={tuple(source.shape)}) while a "
                "minimum of 1 is required."
            )
        self.n_columns = int(source.shape[1])
        self.names = None if self.frame is None else list(self.frame.columns)

    def column(self, j: int) -> np.ndarray:
        """The values of column ``j`` (numbers as float64, anything else as objects)."""
        if self.frame is not None:
            series = self.frame.iloc[:, j]
            if series.dtype.kind in "biuf":
                return series.to_numpy(dtype=np.float64, na_value=np.nan)
            return series.to_numpy(dtype=object, na_value=None)
        if self.tensor is not None:
            return to_numpy(self.tensor[:, j], np.float64)
        return self.array[:, j]

    def label(self, j: int) -> str:
        """How messages name column ``j``: ``'colour' (column 2)`` or ``2``."""
        return str(j) if self.names is None else f"{self.names[j]!r} (column {j})"

    def declared_levels(self, j: int) -> list | None:
        """The categories of a pandas ``category`` column, in their order."""
        if self.frame is None:
            return None
        categories = getattr(getattr(self.frame.iloc[:, j], "cat", None), "categories", None)
        return None if categories is None else list(categories)

    def family(self, j: int) -> str:
        """The family chosen from the column's dtype: category or text → categorical,
        bool → bernoulli, integer → poisson, float → gaussian."""
        if self.frame is not None:
            dtype = self.frame.dtypes.iloc[j]
            kind = "O" if dtype.name in ("category", "string", "str") else dtype.kind
        elif self.tensor is not None:
            kind = to_numpy(self.tensor[:0, j]).dtype.kind
        else:
            kind = self.array.dtype.kind
            if kind == "O":
                kind = _tightened(self.array[:, j]).dtype.kind
        return {"b": "bernoulli", "i": "poisson", "u": "poisson", "f": "gaussian"}.get(
            kind, "categorical"
        )

    def replaced(self, columns: Sequence[int], values: np.ndarray):
        """The input with ``columns`` replaced by ``values`` (float64 codes)."""
        if self.frame is not None:
            frame = self.frame.copy(deep=False)
            for position, j in enumerate(columns):
                frame.isetitem(j, values[:, position])
            return frame
        if self.tensor is not None:
            import torch

            floating = self.tensor.dtype if self.tensor.is_floating_point() else torch.float64
            tensor = self.tensor.to(floating, copy=True)
            tensor[:, list(columns)] = as_backend(values, tensor)
            return tensor
        numeric = self.array.dtype.kind in "biuf"
        array = self.array.astype(np.float64 if numeric else object, copy=True)
        array[:, list(columns)] = values
        return array


def _tightened(values: np.ndarray) -> np.ndarray:
    """An object array as booleans, integers or floats when every value is one."""
    flat = [v for v in values.ravel().tolist() if v is not None]
    for kind, test in ((np.bool_, bool), (np.int64, int), (np.float64, float)):
        if flat and all(isinstance(v, test) for v in flat):
            if test is not float or len(flat) == values.size:
                return values.astype(kind)
    return values


# ---------------------------------------------------------------------- shared estimator
class FamilyMixture(BaseMixture):
    """Base of the mixtures of named families on groups of columns (not for direct use).

    A subclass says which family models which columns (``_learn_layout``, ``_groups``),
    builds each family with its options (``_make_family``) and names the fitted
    attributes (``_attribute``). Every family's parameters become fitted attributes, one
    per field of its parameter dataclass. Missing values (NaN, ``None`` in categorical
    columns) are accepted and marginalised by every family but the multinomial, which
    refuses them naming the column and the row.
    """

    _missing_values: ClassVar[bool] = True

    _parameter_constraints: ClassVar[dict] = {
        **BaseMixture._parameter_constraints,
        "weights_init": ["array-like", None],
        "weight_concentration": [Interval(Real, 1.0, None, closed="left")],
        "semi_supervised": ["boolean"],
    }

    # ------------------------------------------------------------------ for subclasses
    @abstractmethod
    def _groups(self) -> list[tuple[str, tuple[int, ...]]]:
        """Family name and column indices of every group (known once fitting started)."""

    @abstractmethod
    def _make_family(self, name: str):
        """The family ``name`` with this estimator's options."""

    @abstractmethod
    def _attribute(self, name: str, field: str) -> str:
        """The fitted attribute holding parameter ``field`` of family ``name``."""

    def _learn_layout(self, X) -> None:
        """Record, at fit, which family models which column (and categorical levels)."""

    def _categorical_columns(self) -> tuple[int, ...]:
        return tuple(c for name, columns in self._groups() if name == "categorical"
                     for c in columns)

    # ------------------------------------------------------------------ families
    def _family(self):
        groups = [(columns, self._make_family(name)) for name, columns in self._groups()]
        if len(groups) == 1:
            return groups[0][1]
        return Product(groups)

    def _model(self) -> MAPMixture:
        family = self._family()
        if getattr(self, "_known", None) is not None:
            family = KnownComponents(family)
        return MAPMixture(family, self.n_components, float(self.weight_concentration))

    def _online_options(self) -> dict[str, Any]:
        """Online EM with the M-step on statistics at the scale of the rows seen so far:
        the pseudo-counts ``alpha`` and the Dirichlet prior on the weights then weigh as in
        :meth:`fit` on those rows, not as much as all the data together."""
        return {"data_scale": True}

    def _data(self, X: Array, sample_weight: Array | None, origin: np.ndarray | None):
        """The data, with the known components as a last column while fitting with ``y``."""
        known = getattr(self, "_known", None)
        if known is None:
            return super()._data(X, sample_weight, origin)
        xp = namespace(X)
        augmented = xp.concat([X, as_backend(known[:, None], X)], axis=1)
        origin = None if origin is None else np.append(origin, 0.0)
        return super()._data(augmented, sample_weight, origin)

    def _parts(self, components) -> list:
        return list(components.parts) if isinstance(components, ProductParams) else [components]

    def _joined(self, parts: list):
        return parts[0] if len(parts) == 1 else ProductParams(tuple(parts))

    def _location_mask(self) -> np.ndarray:
        mask = np.zeros(self.n_features_in_, dtype=bool)
        for name, columns in self._groups():
            mask[list(columns)] = name in LOCATION_FAMILIES
        return mask

    def _labels(self) -> list[str]:
        """How messages name each column: ``'colour' (column 2)`` or ``2``."""
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return [str(j) for j in range(self.n_features_in_)]
        return [f"{name!r} (column {j})" for j, name in enumerate(names)]

    # ------------------------------------------------------------------ data
    def _encoded(self, X):
        """The input with categorical levels replaced by their codes."""
        columns = self._categorical_columns()
        if not columns:
            return X
        table = _Table(X)
        expected = getattr(self, "n_features_in_", table.n_columns)
        if table.n_columns != expected:
            raise ValueError(
                f"X has {table.n_columns} features, but {type(self).__name__} is expecting "
                f"{expected} features as input."
            )
        labels = [table.label(j) for j in columns]
        codes = encode_categories(
            [table.column(j) for j in columns], self.categories_, self.n_categories_, labels,
            allow_missing=self._missing_values,
        )
        return table.replaced(columns, codes)

    def _decoded(self, X: Array):
        """Codes of the categorical columns of ``X`` turned back into their levels (an
        object array when some levels are text); ``X`` as it is without such columns."""
        columns = list(self._categorical_columns())
        if not columns:
            return X
        X = to_numpy(X, np.float64).copy()
        levels = decode_categories(X[:, columns], self.categories_)
        if levels.dtype.kind != "f":
            X = X.astype(object)
        X[:, columns] = levels
        return X

    def _validate_input(self, X, *, reset: bool, purpose: str) -> Array:
        """The input with categorical levels coded, validated as by :class:`BaseMixture`,
        then checked against every family's support (naming the column and the row)."""
        checked = super()._validate_input(self._encoded(X), reset=reset, purpose=purpose)
        validate = getattr(self._family(), "validate", None)
        if validate is not None:
            validate(checked, self._labels())
        return checked

    def _known_components(self, y, n_samples: int) -> np.ndarray:
        """``y`` validated: one integer per row, a component or -1 (unknown)."""
        known = check_array(
            to_numpy(y) if is_torch(y) else y, ensure_2d=False, dtype=np.float64,
            input_name="y", ensure_all_finite=True,
        )
        if known.shape != (n_samples,):
            raise ValueError(
                f"y must have shape ({n_samples},) to match X, got {known.shape}."
            )
        bad = (known != np.round(known)) | (known < -1) | (known >= self.n_components)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"y holds the component of each row, 0 to {self.n_components - 1}, or -1 "
                f"where it is unknown; row {row} holds {known[row]!r}."
            )
        return known

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        r"""Estimate the parameters by EM.

        Values outside a column's family support (a Bernoulli column that is not 0/1, a
        negative count) are refused before any work, naming the column and the row.
        Otherwise as :meth:`emkit.GaussianMixture.fit`.

        With ``semi_supervised=True`` and ``y``, EM is semi-supervised: a row whose
        component is known keeps it (its
        responsibilities are fixed at one for that component), and only the other rows'
        are estimated. EM then maximises :math:`\sum_{\text{known}} \log p(x_n, z_n = y_n)
        + \sum_{\text{unknown}} \log p(x_n)`, which is what ``lower_bound_`` reports. The
        first M-step uses the labelled rows only when every component has one.

        Parameters
        ----------
        X : array-like, DataFrame or tensor of shape (n_samples, n_features)
        y : array-like of int of shape (n_samples,), default=None
            With ``semi_supervised=True``, the known component of each row, 0 to
            ``n_components - 1``, or -1 where it is unknown; otherwise ignored (as by every
            unsupervised scikit-learn estimator).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight equals repeating the row.

        Returns
        -------
        self
        """
        use_y = self.semi_supervised and y is not None
        if is_dask_array(X):
            if use_y:
                raise ValueError(
                    "semi-supervised fitting (semi_supervised=True with y) needs X in memory, "
                    "not a Dask array."
                )
            return self._fit_distributed(X, sample_weight)
        warm = self.warm_start and hasattr(self, "converged_")
        if not warm:
            self._learn_layout(X)
        X = self._validate_input(X, reset=not warm, purpose="fit")
        self._known = self._known_components(y, X.shape[0]) if use_y else None
        try:
            return self._fit(X, sample_weight)
        finally:
            self._known = None

    def _validate_batch(self, X, *, reset: bool):
        """A mini-batch of :meth:`partial_fit` or a chunk of :meth:`fit_chunks`, coded and
        checked as :meth:`fit`'s input; the first batch of a stream fixes the columns'
        families and categorical levels, later ones are coded as :meth:`predict`'s input."""
        if reset:
            self._learn_layout(X)
        return super()._validate_batch(X, reset=reset)

    def impute(self, X):
        r"""A copy of ``X`` with every missing value replaced given the row's observed
        values, as :meth:`BaseMixture.impute`: the conditional expectation
        :math:`\sum_k p(z_n = k \mid x_{n,o}) E[x_{nd} \mid x_{n,o}, z_n = k]` for
        numeric columns; for a categorical column the most probable level,
        :math:`\arg\max_c \sum_k p(z_n = k \mid x_{n,o})\, \theta_{kjc}`, returned as a
        level (an object array when some levels are text).
        """
        if is_dask_array(X) and self._categorical_columns():
            return self._blockwise(self.impute, X, X.shape[1], np.dtype(object))
        return self._decoded(super().impute(X))

    def sample(self, n_samples: int = 1):
        """Draw ``n_samples`` rows from the fitted mixture (categorical columns as their
        levels: an object array when some levels are text).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component of each row.
        """
        X, y = super().sample(n_samples)
        return self._decoded(X), y

    # ------------------------------------------------------------------ BaseMixture hooks
    def _origin(self, X: Array, sample_weight: Array | None) -> np.ndarray | None:
        mask = self._location_mask()
        if not mask.any():
            return None
        return np.where(mask, weighted_mean(X, sample_weight), 0.0)

    def _prediction_origin(self) -> np.ndarray | None:
        mask = self._location_mask()
        if not mask.any():
            return None
        origin = np.zeros(self.n_features_in_)
        weights = to_numpy(self.weights_, np.float64)
        for name, columns in self._groups():
            if name in LOCATION_FAMILIES:
                means = to_numpy(getattr(self, self._attribute(name, "means")), np.float64)
                origin[list(columns)] = weights @ means
        return origin

    def _row_width(self, n_features: int) -> int:
        K = self.n_components
        width = 2 * K
        for name, columns in self._groups():
            d = len(columns)
            if name in ("gaussian", "lognormal"):
                full = self.covariance_type == "full"
                width += K * (d + 2) if full else 2 * d + 2 + 2 * K
            elif name == "student_t":
                width += 3 * K * d
            elif name == "categorical":
                width += int(np.sum(self.n_categories_))
            else:
                width += d
        return width

    def _check_initial_values(self, n_features: int) -> None:
        self._initial_values = {}
        if self.weights_init is not None:
            self._initial_values["weights"] = checked_weights(
                self.weights_init, self.n_components
            )

    def _apply_initial_values(
        self, params: MixtureParams | None, origin: np.ndarray | None
    ) -> MixtureParams:
        weights = self._initial_values.get("weights")
        return MixtureParams(
            params.weights if weights is None else weights, params.components
        )

    def _public_view(
        self, params: MixtureParams, origin: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        view = {"weights_": params.weights}
        for (name, columns), part in zip(
            self._groups(), self._parts(params.components), strict=True
        ):
            for field in dataclasses.fields(part):
                value = getattr(part, field.name)
                if name in LOCATION_FAMILIES and field.name == "means" and origin is not None:
                    value = value + origin[list(columns)]
                view[self._attribute(name, field.name)] = value
        return view

    def _set_fitted(self, params: MixtureParams, origin: np.ndarray | None, like: Array) -> None:
        for name, value in self._public_view(params, origin).items():
            setattr(self, name, to_like(value, like))

    def _fitted_params(self, origin: np.ndarray | None) -> MixtureParams:
        parts = []
        for name, columns in self._groups():
            values = {}
            for field in dataclasses.fields(FAMILIES[name]):
                value = to_numpy(getattr(self, self._attribute(name, field.name)), np.float64)
                if name in LOCATION_FAMILIES and field.name == "means" and origin is not None:
                    value = value - origin[list(columns)]
                values[field.name] = value
            parts.append(FAMILIES[name](**values))
        return MixtureParams(to_numpy(self.weights_, np.float64), self._joined(parts))

    def _initial_responsibilities(self, X, sample_weight, random_state):
        """As :class:`BaseMixture`, with k-means run on an embedding of the columns that
        suits their families: categorical columns one-hot, positive skewed columns
        (log-normal, gamma) as logs, counts and continuous columns standardised."""
        if self.init_params == "random":
            resp_of = super()._initial_responsibilities(X, sample_weight, random_state)
        else:
            resp_of = super()._initial_responsibilities(
                self._embedding(X), sample_weight, random_state
            )
        known = getattr(self, "_known", None)
        if known is None:
            return resp_of
        components = np.arange(self.n_components)
        every_component = bool(np.isin(components, known).all())

        def labelled(start, rows):
            block = known[start : start + rows.shape[0]]
            resp = to_numpy(resp_of(start, rows), np.float64)
            if every_component:
                resp = np.zeros_like(resp)
            resp = np.where((block >= 0)[:, None], block[:, None] == components, resp)
            return as_backend(resp, like=rows)

        return labelled

    def _embedding(self, X) -> np.ndarray:
        data = to_numpy(X, np.float64)
        blocks = []
        for name, columns in self._groups():
            block = data[:, list(columns)]
            if name == "categorical":
                levels = np.arange(int(np.max(self.n_categories_)))
                blocks.extend(
                    (block[:, [j]] == levels[None, :count]).astype(np.float64)
                    for j, count in enumerate(self.n_categories_)
                )
                continue
            if name in ("lognormal", "gamma"):
                block = np.log(block)
            if name in _CONTINUOUS:
                mean = np.nanmean(block, axis=0)
                scale = np.nanstd(block, axis=0)
                block = (block - mean) / np.where(scale > 0, scale, 1.0)
            blocks.append(np.where(np.isnan(block), 0.0, block))
        return np.hstack(blocks)


def checked_weights(value, n_components: int) -> np.ndarray:
    """``weights_init`` validated: shape (K,), in [0, 1], summing to one."""
    weights = check_array(
        value, dtype=np.float64, ensure_2d=False, input_name="weights_init",
        ensure_all_finite=True,
    )
    if weights.shape != (n_components,):
        raise ValueError(
            f"The parameter 'weights_init' should have the shape ({n_components},), but got "
            f"{weights.shape}."
        )
    if (weights < 0).any() or (weights > 1).any():
        raise ValueError(
            "The parameter 'weights_init' should be in the range [0, 1], but got min value "
            f"{weights.min():.5f}, max value {weights.max():.5f}."
        )
    if not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-6):
        raise ValueError(
            "The parameter 'weights_init' should be normalized, but got sum(weights) = "
            f"{weights.sum():.5f}."
        )
    return weights / weights.sum()


def checked_parameter(value, name: str, shape: tuple, low: float, high: float) -> np.ndarray:
    """A user-given parameter array of ``shape`` with entries in the open ``(low, high)``."""
    array = check_array(
        value, dtype=np.float64, ensure_2d=False, allow_nd=True, input_name=name,
        ensure_all_finite=True,
    )
    if array.shape != shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape {shape}, but got {array.shape}."
        )
    if (array <= low).any() or (array >= high).any():
        raise ValueError(
            f"The parameter '{name}' should lie strictly between {low:g} and {high:g}, but got "
            f"min value {array.min():.5g}, max value {array.max():.5g}."
        )
    return array


# ---------------------------------------------------------------------- the estimator
class MixtureModel(FamilyMixture):
    r"""Mixture of independent families on groups of columns, fitted by EM.

    .. math::

        p(x) = \sum_k \pi_k \prod_g p_g(x_{C_g} \mid \theta_{gk}),

    with, for every group of columns :math:`C_g`, one of the families below. The E-step adds
    the groups' log-densities; the M-step is each family's own closed form (see
    :mod:`emkit.distributions`). Categorical columns only give latent class analysis; mixed
    columns give clustering of mixed data. Missing values (NaN, or ``None`` in categorical
    columns) are marginalised by every family but ``multinomial`` (Gaussian, Student-t and
    log-normal groups through the conditional distribution of the missing entries);
    :meth:`impute` fills them.

    ================ ============================= ==========================================
    family           columns                       fitted attributes
    ================ ============================= ==========================================
    ``gaussian``     real                          ``gaussian_means_``, ``_covariances_``,
                                                   ``_precisions_cholesky_``
    ``student_t``    real, heavy tails             ``student_t_means_``, ``_covariances_``,
                                                   ``_precisions_cholesky_``, ``_dofs_``
    ``lognormal``    positive                      ``lognormal_means_``, ... (of the logs)
    ``gamma``        positive                      ``gamma_shapes_``, ``gamma_rates_``
    ``exponential``  non-negative                  ``exponential_rates_``
    ``poisson``      non-negative integers         ``poisson_rates_``
    ``bernoulli``    0 or 1                        ``bernoulli_means_``
    ``multinomial``  a vector of counts            ``multinomial_probabilities_``,
                                                   ``multinomial_trials_``
    ``categorical``  levels (text or numbers)      ``categorical_probabilities_``
                                                   (K, J, C_max), with ``categories_``
    ================ ============================= ==========================================

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    families : 'auto', str or dict, default='auto'
        Which family models which columns. A dict maps family names to columns (positions,
        or names when X is a DataFrame), e.g. ``{'gaussian': [0, 1], 'categorical':
        ['colour'], 'poisson': ['visits']}``; columns it does not name, and all columns for
        ``'auto'``, are chosen from their dtype: category, text or object → categorical,
        bool → bernoulli, integer → poisson, float → gaussian. A family name alone models
        every column with that family.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='diag'
        Covariance structure of the Gaussian and log-normal groups (``'full'`` or
        ``'diag'`` for the Student-t group).
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance (Gaussian, log-normal, Student-t).
    alpha : float, default=1e-6
        Positive pseudo-count of the conjugate priors that keep the discrete families'
        probabilities and the rates inside their domain (MAP estimates): α ones and α zeros
        per Bernoulli column, α per level of a categorical or multinomial column, α events in
        α observations for a Poisson rate, α observations totalling α for an exponential rate.
    weight_concentration : float, default=1.0
        Concentration :math:`c \ge 1` of a symmetric Dirichlet prior on the weights (MAP);
        1 is maximum likelihood.
    semi_supervised : bool, default=False
        Whether :meth:`fit`'s ``y`` gives the known component of some rows (-1 for the
        others): their responsibilities are then fixed (semi-supervised EM).
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood per sample.
    max_iter : int, default=100
    n_init : int, default=1
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        As :class:`~emkit.GaussianMixture`; k-means runs on the columns embedded by family
        (categorical one-hot, continuous and counts standardised, positive skewed as logs).
    weights_init : array-like of shape (n_components,), default=None
    random_state, warm_start, verbose, verbose_interval, chunk_size, n_jobs, callbacks, monotonic,
    algorithm, learning_decay, learning_offset
        As :class:`~emkit.GaussianMixture`.

    Attributes
    ----------
    weights_ : array of shape (n_components,)
    column_families_ : ndarray of str, shape (n_features,)
        The family of every column.
    categories_ : ndarray of shape (n_categorical, max levels)
        The levels of each categorical column (in the order of the columns): float64
        padded with NaN when all are numbers, else text padded with ''. Defined with
        categorical columns only.
    n_categories_ : ndarray of int, shape (n_categorical,)
    converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_, feature_names_in_
        As :class:`~emkit.GaussianMixture`.

    The parameters of each family are the attributes in the table above, with one row per
    component; columns follow the group's columns in increasing order. Fitted arrays are
    float64, in the namespace and on the device of the training data.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from emkit import MixtureModel
    >>> rng = np.random.default_rng(0)
    >>> z = rng.integers(0, 2, 500)
    >>> frame = pd.DataFrame({
    ...     "height": rng.normal(np.where(z, 180.0, 160.0), 5.0),
    ...     "colour": np.where(rng.random(500) < np.where(z, 0.9, 0.2), "red", "blue"),
    ...     "visits": rng.poisson(np.where(z, 1.0, 6.0)),
    ... })
    >>> model = MixtureModel(2, random_state=0).fit(frame)
    >>> model.column_families_.tolist()
    ['gaussian', 'categorical', 'poisson']
    >>> np.sort(model.poisson_rates_.ravel()).round(1)
    array([1. , 5.8])
    """

    _parameter_constraints: ClassVar[dict] = {
        **FamilyMixture._parameter_constraints,
        "families": [str, dict],
        "covariance_type": [StrOptions({"full", "tied", "diag", "spherical"})],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "alpha": [Interval(Real, 0.0, None, closed="neither")],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        families="auto",
        covariance_type: str = "diag",
        reg_covar: float = 1e-6,
        alpha: float = 1e-6,
        weight_concentration: float = 1.0,
        semi_supervised: bool = False,
        tol: float = 1e-3,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init=None,
        random_state=None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        chunk_size: int | None = None,
        n_jobs: int | None = None,
        callbacks=None,
        monotonic: str = "warn",
        algorithm="em",
        learning_decay: float = 0.7,
        learning_offset: float = 10.0,
    ) -> None:
        self.n_components = n_components
        self.families = families
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.alpha = alpha
        self.weight_concentration = weight_concentration
        self.semi_supervised = semi_supervised
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.callbacks = callbacks
        self.monotonic = monotonic
        self.algorithm = algorithm
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.positive_only = (
            isinstance(self.families, str) and self.families in _NON_NEGATIVE
        )
        named = {self.families} if isinstance(self.families, str) else set(self.families)
        tags.input_tags.allow_nan = not named & _NO_MISSING
        return tags

    # ------------------------------------------------------------------ layout
    def _learn_layout(self, X) -> None:
        table = _Table(X)
        families = self._resolve_families(table)
        if "student_t" in families and self.covariance_type not in ("full", "diag"):
            raise ValueError(
                "Student-t columns need covariance_type='full' or 'diag', got "
                f"{self.covariance_type!r}."
            )
        self.column_families_ = np.array(families, dtype=object)
        categorical = [j for j, name in enumerate(families) if name == "categorical"]
        for stale in ("categories_", "n_categories_"):
            if hasattr(self, stale):
                delattr(self, stale)
        if categorical:
            self.categories_, self.n_categories_ = learn_categories(
                [table.column(j) for j in categorical],
                [table.declared_levels(j) for j in categorical],
                [table.label(j) for j in categorical],
            )

    def _resolve_families(self, table: _Table) -> list[str]:
        spec = self.families
        if isinstance(spec, str):
            if spec == "auto":
                return [table.family(j) for j in range(table.n_columns)]
            _check_family_name(spec)
            return [spec] * table.n_columns
        families: list[str | None] = [None] * table.n_columns
        for name, columns in spec.items():
            _check_family_name(name)
            if isinstance(columns, str | Integral):
                columns = [columns]
            for column in columns:
                j = _column_index(column, table)
                if families[j] is not None:
                    raise ValueError(
                        f"Column {column!r} is given to two families, {families[j]!r} and "
                        f"{name!r}."
                    )
                families[j] = name
        return [
            table.family(j) if name is None else name for j, name in enumerate(families)
        ]

    def _groups(self) -> list[tuple[str, tuple[int, ...]]]:
        families = self.column_families_.tolist()
        order = list(dict.fromkeys(families))
        return [
            (name, tuple(j for j, family in enumerate(families) if family == name))
            for name in order
        ]

    def _make_family(self, name: str):
        reg_covar, alpha = float(self.reg_covar), float(self.alpha)
        if name == "gaussian":
            return Gaussian(self.covariance_type, reg_covar)
        if name == "lognormal":
            return LogNormal(self.covariance_type, reg_covar)
        if name == "student_t":
            return StudentT(self.covariance_type, reg_covar)
        if name == "categorical":
            return Categorical(tuple(int(c) for c in self.n_categories_), alpha)
        if name == "bernoulli":
            return Bernoulli(alpha)
        if name == "multinomial":
            return Multinomial(alpha)
        if name == "poisson":
            return Poisson(alpha, alpha)
        if name == "exponential":
            return Exponential(alpha, alpha)
        return Gamma()

    def _attribute(self, name: str, field: str) -> str:
        return f"{name}_{field}_"


def _check_family_name(name) -> None:
    if name not in FAMILIES:
        raise ValueError(
            f"Unknown family {name!r} in 'families'; choose among {', '.join(FAMILIES)}."
        )


def _column_index(column, table: _Table) -> int:
    """Position of ``column`` (a position, or a name when the input has names)."""
    if isinstance(column, Integral) and not isinstance(column, bool):
        if not -table.n_columns <= column < table.n_columns:
            raise ValueError(
                f"Column {column} in 'families' is out of range for X with "
                f"{table.n_columns} columns."
            )
        return int(column) % table.n_columns
    if table.names is None or column not in table.names:
        known = "" if table.names is None else f" (columns: {table.names})"
        raise ValueError(f"Column {column!r} in 'families' is not a column of X{known}.")
    return table.names.index(column)

