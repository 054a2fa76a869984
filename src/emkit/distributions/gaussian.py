r"""Multivariate Gaussian components with four covariance structures.

For component :math:`k` with mean :math:`\mu_k` and precision Cholesky factor :math:`U_k`
(:math:`\Sigma_k^{-1} = U_k U_k^\top`),

.. math::

    \log \mathcal N(x \mid \mu_k, \Sigma_k)
      = -\tfrac12 \left(D \log 2\pi + \lVert (x - \mu_k)^\top U_k \rVert^2\right)
        + \sum_d \log (U_k)_{dd}.

The sufficient statistics are :math:`N_k = \sum_n \gamma_{nk}`,
:math:`S_k = \sum_n \gamma_{nk} x_n` and the second moments
:math:`Q_k = \sum_n \gamma_{nk} x_n x_n^\top` (only the diagonal for ``'diag'``, only the trace
for ``'spherical'``, only :math:`\sum_n x_n x_n^\top` for ``'tied'``); the M-step is the
closed form of Bishop (2006), eqs. 9.24–9.27,

.. math::

    \mu_k = S_k / N_k, \qquad \Sigma_k = Q_k / N_k - \mu_k \mu_k^\top + \epsilon I,

with the regulariser :math:`\epsilon` = ``reg_covar`` that keeps each covariance away from
the singularities of the likelihood (a component collapsing on one point). Data reach this
module centred on their mean (see :mod:`emkit.executors`), so the second moments do not
cancel catastrophically for data far from the origin.

Every array operation goes through the array-API namespace of the data, so the same code
runs on NumPy and on PyTorch tensors (CPU or CUDA). The E-step has two paths, chosen for each
pass from the current parameters:

* **expanded** (fast): the log-density is linear in the features
  :math:`T(x) = [x, 1, \operatorname{vech}(x x^\top)]` (or :math:`x^2`, or
  :math:`\lVert x \rVert^2`), so a chunk costs one matrix product for the log-densities of
  all components and one for all the statistics. Expanding
  :math:`(x - \mu)^\top P (x - \mu)` loses about :math:`\log_{10} \kappa` digits, with
  :math:`\kappa = \max_k \lVert \mu_k \rVert^2 \lambda_{\max}(\Sigma_k^{-1})` the
  squared distance, in standard deviations, from the data's centre to the farthest component;
* **residual** (exact): the residuals :math:`x - \mu_k` of every component, whitened by
  :math:`U_k` for the log-density, and statistics taken about the current means (two-pass
  centred sums), used when the expanded path's rounding error :math:`\varepsilon\kappa`
  would exceed :data:`EXPANDED_MAX_ERROR` for the data's dtype.

Either way memory is bounded by the chunk: (chunk × K × D) at most.

Missing entries (NaN) are marginalised, never imputed: a row with missing entries
contributes the density of its observed entries, and its statistics are expected ones under
the conditional distribution of the missing entries (Ghahramani and Jordan 1994), see
:mod:`emkit.distributions.gaussian_missing` (memory: chunk × K × D² at most for full
covariances). Rows without missing entries take the paths above unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar, Literal

import numpy as np
from scipy.linalg import lapack

from emkit._backend import Array, as_backend, device_of, namespace
from emkit.distributions._base import Statistics, reference
from emkit.distributions.gaussian_missing import (
    PartialChunk,
    conditional_sums,
    fill_missing,
    missing_rows,
    normal_log_prob,
    pattern_totals,
    split_chunk,
)
from emkit.distributions.product import has_missing

__all__ = ["COVARIANCE_TYPES", "Gaussian", "GaussianParams", "GaussianStatistics"]

CovarianceType = Literal["full", "tied", "diag", "spherical"]
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


class SingularCovarianceError(ValueError):
    """A component's covariance is not positive definite, even after regularisation."""


@dataclasses.dataclass(frozen=True)
class GaussianParams:
    """Parameters of K Gaussian components (float64, host memory).

    Shapes follow scikit-learn: ``means`` (K, D); ``covariances`` and
    ``precisions_cholesky`` (K, D, D) for ``'full'``, (D, D) for ``'tied'``, (K, D) for
    ``'diag'``, (K,) for ``'spherical'``.
    """

    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray


def precisions_from_cholesky(precisions_cholesky: np.ndarray, kind: str) -> np.ndarray:
    r"""Precisions :math:`\Lambda_k = U_k U_k^\top` from their upper factors, in the shapes
    of scikit-learn's ``precisions_``: (K, D, D) for ``'full'``, (D, D) for ``'tied'``,
    (K, D) for ``'diag'`` and (K,) for ``'spherical'`` (the factors' squares)."""
    if kind == "full":
        return precisions_cholesky @ precisions_cholesky.transpose(0, 2, 1)
    if kind == "tied":
        return precisions_cholesky @ precisions_cholesky.T
    return precisions_cholesky**2


@dataclasses.dataclass(frozen=True)
class GaussianStatistics(Statistics):
    r"""Responsibility-weighted sums about a reference point :math:`c_k` per component.

    :math:`N_k = \sum_n \gamma_{nk}`, :math:`S_k = \sum_n \gamma_{nk}(x_n - c_k)` and
    :math:`Q_k = \sum_n \gamma_{nk}(x_n - c_k)(x_n - c_k)^\top` — (K, D, D) for ``'full'``
    and ``'tied'``, its diagonal (K, D) for ``'diag'``, its trace (K,) for ``'spherical'``.
    Sums about different references add after moving one onto the other (parallel axes).
    For rows with missing entries the sums are expectations given the observed entries, and
    ``entropy`` (K,) is :math:`\sum_n \gamma_{nk} H[p(x_{n,m} \mid x_{n,o}, z_n = k)]`,
    the entropy of the missing entries, which only the value of Q needs (zero without
    missing entries; see :mod:`emkit.distributions.gaussian_missing`).
    """

    resp_sum: Array
    sum_x: Array
    sum_xx: Array
    shift: Array = reference()
    entropy: Array | None = None

    def __post_init__(self) -> None:
        if self.entropy is None:
            object.__setattr__(self, "entropy", namespace(self.resp_sum).zeros_like(self.resp_sum))

    def aligned(self, other: GaussianStatistics) -> GaussianStatistics:
        xp = namespace(self.shift)
        if bool(xp.all(self.shift == other.shift)):
            return other
        return other.about(self.shift)

    def about(self, shift: Array) -> GaussianStatistics:
        r"""The same sums about ``shift``: with :math:`\delta = c - c'`,
        :math:`S' = S + N\delta`, :math:`Q' = Q + \delta S^\top + S \delta^\top +
        N \delta\delta^\top`."""
        xp = namespace(self.shift)
        delta = self.shift - shift
        n = self.resp_sum[:, None]
        sum_x = self.sum_x + n * delta
        if self.sum_xx.ndim == 3:
            cross = delta[:, :, None] * self.sum_x[:, None, :]
            sum_xx = (
                self.sum_xx + cross + xp.permute_dims(cross, (0, 2, 1))
                + n[:, :, None] * delta[:, :, None] * delta[:, None, :]
            )
        elif self.sum_xx.ndim == 2:
            sum_xx = self.sum_xx + 2.0 * delta * self.sum_x + n * delta * delta
        else:
            sum_xx = (
                self.sum_xx + 2.0 * xp.sum(delta * self.sum_x, axis=1)
                + self.resp_sum * xp.sum(delta * delta, axis=1)
            )
        return GaussianStatistics(self.resp_sum, sum_x, sum_xx, shift, self.entropy)


@dataclasses.dataclass(frozen=True)
class ResidualCoefficients:
    """Residual path: the means, whitening factors and constants of some components."""

    means: Array
    factors: Array
    constant: Array
    index: Array


@dataclasses.dataclass(frozen=True)
class GaussianCoefficients:
    """E-step coefficients: the expanded path's (K, F) matrix for every component (``None``
    when all take the residual path), the residual path's for the components it serves
    (``None`` when none does), and for rows with missing entries the parameters and the
    bias (K,) themselves (float64, host)."""

    expanded: Array | None
    residual: ResidualCoefficients | None
    params: GaussianParams
    bias: np.ndarray


@dataclasses.dataclass(frozen=True)
class ResidualChunk:
    """Residuals ``x - mu_k`` of a chunk, (K', n, D), for the components in ``index``."""

    residuals: Array
    means: Array
    index: Array


@dataclasses.dataclass(frozen=True)
class GaussianChunk:
    """A chunk as the E-step needs it: features ``[x, 1, quadratic terms]`` (F, n) for the
    expanded path, residuals for the components on the residual path."""

    features: Array | None
    residual: ResidualChunk | None
    n_features: int


_TINY = 10 * np.finfo(np.float64).eps

#: Largest rounding error :math:`\varepsilon\kappa` accepted from the expanded E-step, per
#: dtype (:math:`\varepsilon` its machine epsilon): beyond it the residual path is used. In
#: float64 that is :math:`\kappa \le 4.5\cdot10^4`, and log-densities keep about 11
#: significant digits; in float32, :math:`\kappa \le 84`.
EXPANDED_MAX_ERROR = {"float64": 1e-11, "float32": 1e-5}


def _precision_cholesky(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    r"""Upper factor :math:`U` with :math:`U U^\top = \Sigma^{-1}`, naming a failing component.

    :math:`U = L^{-\top}` for the Cholesky factor :math:`\Sigma = L L^\top`, as scikit-learn.
    """
    if covariance_type in ("full", "tied"):
        batch = covariances[None] if covariance_type == "tied" else covariances
        try:
            chol = np.linalg.cholesky(batch)
        except np.linalg.LinAlgError:
            for k, cov in enumerate(batch):
                try:
                    np.linalg.cholesky(cov)
                except np.linalg.LinAlgError:
                    raise _singular_error(k, covariance_type) from None
            raise
        factors = np.empty_like(batch)
        for k, lower in enumerate(chol):
            inverse, info = lapack.dtrtri(lower, lower=1)
            if info != 0:
                raise _singular_error(k, covariance_type)
            factors[k] = inverse.T
        return factors[0] if covariance_type == "tied" else factors
    flat = covariances.reshape(covariances.shape[0], -1)
    bad = np.flatnonzero((flat <= 0.0).any(axis=1))
    if bad.size:
        raise _singular_error(int(bad[0]), covariance_type)
    return 1.0 / np.sqrt(covariances)


def _singular_error(component: int, covariance_type: str) -> SingularCovarianceError:
    which = "the shared covariance" if covariance_type == "tied" else f"component {component}"
    return SingularCovarianceError(
        f"Fitting failed: {which} has an ill-defined covariance (not positive definite), "
        "typically because it collapsed on a single point or on a subspace. Remedies: increase "
        "reg_covar, decrease n_components, use covariance_type='diag' or 'spherical', remove "
        "duplicated or constant columns, or scale the input data."
    )


@dataclasses.dataclass(frozen=True)
class Gaussian:
    """Family of multivariate Gaussian components.

    Parameters
    ----------
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
        Each component has its own general covariance (``'full'``), all components share
        one (``'tied'``), each has a diagonal one (``'diag'``) or a multiple of the identity
        (``'spherical'``).
    reg_covar : float
        Non-negative regulariser :math:`\\epsilon` added to the diagonal of every covariance.
    """

    covariance_type: CovarianceType = "full"
    reg_covar: float = 1e-6

    # ------------------------------------------------------------------ E-step
    def conditions(self, params: GaussianParams) -> np.ndarray:
        r""":math:`\kappa_k = \lVert\mu_k\rVert^2 \lambda_{\max}(\Sigma_k^{-1})` per
        component (means relative to the data's centre): the expanded E-step loses about
        :math:`\log_{10}\kappa_k` digits of component k's log-densities."""
        covariances = params.covariances
        if self.covariance_type in ("full", "tied"):
            smallest = np.linalg.eigvalsh(covariances)[..., 0]
        elif self.covariance_type == "diag":
            smallest = covariances.min(axis=1)
        else:
            smallest = covariances
        return (params.means**2).sum(axis=1) / np.broadcast_to(smallest, len(params.means))

    def prepare(
        self, params: GaussianParams, like: Array, bias: np.ndarray | None = None
    ) -> GaussianCoefficients:
        r"""Coefficients of the E-step, on the device and in the dtype of ``like``.

        With :math:`P_k = U_k U_k^\top`,
        :math:`\log \mathcal N(x \mid \mu_k, \Sigma_k) = -\tfrac12 x^\top P_k x +
        \mu_k^\top P_k x + c_k`, with :math:`c_k = -\tfrac12(D\log 2\pi +
        \mu_k^\top P_k \mu_k) + \log|U_k|` plus ``bias``. Components whose expanded
        log-densities would carry a rounding error above :data:`EXPANDED_MAX_ERROR` take the
        residual path; the others the expanded one.
        """
        means, prec_chol = params.means, params.precisions_cholesky
        n_components, n_features = means.shape
        kind = self.covariance_type
        if kind in ("full", "tied"):
            factors = prec_chol if kind == "full" else prec_chol[None]
            log_det = np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
        else:
            factors = prec_chol if kind == "diag" else prec_chol[:, None]
            log_det = np.log(factors).sum(axis=1) * (n_features if kind == "spherical" else 1)
        log_det = np.broadcast_to(log_det, (n_components,))
        constant = log_det - 0.5 * n_features * np.log(2 * np.pi)
        bias = np.zeros(n_components) if bias is None else np.asarray(bias, dtype=np.float64)
        constant = constant + bias
        dtype = "float32" if str(like.dtype).endswith("float32") else "float64"
        limit = EXPANDED_MAX_ERROR[dtype] / float(np.finfo(dtype).eps)
        exact = np.flatnonzero(self.conditions(params) > limit)
        residual = None
        if exact.size:
            residual = ResidualCoefficients(
                as_backend(means[exact], like),
                as_backend(factors if kind == "tied" else factors[exact], like),
                as_backend(constant[exact], like),
                as_backend(exact, like, dtype=_int(like)),
            )
            if exact.size == n_components:
                return GaussianCoefficients(None, residual, params, bias)
        if kind in ("full", "tied"):
            precisions = np.broadcast_to(
                factors @ factors.transpose(0, 2, 1), (n_components, n_features, n_features)
            )
            rows, cols = np.triu_indices(n_features)
            quadratic = -0.5 * precisions[:, rows, cols] * np.where(rows == cols, 1.0, 2.0)
            linear = np.einsum("kde,ke->kd", precisions, means)
        else:
            precisions = np.broadcast_to(factors**2, (n_components, factors.shape[1]))
            quadratic = -0.5 * precisions
            linear = precisions * means
        mahalanobis = (linear * means).sum(axis=1)
        coef = np.concatenate(
            [linear, (constant - 0.5 * mahalanobis)[:, None], quadratic], axis=1
        )
        return GaussianCoefficients(as_backend(coef, like), residual, params, bias)

    def features(
        self, X: Array, prepared: GaussianCoefficients | None
    ) -> GaussianChunk | PartialChunk:
        """Features ``[x, 1, quadratic terms]`` of the chunk for the expanded path, and
        residuals for the components on the residual path; when some rows have missing
        entries (NaN), those of the complete rows and the marginal densities and conditional
        expectations of the others (:func:`~emkit.distributions.gaussian_missing.missing_rows`).
        """
        if has_missing(X):
            return self._partial_features(X, prepared)
        residual = None if prepared is None else prepared.residual
        if residual is not None:
            residual = ResidualChunk(
                X[None, :, :] - residual.means[:, None, :], residual.means, residual.index
            )
        if prepared is not None and prepared.expanded is None:
            return GaussianChunk(None, residual, X.shape[1])
        return GaussianChunk(self._expanded_features(X), residual, X.shape[1])

    def _partial_features(
        self, X: Array, prepared: GaussianCoefficients | None
    ) -> PartialChunk:
        """Split a chunk with missing entries into complete and incomplete rows."""
        return split_chunk(
            X, prepared, lambda rows: self.features(rows, prepared),
            lambda rows, index: missing_rows(
                rows, index, prepared.params.means, prepared.params.covariances,
                self.covariance_type,
            ),
        )

    def _expanded_features(self, X: Array) -> Array:
        """``[x, 1, quadratic terms]``, one row per feature, (F, n)."""
        xp = namespace(X)
        n, n_features = X.shape
        kind = self.covariance_type
        n_quadratic = {
            "full": n_features * (n_features + 1) // 2,
            "tied": n_features * (n_features + 1) // 2,
            "diag": n_features,
            "spherical": 1,
        }[kind]
        # One row per feature: row-wise products then read contiguous memory.
        features = xp.empty(
            (n_features + 1 + n_quadratic, n), dtype=X.dtype, device=device_of(X)
        )
        features[:n_features, :] = xp.permute_dims(X, (1, 0))
        features[n_features, :] = 1.0
        rows = features[:n_features, :]
        if kind in ("full", "tied"):
            start = n_features + 1
            for i in range(n_features):
                stop = start + n_features - i
                features[start:stop, :] = rows[i : i + 1, :] * rows[i:, :]
                start = stop
        elif kind == "diag":
            features[n_features + 1 :, :] = rows * rows
        else:
            features[n_features + 1, :] = xp.sum(rows * rows, axis=0)
        return features

    def log_prob(
        self, chunk: GaussianChunk | PartialChunk, prepared: GaussianCoefficients
    ) -> Array:
        r""":math:`\log \mathcal N(x_n \mid \mu_k, \Sigma_k)` + bias, shape (n, K); for a
        row with missing entries the density of its observed entries,
        :math:`\log \mathcal N(x_{n,o} \mid \mu_{k,o}, \Sigma_{k,oo})` + bias.

        The result is the transpose of a (K, n) array, so that reductions over components
        run along contiguous memory.
        """
        if isinstance(chunk, PartialChunk):
            return chunk.assemble(
                normal_log_prob(chunk.missing, prepared.bias),
                lambda observed: self.log_prob(observed, prepared),
            )
        if chunk.features is None:
            return self._residual_log_prob(chunk.residual, prepared.residual)
        log_prob = (prepared.expanded @ chunk.features).T
        if chunk.residual is not None:
            log_prob[:, chunk.residual.index] = self._residual_log_prob(
                chunk.residual, prepared.residual
            )
        return log_prob

    def _residual_log_prob(self, chunk: ResidualChunk, prepared: ResidualCoefficients) -> Array:
        xp = namespace(chunk.residuals)
        residuals = chunk.residuals
        factors = prepared.factors
        if self.covariance_type in ("full", "tied"):
            whitened = residuals @ factors
            maha = xp.sum(whitened * whitened, axis=2)
        else:
            maha = xp.sum(residuals * residuals * (factors * factors)[:, None, :], axis=2)
        return (prepared.constant[:, None] - 0.5 * maha).T

    def statistics(
        self, chunk: GaussianChunk | PartialChunk, resp: Array
    ) -> GaussianStatistics:
        r"""Sums :math:`N_k, S_k, Q_k` of a chunk; ``resp`` already carries sample weights.

        Expanded-path components have sums about the origin; residual-path components
        sums about their current means (their reference point ``shift``). Rows with missing
        entries add, about the current means, :math:`\gamma_{nk}(\hat x_{nk} - \mu_k)` to
        :math:`S_k` and :math:`\gamma_{nk}[(\hat x_{nk} - \mu_k)(\hat x_{nk} -
        \mu_k)^\top + C_{nk}]` to :math:`Q_k`, with the conditional mean
        :math:`\hat x_{nk}` and covariance :math:`C_{nk}` of the missing entries.
        """
        if isinstance(chunk, PartialChunk):
            xp = namespace(resp)
            stats = self._missing_statistics(chunk.missing, resp)
            if chunk.observed is None:
                return stats
            return self.statistics(chunk.observed, xp.take(resp, chunk.complete, axis=0)) + stats
        residual = chunk.residual
        if chunk.features is None:
            return self._residual_statistics(residual, resp)
        xp = namespace(resp)
        n_features = chunk.n_features
        sums = resp.T @ xp.permute_dims(chunk.features, (1, 0))
        sum_x = sums[:, :n_features]
        resp_sum = sums[:, n_features]
        quadratic = sums[:, n_features + 1 :]
        kind = self.covariance_type
        if kind in ("full", "tied"):
            sum_xx = _unpack_triangle(quadratic, n_features)
        elif kind == "diag":
            sum_xx = quadratic
        else:
            sum_xx = quadratic[:, 0]
        shift = xp.zeros_like(sum_x)
        if residual is not None:
            exact = self._residual_statistics(residual, xp.take(resp, residual.index, axis=1))
            sum_x[residual.index, ...] = exact.sum_x
            sum_xx[residual.index, ...] = exact.sum_xx
            shift[residual.index, ...] = exact.shift
        return GaussianStatistics(resp_sum, sum_x, sum_xx, shift)

    def _missing_statistics(self, missing, resp: Array) -> GaussianStatistics:
        """Expected sums of the rows with missing entries, about the current means."""
        xp = namespace(resp)
        rows_resp = xp.take(resp, missing.index, axis=0)
        completed = ResidualChunk(missing.completed, missing.means, missing.index)
        sums = self._residual_statistics(completed, rows_resp)
        totals = pattern_totals(missing, rows_resp)
        conditional = conditional_sums(missing, totals)
        if self.covariance_type == "spherical":
            conditional = conditional.sum(axis=1)
        entropy = (totals * missing.entropy).sum(axis=0)
        return GaussianStatistics(
            sums.resp_sum, sums.sum_x, sums.sum_xx + as_backend(conditional, resp),
            sums.shift, as_backend(entropy, resp),
        )

    def impute(
        self, X: Array, chunk: GaussianChunk | PartialChunk, params: GaussianParams,
        resp: Array,
    ) -> Array:
        r"""The chunk ``X`` with each missing entry replaced by its conditional expectation
        :math:`\sum_k \gamma_{nk} E[x_{nd} \mid x_{n,o}, z_n = k]`, with
        :math:`E[x_m \mid x_o, z = k] = \mu_{k,m} + \Sigma_{k,mo} \Sigma_{k,oo}^{-1}
        (x_o - \mu_{k,o})` and ``resp`` the posterior :math:`p(z_n = k \mid x_{n,o})`."""
        if not isinstance(chunk, PartialChunk):
            return X
        return fill_missing(X, chunk.missing, resp, lambda means, variances: means)

    def _residual_statistics(self, chunk: ResidualChunk, resp: Array) -> GaussianStatistics:
        xp = namespace(resp)
        residuals = chunk.residuals
        weighted = xp.permute_dims(resp, (1, 0))[:, :, None] * residuals
        sum_x = xp.sum(weighted, axis=1)
        kind = self.covariance_type
        if kind in ("full", "tied"):
            sum_xx = xp.permute_dims(weighted, (0, 2, 1)) @ residuals
        elif kind == "diag":
            sum_xx = xp.sum(weighted * residuals, axis=1)
        else:
            sum_xx = xp.sum(weighted * residuals, axis=(1, 2))
        return GaussianStatistics(xp.sum(resp, axis=0), sum_x, sum_xx, chunk.means)

    # ------------------------------------------------------------------ M-step
    def maximize(self, stats: GaussianStatistics) -> GaussianParams:
        r"""Closed-form M-step (Bishop 9.24–9.25) on float64 host statistics.

        With :math:`\delta_k = S_k / N_k` (the mean's offset from the reference
        :math:`c_k`): :math:`\mu_k = c_k + \delta_k` and
        :math:`\Sigma_k = Q_k / N_k - \delta_k \delta_k^\top + \epsilon I`
        (``'tied'``: :math:`\sum_k (Q_k - N_k \delta_k\delta_k^\top) / \sum_k N_k`).
        :math:`N_k` is increased by :math:`10\,\varepsilon` (machine epsilon) before
        dividing, as scikit-learn does, so that an empty component yields finite numbers;
        empty components are re-seeded by the caller (:meth:`emkit.em.Mixture.reseed`).
        """
        nk = stats.resp_sum + 10 * np.finfo(np.float64).eps
        offset = stats.sum_x / nk[:, None]
        means = stats.shift + offset
        n_features = means.shape[1]
        kind = self.covariance_type
        if kind == "full":
            cov = stats.sum_xx / nk[:, None, None] - offset[:, :, None] * offset[:, None, :]
            cov = 0.5 * (cov + cov.transpose(0, 2, 1)) + self.reg_covar * np.eye(n_features)
        elif kind == "tied":
            scatter = stats.sum_xx - nk[:, None, None] * offset[:, :, None] * offset[:, None, :]
            cov = scatter.sum(axis=0) / nk.sum()
            cov = 0.5 * (cov + cov.T) + self.reg_covar * np.eye(n_features)
        elif kind == "diag":
            cov = stats.sum_xx / nk[:, None] - offset**2 + self.reg_covar
        else:
            cov = (stats.sum_xx / nk - (offset**2).sum(axis=1)) / n_features + self.reg_covar
        return GaussianParams(means, cov, _precision_cholesky(cov, kind))

    def regularization_gap(self, params: GaussianParams, stats: GaussianStatistics) -> float:
        r"""How far below the exact maximum of Q the regularised M-step may land, per sample.

        Adding :math:`\epsilon I` to the maximiser :math:`\Sigma^*` lowers the expected
        complete-data log-likelihood per unit of responsibility by
        :math:`\tfrac12 \sum_i [\log(1 + \epsilon/\lambda_i) - \epsilon/(\lambda_i + \epsilon)]`
        over the eigenvalues :math:`\lambda_i` of :math:`\Sigma^*`: about
        :math:`\tfrac14 (\epsilon/\lambda)^2`, and unbounded for a component collapsing
        on a point. The log-likelihood may then decrease by up to this amount.
        """
        eps = self.reg_covar
        if eps == 0.0:
            return 0.0
        kind = self.covariance_type
        cov = params.covariances
        if kind in ("full", "tied"):
            eigenvalues = np.linalg.eigvalsh(cov) - eps
        elif kind == "diag":
            eigenvalues = cov - eps
        else:
            eigenvalues = np.repeat((cov - eps)[:, None], params.means.shape[1], axis=1)
        if (eigenvalues <= 0).any():
            return np.inf
        loss = 0.5 * (np.log1p(eps / eigenvalues) - eps / (eigenvalues + eps))
        if kind == "tied":
            return float(loss.sum())
        share = stats.resp_sum / stats.resp_sum.sum()
        return float(share @ loss.reshape(len(share), -1).sum(axis=1))

    def from_precisions(self, means: np.ndarray, precisions: np.ndarray) -> GaussianParams:
        r"""Parameters from means and precision matrices (user-given starting values).

        The factors are upper triangular, :math:`U U^\top = \Sigma^{-1}`, as the M-step's.
        """
        kind = self.covariance_type
        if kind in ("full", "tied"):
            batch = precisions[None] if kind == "tied" else precisions
            factors = _upper_factors(batch)
            inverses = np.linalg.inv(factors)
            covariances = inverses.transpose(0, 2, 1) @ inverses
            if kind == "tied":
                factors, covariances = factors[0], covariances[0]
            return GaussianParams(means, covariances, factors)
        return GaussianParams(means, 1.0 / precisions, np.sqrt(precisions))

    def reseed(
        self, params: GaussianParams, stats: GaussianStatistics, component: int,
        point: np.ndarray,
    ) -> GaussianParams:
        """Move an empty component onto ``point`` with the pooled covariance of the data;
        missing entries of ``point`` are taken at the pooled mean."""
        centred = stats.about(np.zeros_like(stats.shift))
        total = centred.resp_sum.sum()
        mean = centred.sum_x.sum(axis=0) / total
        kind = self.covariance_type
        means = params.means.copy()
        means[component] = np.where(np.isnan(point), mean, point)
        if kind == "tied":
            return dataclasses.replace(params, means=means)
        second = centred.sum_xx.sum(axis=0) / total
        cov = params.covariances.copy()
        if kind == "full":
            cov[component] = second - np.outer(mean, mean) + self.reg_covar * np.eye(len(mean))
        elif kind == "diag":
            cov[component] = second - mean**2 + self.reg_covar
        else:
            cov[component] = (second - mean @ mean) / len(mean) + self.reg_covar
        return GaussianParams(means, cov, _precision_cholesky(cov, kind))


    # ------------------------------------------------------------------ beyond exact EM
    #: The ECM blocks: the means given the covariances, then the covariances given the means.
    conditional_blocks: ClassVar[tuple[str, ...]] = ("means", "covariances")

    def expected_log_likelihood(self, params: GaussianParams, stats: GaussianStatistics) -> float:
        r"""Q from float64 statistics, moved about the means (:math:`Q'_k`):
        :math:`Q(\theta) = \sum_k [N_k(\log|U_k| - \tfrac D2 \log 2\pi)
        - \tfrac12 \operatorname{tr}(U_k^\top Q'_k U_k) + H_k]` (a diagonal for
        ``'diag'``, a trace for ``'spherical'``), with :math:`H_k` the entropy of the
        missing entries (``stats.entropy``, zero without them; it does not depend on
        :math:`\theta`), so that at the E-step's parameters Q equals
        :math:`\sum_{nk} \gamma_{nk} \log p(x_{n,o} \mid z_n = k)`."""
        about = stats.about(params.means)
        factors = params.precisions_cholesky
        n_features = params.means.shape[1]
        kind = self.covariance_type
        if kind == "full":
            log_det = np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
            quadratic = np.einsum("kil,kij,kjl->k", factors, about.sum_xx, factors)
        elif kind == "tied":
            log_det = np.log(np.diag(factors)).sum()
            quadratic = np.einsum("il,kij,jl->k", factors, about.sum_xx, factors)
        elif kind == "diag":
            log_det = np.log(factors).sum(axis=1)
            quadratic = (factors**2 * about.sum_xx).sum(axis=1)
        else:
            log_det = n_features * np.log(factors)
            quadratic = factors**2 * about.sum_xx
        constant = log_det - 0.5 * n_features * np.log(2 * np.pi)
        return float(
            (about.resp_sum * constant).sum() - 0.5 * quadratic.sum() + about.entropy.sum()
        )

    def pack(self, params: GaussianParams) -> np.ndarray:
        r"""Means, then the precision factors: for ``'full'`` and ``'tied'`` the log-diagonal
        and upper off-diagonal entries of the upper-triangular :math:`U_k` with
        :math:`U_k U_k^\top = \Sigma_k^{-1}` (the one the M-step gives, whatever factor
        ``params`` holds); log-entries for ``'diag'`` and ``'spherical'``."""
        factors = params.precisions_cholesky
        kind = self.covariance_type
        if kind in ("full", "tied"):
            batch = factors if kind == "full" else factors[None]
            batch = _upper_factors(batch @ batch.transpose(0, 2, 1))
            rows, cols = np.triu_indices(batch.shape[1], 1)
            parts = [np.log(np.diagonal(batch, axis1=1, axis2=2)), batch[:, rows, cols]]
            coordinates = np.concatenate([part.ravel() for part in parts])
        else:
            coordinates = np.log(factors).ravel()
        return np.concatenate([params.means.ravel(), coordinates])

    def unpack(self, vector: np.ndarray, like: GaussianParams) -> GaussianParams:
        """Parameters from :func:`pack`'s coordinates, shaped as ``like``."""
        n_components, n_features = like.means.shape
        split = n_components * n_features
        means = vector[:split].reshape(n_components, n_features)
        rest = vector[split:]
        kind = self.covariance_type
        if kind in ("full", "tied"):
            count = n_components if kind == "full" else 1
            rows, cols = np.triu_indices(n_features, 1)
            diagonal = np.exp(rest[: count * n_features]).reshape(count, n_features)
            factors = np.zeros((count, n_features, n_features))
            factors[:, np.arange(n_features), np.arange(n_features)] = diagonal
            factors[:, rows, cols] = rest[count * n_features :].reshape(count, len(rows))
            inverses = np.linalg.inv(factors)
            covariances = inverses.transpose(0, 2, 1) @ inverses
            if kind == "tied":
                factors, covariances = factors[0], covariances[0]
        else:
            factors = np.exp(rest).reshape(like.precisions_cholesky.shape)
            covariances = 1.0 / factors**2
        return GaussianParams(means, covariances, factors)

    def conditional_maximize(
        self, params: GaussianParams, stats: GaussianStatistics, block: str
    ) -> GaussianParams:
        r"""One conditional maximisation of Q.

        ``'means'``: :math:`\mu_k = c_k + S_k/N_k` whatever the covariances (Q is a concave
        quadratic in :math:`\mu_k` with that maximiser for every :math:`\Sigma_k`);
        ``'covariances'``: :math:`\Sigma_k = Q'_k/N_k + \epsilon I` about the current means
        (``'tied'``: :math:`\sum_k Q'_k / \sum_k N_k + \epsilon I`).
        """
        if block == "means":
            nk = stats.resp_sum + _TINY
            means = stats.shift + stats.sum_x / nk[:, None]
            return GaussianParams(means, params.covariances, params.precisions_cholesky)
        if block != "covariances":
            raise ValueError(
                f"unknown block {block!r}; expected one of {self.conditional_blocks}"
            )
        about = stats.about(params.means)
        nk = about.resp_sum + _TINY
        n_features = params.means.shape[1]
        eps = self.reg_covar
        kind = self.covariance_type
        if kind == "full":
            cov = about.sum_xx / nk[:, None, None] + eps * np.eye(n_features)
            cov = 0.5 * (cov + cov.transpose(0, 2, 1))
        elif kind == "tied":
            cov = about.sum_xx.sum(axis=0) / nk.sum() + eps * np.eye(n_features)
            cov = 0.5 * (cov + cov.T)
        elif kind == "diag":
            cov = about.sum_xx / nk[:, None] + eps
        else:
            cov = about.sum_xx / (nk * n_features) + eps
        return GaussianParams(params.means, cov, _precision_cholesky(cov, kind))

    # ------------------------------------------------------------------ the rest
    def n_parameters(self, params: GaussianParams) -> int:
        """Free parameters: K·D means plus the covariance entries of the structure."""
        n_components, n_features = params.means.shape
        per_matrix = n_features * (n_features + 1) // 2
        covariance = {
            "full": n_components * per_matrix,
            "tied": per_matrix,
            "diag": n_components * n_features,
            "spherical": n_components,
        }[self.covariance_type]
        return n_components * n_features + covariance

    def sample(
        self, params: GaussianParams, counts: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        """``counts[k]`` draws from each component, in component order (as scikit-learn)."""
        means, cov = params.means, params.covariances
        kind = self.covariance_type
        if kind in ("full", "tied"):
            covs = cov if kind == "full" else [cov] * len(means)
            draws = [
                rng.multivariate_normal(m, c, int(n))
                for m, c, n in zip(means, covs, counts, strict=True)
            ]
        else:
            scale = np.sqrt(cov if kind == "diag" else cov[:, None] * np.ones_like(means))
            draws = [
                m + rng.standard_normal(size=(int(n), means.shape[1])) * s
                for m, s, n in zip(means, scale, counts, strict=True)
            ]
        return np.vstack(draws)


def _int(like: Array):
    return namespace(like).int64


@functools.lru_cache(maxsize=16)
def _triangle_indices(n_features: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n_features)


def _triangle(n_features: int, like: Array) -> tuple[Array, Array]:
    """Row and column indices of the upper triangle (with the diagonal), as in vech."""
    rows, cols = _triangle_indices(n_features)
    return as_backend(rows, like, dtype=_int(like)), as_backend(cols, like, dtype=_int(like))


def _unpack_triangle(packed: Array, n_features: int) -> Array:
    """(K, D(D+1)/2) upper-triangle sums to symmetric (K, D, D) matrices."""
    rows, cols = np.triu_indices(n_features)
    index = np.empty((n_features, n_features), dtype=np.int64)
    index[rows, cols] = np.arange(len(rows))
    index[cols, rows] = np.arange(len(rows))
    xp = namespace(packed)
    gather = as_backend(index.reshape(-1), packed, dtype=_int(packed))
    return xp.reshape(xp.take(packed, gather, axis=1), (packed.shape[0], n_features, n_features))


def _upper_factors(precisions: np.ndarray) -> np.ndarray:
    r"""Upper-triangular :math:`U` with :math:`U U^\top = P`, positive diagonal: with
    :math:`J` the reversal, :math:`U = J \operatorname{chol}(J P J) J`."""
    flipped = np.linalg.cholesky(precisions[:, ::-1, ::-1])
    return flipped[:, ::-1, ::-1]
