r"""Multivariate Student-t components, fitted by ECM with latent scales.

For component :math:`k` with location :math:`\mu_k`, scale matrix :math:`\Sigma_k` and
degrees of freedom :math:`\nu_k`, with :math:`\delta = (x - \mu_k)^\top\Sigma_k^{-1}(x -
\mu_k)`,

.. math::

    \log t(x \mid \mu_k, \Sigma_k, \nu_k) = \log\Gamma\!\left(\tfrac{\nu_k + D}{2}\right)
      - \log\Gamma\!\left(\tfrac{\nu_k}{2}\right) - \tfrac D2 \log(\nu_k\pi)
      - \tfrac12\log|\Sigma_k| - \tfrac{\nu_k + D}{2}\log\left(1 + \frac{\delta}{\nu_k}\right).

The t distribution is a Gaussian scale mixture: :math:`x \mid u \sim \mathcal N(\mu_k,
\Sigma_k / u)` with :math:`u \sim \mathrm{Gamma}(\nu_k/2, \nu_k/2)`. EM treats :math:`u_n` as
a second latent variable (McLachlan & Peel 2000, §7.5; Liu & Rubin 1995). Its posterior given
:math:`x_n` and :math:`z_n = k` is :math:`\mathrm{Gamma}((\nu_k + D)/2, (\nu_k + \delta_{nk})/2)`,
so the E-step needs, per row and component,

.. math::

    \bar u_{nk} = \frac{\nu_k + D}{\nu_k + \delta_{nk}}, \qquad
    \overline{\log u}_{nk} = \psi\!\left(\tfrac{\nu_k + D}2\right)
      - \log\frac{\nu_k + \delta_{nk}}{2}.

Those per-row latent weights are computed from the current parameters inside
:meth:`StudentT.features`, and only their weighted sums leave the chunk, so they fit the
family protocol: :math:`N_k = \sum_n \gamma_{nk}`, :math:`W_k = \sum_n \gamma_{nk}\bar u_{nk}`,
:math:`\sum_n \gamma_{nk}\bar u_{nk}(x_n - c_k)` and its second moments about the current
locations :math:`c_k` (two-pass centred sums), and :math:`T_k = \sum_n \gamma_{nk}
(\overline{\log u}_{nk} - \bar u_{nk})`.

The M-step maximises the expected complete-data log-likelihood, which separates into a
part in :math:`(\mu, \Sigma)` and a part in :math:`\nu`:

.. math::

    \mu_k = \frac{\sum_n \gamma_{nk}\bar u_{nk} x_n}{W_k}, \qquad
    \Sigma_k = \frac{\sum_n \gamma_{nk}\bar u_{nk}(x_n - \mu_k)(x_n - \mu_k)^\top}{N_k}
      + \epsilon I,

and :math:`\nu_k = 2a` with :math:`\log a - \psi(a) = s_k = -1 - T_k / N_k`, solved to full
precision by :func:`emkit.distributions.gamma.gamma_shape` (the same equation as a gamma
shape). Both are exact maximisers, so the log-likelihood never decreases. When the data are
Gaussian, :math:`s \to 0` and :math:`\nu \to \infty`; ``reg_dof`` (:math:`\epsilon_\nu`)
solves with :math:`s + \epsilon_\nu`, capping :math:`\nu` near :math:`1/\epsilon_\nu`, and the
exact loss of Q this costs is reported by :meth:`StudentT.regularization_gap`.

Before any E-step (at initialisation) the latent scales are taken at their prior under
``dof_init`` (:math:`\bar u = 1`, :math:`\overline{\log u} = \psi(\nu_0/2) - \log(\nu_0/2)`),
so the first M-step is the Gaussian one and returns :math:`\nu = \nu_0`.

Missing entries (NaN) are marginalised (Liu and Rubin 1995, §4; Little and Rubin 2002,
§12.1). For a row whose entries :math:`o` are observed and :math:`m` missing, with
:math:`p_o = |o|` and :math:`\delta_o = (x_o - \mu_{k,o})^\top\Sigma_{k,oo}^{-1}(x_o -
\mu_{k,o})`, the observed block is :math:`t_{\nu_k}(\mu_{k,o}, \Sigma_{k,oo})`, so
:math:`\log p(x_o \mid z = k)` is the density above with :math:`D \to p_o`,
:math:`\Sigma_k \to \Sigma_{k,oo}` and :math:`\delta \to \delta_o`, and the scale's
posterior given :math:`x_o` is :math:`\mathrm{Gamma}((\nu_k + p_o)/2, (\nu_k + \delta_o)/2)`:

.. math::

    \bar u = \frac{\nu_k + p_o}{\nu_k + \delta_o}, \qquad
    \overline{\log u} = \psi\!\left(\tfrac{\nu_k + p_o}2\right)
      - \log\frac{\nu_k + \delta_o}{2}.

Given :math:`u` and :math:`x_o` the missing block is Gaussian, with mean
:math:`\hat x_m = \mu_{k,m} + \Sigma_{k,mo}\Sigma_{k,oo}^{-1}(x_o - \mu_{k,o})` (free of
:math:`u`) and covariance :math:`C/u`, :math:`C = \Sigma_{k,mm} -
\Sigma_{k,mo}\Sigma_{k,oo}^{-1}\Sigma_{k,om}`. Hence :math:`E[u\, x] = \bar u\, \hat x` and
:math:`E[u\, x x^\top] = \bar u\, \hat x \hat x^\top + C` (:math:`\hat x_o = x_o`;
:math:`C` fills the missing block and is *not* multiplied by :math:`\bar u`): the sums above
take these expectations, and the M-step, unchanged, is the ECM step of Liu and Rubin, so the
log-likelihood of the observed entries never decreases. :math:`\hat x`, :math:`C` and
:math:`\delta_o` are those of a Gaussian with covariance :math:`\Sigma_k`, computed per pattern
of missing entries by :mod:`emkit.distributions.gaussian_missing`; rows without missing
entries take the path above unchanged. Q remains the expected complete-data
log-likelihood of :math:`(x, u)`, without the entropy of the latent :math:`(x_m, u)`, as for
complete rows.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from scipy.special import digamma, gammaln

from emkit._backend import Array, as_backend, device_of, namespace
from emkit.distributions._base import Statistics, reference
from emkit.distributions.gamma import gamma_shape, shape_gap
from emkit.distributions.gaussian import (
    Gaussian,
    GaussianParams,
    GaussianStatistics,
    _precision_cholesky,
)
from emkit.distributions.gaussian_missing import (
    MissingRows,
    PartialChunk,
    conditional_sums,
    fill_missing,
    missing_rows,
    pattern_totals,
    split_chunk,
)
from emkit.distributions.product import has_missing

__all__ = ["StudentT", "StudentTParams", "StudentTStatistics"]


@dataclasses.dataclass(frozen=True)
class StudentTParams:
    """Locations (K, D), scale matrices and their precision Cholesky factors ((K, D, D) for
    ``'full'``, (K, D) for ``'diag'``) and degrees of freedom (K,), float64."""

    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    dofs: np.ndarray


@dataclasses.dataclass(frozen=True)
class StudentTStatistics(Statistics):
    r""":math:`N_k`, :math:`W_k = \sum_n\gamma_{nk}\bar u_{nk}`, the :math:`\gamma\bar u`-
    weighted first and second sums about the reference :math:`c_k` (``shift``), and
    :math:`T_k = \sum_n \gamma_{nk}(\overline{\log u}_{nk} - \bar u_{nk})`."""

    resp_sum: Array
    weight_sum: Array
    sum_x: Array
    sum_xx: Array
    dof_sum: Array
    shift: Array = reference()

    def _weighted(self) -> GaussianStatistics:
        return GaussianStatistics(self.weight_sum, self.sum_x, self.sum_xx, self.shift)

    def aligned(self, other: StudentTStatistics) -> StudentTStatistics:
        xp = namespace(self.shift)
        if bool(xp.all(self.shift == other.shift)):
            return other
        moved = other._weighted().about(self.shift)
        return dataclasses.replace(
            other, sum_x=moved.sum_x, sum_xx=moved.sum_xx, shift=self.shift
        )


@dataclasses.dataclass(frozen=True)
class StudentTCoefficients:
    """Locations, whitening factors, degrees of freedom, log-density constants (bias
    included) and :math:`\\psi((\\nu + D)/2)`, on the data's device and in its dtype; for
    rows with missing entries the parameters and the bias (K,) themselves (float64, host)."""

    means: Array
    factors: Array
    dofs: Array
    constant: Array
    digamma_shape: Array
    params: StudentTParams
    bias: np.ndarray


@dataclasses.dataclass(frozen=True)
class StudentTChunk:
    """A chunk, with (when parameters are given) residuals (K, n, D) about the locations,
    Mahalanobis distances, :math:`\\bar u` and :math:`\\overline{\\log u} - \\bar u` (K, n)."""

    X: Array
    means: Array | None = None
    residuals: Array | None = None
    distances: Array | None = None
    scales: Array | None = None
    dof_terms: Array | None = None


@dataclasses.dataclass(frozen=True)
class StudentTMissing:
    """The rows of a chunk with missing entries: the conditional moments of their missing
    entries under :math:`\\Sigma_k` (``rows``), their chunk as the statistics see it
    (``chunk``: residuals completed with :math:`\\hat x_m`, :math:`\\delta_o`,
    :math:`\\bar u` and :math:`\\overline{\\log u} - \\bar u`), and their marginal
    log-densities plus the bias, (n_m, K)."""

    rows: MissingRows
    chunk: StudentTChunk
    log_prob: Array

    @property
    def index(self) -> Array:
        """Positions of the rows in the chunk."""
        return self.rows.index


@dataclasses.dataclass(frozen=True)
class StudentT:
    """Family of multivariate Student-t distributions.

    Parameters
    ----------
    covariance_type : {'full', 'diag'}
        General or diagonal scale matrices.
    reg_covar : float
        Non-negative regulariser added to the diagonal of every scale matrix.
    reg_dof : float
        Non-negative :math:`\\epsilon_\\nu` that caps the degrees of freedom near
        :math:`1/\\epsilon_\\nu` (Gaussian data drive them to infinity).
    dof_init : float
        Degrees of freedom after the first M-step (before any E-step of the scales).
    """

    covariance_type: Literal["full", "diag"] = "full"
    reg_covar: float = 1e-6
    reg_dof: float = 1e-6
    dof_init: float = 10.0
    location = True

    @property
    def gaussian(self) -> Gaussian:
        """The Gaussian family with the same scale structure (for its shared pieces)."""
        return Gaussian(self.covariance_type, self.reg_covar)

    # ------------------------------------------------------------------ E-step
    def prepare(
        self, params: StudentTParams, like: Array, bias: np.ndarray | None = None
    ) -> StudentTCoefficients:
        """Locations, factors and the per-component constants of the log-density."""
        n_features = params.means.shape[1]
        factors = params.precisions_cholesky
        if self.covariance_type == "full":
            log_det = np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
        else:
            log_det = np.log(factors).sum(axis=1)
        dofs = params.dofs
        constant = (
            gammaln((dofs + n_features) / 2) - gammaln(dofs / 2)
            - 0.5 * n_features * np.log(dofs * np.pi) + log_det
        )
        bias = np.zeros(len(dofs)) if bias is None else np.asarray(bias, dtype=np.float64)
        constant = constant + bias
        return StudentTCoefficients(
            as_backend(params.means, like), as_backend(factors, like), as_backend(dofs, like),
            as_backend(constant, like), as_backend(digamma((dofs + n_features) / 2), like),
            params, bias,
        )

    def features(
        self, X: Array, prepared: StudentTCoefficients | None
    ) -> StudentTChunk | PartialChunk:
        r"""Residuals, :math:`\delta_{nk}`, :math:`\bar u_{nk}` and
        :math:`\overline{\log u}_{nk} - \bar u_{nk}` at the current parameters; when some
        rows have missing entries (NaN), those of the complete rows and, for the others,
        the same of the observed block with the residuals completed
        (:meth:`_missing_features`)."""
        if has_missing(X):
            return split_chunk(
                X, prepared, lambda rows: self.features(rows, prepared),
                lambda rows, index: self._missing_features(rows, index, prepared),
            )
        if prepared is None:
            return StudentTChunk(X)
        xp = namespace(X)
        n_features = X.shape[1]
        residuals = X[None, :, :] - prepared.means[:, None, :]
        if self.covariance_type == "full":
            whitened = residuals @ prepared.factors
            distances = xp.sum(whitened * whitened, axis=2)
        else:
            scale = prepared.factors * prepared.factors
            distances = xp.sum(residuals * residuals * scale[:, None, :], axis=2)
        dofs = prepared.dofs[:, None]
        scales = (dofs + n_features) / (dofs + distances)
        expected_log = prepared.digamma_shape[:, None] - xp.log((dofs + distances) / 2)
        return StudentTChunk(
            X, prepared.means, residuals, distances, scales, expected_log - scales
        )

    def _missing_features(
        self, rows: Array, index: Array, prepared: StudentTCoefficients
    ) -> StudentTMissing:
        r"""Rows with missing entries at positions ``index``: with :math:`p_o` observed
        entries and :math:`\delta_o` the Mahalanobis term of the observed block,
        :math:`\bar u = (\nu + p_o)/(\nu + \delta_o)`, :math:`\overline{\log u} =
        \psi((\nu + p_o)/2) - \log((\nu + \delta_o)/2)` and

        .. math::

            \log t(x_o \mid \mu_o, \Sigma_{oo}, \nu) = \log\Gamma\!\left(\tfrac{\nu +
              p_o}{2}\right) - \log\Gamma\!\left(\tfrac{\nu}{2}\right) - \tfrac{p_o}2
              \log(\nu\pi) - \tfrac12\log|\Sigma_{oo}| - \tfrac{\nu + p_o}{2}
              \log\left(1 + \frac{\delta_o}{\nu}\right),

        with the constants computed once per pattern of missing entries and component."""
        xp = namespace(rows)
        params = prepared.params
        missing = missing_rows(
            rows, index, params.means, params.covariances, self.covariance_type
        )
        observed = missing.n_observed[:, None]
        shape = (params.dofs + observed) / 2
        constant = (
            gammaln(shape) - gammaln(params.dofs / 2) - 0.5 * observed * np.log(params.dofs * np.pi)
            - 0.5 * missing.log_det_observed + prepared.bias
        )
        dofs = prepared.dofs[:, None]
        distances = xp.permute_dims(missing.mahalanobis, (1, 0))
        total = dofs + missing.per_row(missing.n_observed)[None, :]
        scales = total / (dofs + distances)
        expected_log = xp.permute_dims(missing.per_row(digamma(shape)), (1, 0)) - xp.log(
            (dofs + distances) / 2
        )
        log_prob = missing.per_row(constant) - 0.5 * xp.permute_dims(
            total * xp.log1p(distances / dofs), (1, 0)
        )
        chunk = StudentTChunk(
            rows, prepared.means, missing.completed, distances, scales, expected_log - scales
        )
        return StudentTMissing(missing, chunk, log_prob)

    def log_prob(
        self, chunk: StudentTChunk | PartialChunk, prepared: StudentTCoefficients
    ) -> Array:
        r""":math:`\log t(x_n \mid \mu_k, \Sigma_k, \nu_k)` + bias, (n, K); for a row with
        missing entries the density of its observed block, :math:`\log t(x_{n,o} \mid
        \mu_{k,o}, \Sigma_{k,oo}, \nu_k)` + bias."""
        if isinstance(chunk, PartialChunk):
            return chunk.assemble(
                chunk.missing.log_prob, lambda observed: self.log_prob(observed, prepared)
            )
        xp = namespace(chunk.distances)
        dofs = prepared.dofs[:, None]
        n_features = chunk.X.shape[1]
        log_prob = prepared.constant[:, None] - 0.5 * (dofs + n_features) * xp.log1p(
            chunk.distances / dofs
        )
        return log_prob.T

    def statistics(
        self, chunk: StudentTChunk | PartialChunk, resp: Array
    ) -> StudentTStatistics:
        r"""Weighted sums of the chunk (at the prior of the scales before any E-step). Rows
        with missing entries add, about the current locations,
        :math:`\gamma_{nk}\bar u_{nk}(\hat x_{nk} - \mu_k)` to the first sums and
        :math:`\gamma_{nk}[\bar u_{nk}(\hat x_{nk} - \mu_k)(\hat x_{nk} - \mu_k)^\top +
        C_{nk}]` to the second ones."""
        if isinstance(chunk, PartialChunk):
            return self._partial_statistics(chunk, resp)
        xp = namespace(resp)
        resp_t = resp.T
        resp_sum = xp.sum(resp_t, axis=1)
        if chunk.residuals is None:
            residuals = xp.broadcast_to(chunk.X[None, :, :], (resp.shape[1], *chunk.X.shape))
            weights = resp_t
            half = self.dof_init / 2
            dof_sum = resp_sum * float(digamma(half) - np.log(half) - 1.0)
            shift = xp.zeros(
                (resp.shape[1], chunk.X.shape[1]), dtype=resp.dtype, device=device_of(resp)
            )
        else:
            residuals = chunk.residuals
            weights = resp_t * chunk.scales
            dof_sum = xp.sum(resp_t * chunk.dof_terms, axis=1)
            shift = chunk.means
        weighted = weights[:, :, None] * residuals
        sum_x = xp.sum(weighted, axis=1)
        if self.covariance_type == "full":
            sum_xx = xp.permute_dims(weighted, (0, 2, 1)) @ residuals
        else:
            sum_xx = xp.sum(weighted * residuals, axis=1)
        return StudentTStatistics(
            resp_sum, xp.sum(weights, axis=1), sum_x, sum_xx, dof_sum, shift
        )

    def _partial_statistics(self, chunk: PartialChunk, resp: Array) -> StudentTStatistics:
        """Sums of the incomplete rows (their completed residuals, then the conditional
        covariances weighted by :math:`\\gamma`), plus those of the complete rows."""
        xp = namespace(resp)
        missing = chunk.missing
        rows_resp = xp.take(resp, missing.index, axis=0)
        sums = self.statistics(missing.chunk, rows_resp)
        conditional = conditional_sums(missing.rows, pattern_totals(missing.rows, rows_resp))
        stats = dataclasses.replace(sums, sum_xx=sums.sum_xx + as_backend(conditional, resp))
        if chunk.observed is None:
            return stats
        return self.statistics(chunk.observed, xp.take(resp, chunk.complete, axis=0)) + stats

    def impute(
        self, X: Array, chunk: StudentTChunk | PartialChunk, params: StudentTParams,
        resp: Array,
    ) -> Array:
        r"""The chunk ``X`` with each missing entry replaced by its conditional expectation
        :math:`\sum_k \gamma_{nk} E[x_{nd} \mid x_{n,o}, z_n = k]`, with
        :math:`E[x_m \mid x_o, z = k] = \mu_{k,m} + \Sigma_{k,mo} \Sigma_{k,oo}^{-1}
        (x_o - \mu_{k,o})` (the location of the conditional t) and ``resp`` the posterior
        :math:`p(z_n = k \mid x_{n,o})`."""
        if not isinstance(chunk, PartialChunk):
            return X
        return fill_missing(X, chunk.missing.rows, resp, lambda means, variances: means)

    def expected_log_likelihood(self, params: StudentTParams, stats: StudentTStatistics) -> float:
        r"""Q of the complete data :math:`(x, z, u)`: with :math:`a = \nu_k / 2`,
        :math:`\overline{\log u}` sums :math:`L_k = T_k + W_k` and the scale-weighted
        scatter :math:`C_k` about :math:`\mu_k`,

        .. math::

            Q = \sum_k N_k\left(-\tfrac D2 \log 2\pi - \tfrac12\log|\Sigma_k|
              + a\log a - \log\Gamma(a)\right) + \left(\tfrac D2 + a - 1\right) L_k
              - a W_k - \tfrac12 \operatorname{tr}(\Sigma_k^{-1} C_k).
        """
        n_features = params.means.shape[1]
        about = stats._weighted().about(params.means)
        factors = params.precisions_cholesky
        if self.covariance_type == "full":
            log_det = np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
            quadratic = np.einsum("kil,kij,kjl->k", factors, about.sum_xx, factors)
        else:
            log_det = np.log(factors).sum(axis=1)
            quadratic = (factors**2 * about.sum_xx).sum(axis=1)
        half = params.dofs / 2
        expected_log = stats.dof_sum + stats.weight_sum
        per_component = (
            stats.resp_sum * (
                -0.5 * n_features * np.log(2 * np.pi) + log_det + half * np.log(half)
                - gammaln(half)
            )
            + (0.5 * n_features + half - 1.0) * expected_log
            - half * stats.weight_sum
            - 0.5 * quadratic
        )
        return float(per_component.sum())

    # ------------------------------------------------------------------ M-step
    def _dof_equation(self, stats: StudentTStatistics) -> np.ndarray:
        """:math:`s_k = -1 - T_k / N_k` (clipped at 0 against rounding)."""
        nk = stats.resp_sum + 10 * np.finfo(np.float64).eps
        return np.maximum(-1.0 - stats.dof_sum / nk, 0.0)

    def maximize(self, stats: StudentTStatistics) -> StudentTParams:
        r"""Locations and scales in closed form, :math:`\nu_k` from
        :math:`\log a - \psi(a) = s_k + \epsilon_\nu`."""
        eps = 10 * np.finfo(np.float64).eps
        nk = stats.resp_sum + eps
        wk = stats.weight_sum + eps
        offset = stats.sum_x / wk[:, None]
        means = stats.shift + offset
        if self.covariance_type == "full":
            scatter = stats.sum_xx - wk[:, None, None] * offset[:, :, None] * offset[:, None, :]
            cov = scatter / nk[:, None, None]
            cov = 0.5 * (cov + cov.transpose(0, 2, 1)) + self.reg_covar * np.eye(means.shape[1])
        else:
            cov = (stats.sum_xx - wk[:, None] * offset**2) / nk[:, None] + self.reg_covar
        dofs = 2.0 * gamma_shape(self._dof_equation(stats) + self.reg_dof)
        return StudentTParams(means, cov, _precision_cholesky(cov, self.covariance_type), dofs)

    def regularization_gap(self, params: StudentTParams, stats: StudentTStatistics) -> float:
        """Loss of Q per sample from ``reg_covar`` (as for a Gaussian scale matrix) and from
        ``reg_dof`` (the profile of the degrees of freedom, as for a gamma shape)."""
        gaussian = self.gaussian.regularization_gap(
            GaussianParams(params.means, params.covariances, params.precisions_cholesky),
            GaussianStatistics(stats.resp_sum, stats.sum_x, stats.sum_xx, stats.shift),
        )
        if self.reg_dof == 0.0:
            return gaussian
        used = stats.resp_sum > 1e-12 * stats.resp_sum.sum()
        loss = stats.resp_sum[used] * shape_gap(
            params.dofs[used] / 2, self._dof_equation(stats)[used]
        )
        return gaussian + float(loss.sum() / stats.resp_sum.sum())

    def reseed(
        self, params: StudentTParams, stats: StudentTStatistics, component: int,
        point: np.ndarray,
    ) -> StudentTParams:
        """Move an empty component onto ``point`` with the pooled (scale-weighted) scatter of
        the data, keeping its degrees of freedom."""
        moved = self.gaussian.reseed(
            GaussianParams(params.means, params.covariances, params.precisions_cholesky),
            stats._weighted(), component, point,
        )
        return StudentTParams(moved.means, moved.covariances, moved.precisions_cholesky,
                              params.dofs)

    # ------------------------------------------------------------------ the rest
    def n_parameters(self, params: StudentTParams) -> int:
        """As the Gaussian family, plus K degrees of freedom."""
        gaussian = GaussianParams(params.means, params.covariances, params.precisions_cholesky)
        return self.gaussian.n_parameters(gaussian) + len(params.dofs)

    def sample(
        self, params: StudentTParams, counts: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        r""":math:`\mu_k + z / \sqrt u` with :math:`z \sim \mathcal N(0, \Sigma_k)` and
        :math:`u \sim \mathrm{Gamma}(\nu_k/2, \nu_k/2)`, in component order."""
        centred = GaussianParams(
            np.zeros_like(params.means), params.covariances, params.precisions_cholesky
        )
        z = self.gaussian.sample(centred, counts, rng)
        repeats = np.asarray(counts, dtype=int)
        dofs = np.repeat(params.dofs, repeats)
        scales = rng.gamma(dofs / 2) / (dofs / 2)
        return np.repeat(params.means, repeats, axis=0) + z / np.sqrt(scales)[:, None]
