r"""Variational Bayes EM for a mixture of Gaussians (Bishop 2006, §10.2).

The mixture weights :math:`\pi`, the means :math:`\mu_k` and the precisions :math:`\Lambda_k`
get a conjugate prior: a symmetric Dirichlet :math:`\mathrm{Dir}(\pi \mid \alpha_0)` (or the
stick-breaking construction of a Dirichlet process with concentration :math:`\gamma_0`), and
a Normal–Wishart :math:`\mathcal N(\mu_k \mid m_0, (\beta_0\Lambda_k)^{-1})\,
\mathcal W(\Lambda_k \mid W_0, \nu_0)` per component. VBEM alternates two exact coordinate
ascents on the evidence lower bound :math:`\mathcal L(q) = \log p(X) - \mathrm{KL}(q \,\|\,
p(Z, \theta \mid X))` with :math:`q = q(Z)\,q(\theta)`:

**E-step** (Bishop 10.46–10.49, 10.64–10.66). :math:`q(z_n = k) = \gamma_{nk} \propto
e^{\rho_{nk}}` with the expected log joint

.. math::

    \rho_{nk} = \mathbb E[\log \pi_k] + \tfrac12 \mathbb E[\log|\Lambda_k|]
      - \tfrac D2 \log 2\pi - \tfrac{D}{2\beta_k}
      - \tfrac{\nu_k}2 (x_n - m_k)^\top W_k (x_n - m_k),

a quadratic form in :math:`x_n` of exactly the Gaussian family's shape:
:math:`\rho_{nk} = \log \mathcal N(x_n \mid m_k, (\nu_k W_k)^{-1}) + b_k` with

.. math::

    b_k = \mathbb E[\log \pi_k] - \tfrac{D}{2\beta_k}
      + \tfrac12 \Big(\sum_{i=0}^{D-1} \psi\big(\tfrac{\nu_k - i}2\big) + D \log 2
      - D \log \nu_k\Big),

so the E-step is :class:`emkit.distributions.Gaussian`'s (``prepare`` with ``bias`` =
:math:`b_k`, ``features``, ``log_prob``, ``statistics``), through
:class:`emkit.em.Mixture`'s ``expectation``. :math:`\mathbb E[\log \pi_k] =
\psi(\alpha_k) - \psi(\sum_j \alpha_j)` for the Dirichlet, and :math:`\psi(a_k) -
\psi(a_k + b_k) + \sum_{j<k} [\psi(b_j) - \psi(a_j + b_j)]` for the sticks
:math:`v_k \sim \mathrm{Beta}(a_k, b_k)`, :math:`\pi_k = v_k \prod_{j<k} (1 - v_j)`.

**M-step** (Bishop 10.58, 10.60–10.63). From the statistics :math:`N_k = \sum_n w_n
\gamma_{nk}` and the sums about a reference, recentred on the new mean (no division by
:math:`N_k`, so empty components are harmless):

.. math::

    \alpha_k = \alpha_0 + N_k \quad\text{or}\quad
      (a_k, b_k) = \big(1 + N_k,\ \gamma_0 + \textstyle\sum_{j>k} N_j\big), \qquad
    \beta_k = \beta_0 + N_k, \qquad \nu_k = \nu_0 + N_k,

    m_k = \frac{\beta_0 m_0 + \sum_n w_n\gamma_{nk} x_n}{\beta_k}, \qquad
    W_k^{-1} = W_0^{-1} + \sum_n w_n\gamma_{nk} (x_n - m_k)(x_n - m_k)^\top
      + \beta_0 (m_0 - m_k)(m_0 - m_k)^\top + N_k \epsilon I,

which equals Bishop's :math:`W_0^{-1} + N_k S_k + \frac{\beta_0 N_k}{\beta_k}
(\bar x_k - m_0)(\bar x_k - m_0)^\top` (completing the square), plus the regulariser
:math:`\epsilon` = ``reg_covar`` added to :math:`S_k` as scikit-learn does. The parameters
are stored as scikit-learn's: ``covariances`` :math:`= (\nu_k W_k)^{-1}` and their
precision Cholesky factors, the Gaussian family's parameters for the E-step. Covariance
structures, all as in scikit-learn:

* ``'diag'`` and ``'spherical'``: the same Wishart, with :math:`W_k` restricted to diagonal
  matrices (multiples of :math:`I`); the best such :math:`W_k` keeps the diagonal (the mean
  of the diagonal) of :math:`W_k^{-1}` above, and :math:`\nu_k = \nu_0 + N_k` stays optimal;
* ``'tied'``: one :math:`q(\Lambda) = \mathcal W(W, \nu)` shared by the K components (each
  with its own prior): :math:`\nu = \nu_0 + N/K`, :math:`W^{-1} = W_0^{-1} + \frac1K
  \sum_k (\ldots)_k`.

**The bound.** With the optimal :math:`q(Z)`, :math:`\sum_n w_n \sum_k \gamma_{nk}\rho_{nk}
+ H[q(Z)] = \sum_n w_n \log \sum_k e^{\rho_{nk}}` — the E-step's summed log-normaliser — so

.. math::

    \mathcal L = \sum_n w_n \log \sum_k e^{\rho_{nk}}
      - \mathrm{KL}(q(\pi) \,\|\, p(\pi))
      - \sum_k \mathrm{KL}(q(\mu_k, \Lambda_k) \,\|\, p(\mu_k, \Lambda_k)),

with

.. math::

    \mathrm{KL}_{\mathcal N} = \tfrac12 \Big(\frac{D\beta_0}{\beta_k} - D
      + D \log\frac{\beta_k}{\beta_0} + \beta_0 \nu_k (m_k - m_0)^\top W_k (m_k - m_0)\Big),

    \mathrm{KL}_{\mathcal W} = \log B(W_k, \nu_k) - \log B(W_0, \nu_0)
      + \tfrac{\nu_k - \nu_0}2 \mathbb E[\log|\Lambda_k|]
      + \tfrac{\nu_k}2 \big(\operatorname{tr}(W_0^{-1} W_k) - D\big),

:math:`\log B(W, \nu) = -\frac\nu2 \log|W| - \frac{\nu D}2 \log 2 - \log\Gamma_D(\frac\nu2)`
and :math:`\mathbb E[\log|\Lambda_k|] = \sum_{i=0}^{D-1} \psi(\frac{\nu_k - i}2) + D\log 2
+ \log|W_k|` (Bishop B.79–B.82). The Dirichlet process is truncated in :math:`q(Z)` only
(:math:`q(z_n > K) = 0`, every stick random, as scikit-learn), which leaves the K sticks'
:math:`\sum_k \mathrm{KL}(\mathrm{Beta}(a_k, b_k) \,\|\, \mathrm{Beta}(1, \gamma_0))`.
:meth:`VariationalMixture.objective` is :math:`\mathcal L / \sum_n w_n`, per sample as the
engine's convention; :func:`emkit.em.run_em` checks that it never decreases.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
from scipy.special import betaln, digamma, gammaln

from emkit._backend import Array
from emkit.distributions.gaussian import (
    Gaussian,
    GaussianParams,
    GaussianStatistics,
    _precision_cholesky,
)
from emkit.em.mixture import ChunkExpectation, Mixture, MixtureStatistics

__all__ = [
    "WEIGHT_PRIOR_TYPES",
    "VariationalMixture",
    "VariationalParams",
    "VariationalPrior",
]

WeightPriorType = Literal["dirichlet_process", "dirichlet_distribution"]
WEIGHT_PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


@dataclasses.dataclass(frozen=True)
class VariationalPrior:
    r"""The conjugate prior, in the engine's frame (rows shifted by the data's origin).

    Attributes
    ----------
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}
        Stick-breaking sticks :math:`v_k \sim \mathrm{Beta}(1, \gamma_0)`, or
        :math:`\pi \sim \mathrm{Dir}(\alpha_0, \ldots, \alpha_0)`.
    weight_concentration : float
        :math:`\gamma_0` or :math:`\alpha_0`, positive.
    mean_precision : float
        :math:`\beta_0`, positive.
    mean : ndarray of shape (n_features,)
        :math:`m_0`, moved into the engine's frame (``mean_prior - origin``).
    degrees_of_freedom : float
        :math:`\nu_0 > D - 1`.
    covariance : ndarray
        :math:`W_0^{-1}`: (D, D) for ``'full'`` and ``'tied'``, (D,) for ``'diag'``, a
        0-d array for ``'spherical'`` (the multiple of :math:`I`), as scikit-learn's
        ``covariance_prior_``.
    """

    weight_concentration_prior_type: WeightPriorType
    weight_concentration: float
    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: np.ndarray


@dataclasses.dataclass(frozen=True)
class VariationalParams:
    r"""The variational posterior :math:`q(\pi)\prod_k q(\mu_k, \Lambda_k)` (float64, host).

    Attributes
    ----------
    weight_concentration : ndarray
        :math:`\alpha` (K,) for the Dirichlet, or the sticks' :math:`(a, b)` stacked (2, K).
    mean_precision : ndarray of shape (K,)
        :math:`\beta_k`.
    degrees_of_freedom : ndarray of shape (K,)
        :math:`\nu_k` (K equal values for ``'tied'``).
    components : GaussianParams
        :math:`m_k`, ``covariances`` :math:`(\nu_k W_k)^{-1}` (scikit-learn's
        ``covariances_``) and their precision Cholesky factors: the Gaussian family's
        parameters whose log-density, plus :math:`b_k`, is :math:`\rho_{nk}`.
    """

    weight_concentration: np.ndarray
    mean_precision: np.ndarray
    degrees_of_freedom: np.ndarray
    components: GaussianParams

    @property
    def weights(self) -> np.ndarray:
        r"""Posterior mean weights: :math:`\alpha_k / \sum_j \alpha_j`, or
        :math:`\frac{a_k}{a_k + b_k} \prod_{j<k} \frac{b_j}{a_j + b_j}` renormalised over
        the K components (as scikit-learn's ``weights_``)."""
        concentration = self.weight_concentration
        if concentration.ndim == 1:
            return concentration / concentration.sum()
        a, b = concentration
        total = a + b
        weights = a / total * np.concatenate([[1.0], np.cumprod(b / total)[:-1]])
        return weights / weights.sum()


@dataclasses.dataclass(frozen=True)
class VariationalMixture:
    r"""Variational Bayes EM for K Gaussian components: the model :func:`run_em` drives.

    It has :class:`emkit.em.Mixture`'s interface (``prepare``, ``expectation``,
    ``statistics``, ``maximize``, ``objective``, ``regularization_gap``,
    ``empty_components``) and shares its E-step: only the coefficients (:meth:`prepare`)
    and the M-step differ.

    Parameters
    ----------
    family : Gaussian
        Covariance structure and ``reg_covar`` :math:`\epsilon`.
    n_components : int
        K (the truncation level for the Dirichlet process).
    prior : VariationalPrior
        The prior, in the engine's frame.
    """

    family: Gaussian
    n_components: int
    prior: VariationalPrior

    @property
    def mixture(self) -> Mixture:
        """The finite mixture whose E-step this model reuses."""
        return Mixture(self.family, self.n_components)

    # ------------------------------------------------------------------ E-step
    def log_weights(self, params: VariationalParams) -> np.ndarray:
        r""":math:`\mathbb E_q[\log \pi_k]`, (K,)."""
        concentration = params.weight_concentration
        if concentration.ndim == 1:
            return digamma(concentration) - digamma(concentration.sum())
        a, b = concentration
        digamma_total = digamma(a + b)
        sticks_left = np.cumsum(digamma(b) - digamma_total)
        return digamma(a) - digamma_total + np.concatenate([[0.0], sticks_left[:-1]])

    def bias(self, params: VariationalParams) -> np.ndarray:
        r""":math:`b_k = \rho_{nk} - \log\mathcal N(x_n \mid m_k, (\nu_k W_k)^{-1})`, (K,)."""
        n_features = params.components.means.shape[1]
        nu = params.degrees_of_freedom
        log_det_gap = _expected_log_det(nu, n_features) - n_features * np.log(nu)
        return (
            self.log_weights(params) - 0.5 * n_features / params.mean_precision
            + 0.5 * log_det_gap
        )

    def prepare(self, params: VariationalParams, like: Array) -> Any:
        """The family's E-step coefficients for :math:`\\rho_{nk}`, on the device of ``like``."""
        return self.family.prepare(params.components, like, bias=self.bias(params))

    def log_joint(self, X: Array, prepared: Any) -> Array:
        r""":math:`\rho_{nk}`, shape (n, K)."""
        return self.mixture.log_joint(X, prepared)

    def statistics(self, X: Array, resp: Array) -> MixtureStatistics:
        """Sufficient statistics of a chunk for responsibilities ``resp`` (weights included)."""
        return self.mixture.statistics(X, resp)

    def expectation(
        self, X: Array, sample_weight: Array | None, prepared: Any, estep=None
    ) -> ChunkExpectation:
        r"""E-step on a chunk: :math:`\gamma_{nk} \propto e^{\rho_{nk}}`, the statistics and
        :math:`\sum_n w_n \log\sum_k e^{\rho_{nk}}` (as ``log_likelihood``). ``estep`` (an
        :class:`emkit.em.strategies.EStepPass`) is handed on to :meth:`Mixture.expectation`,
        for the entropy of :math:`q(Z)` that incremental VBEM and ELBO tracking add up."""
        if estep is None:
            return self.mixture.expectation(X, sample_weight, prepared)
        return self.mixture.expectation(X, sample_weight, prepared, estep)

    # ------------------------------------------------------------------ M-step
    def maximize(self, stats: MixtureStatistics) -> VariationalParams:
        """The posterior hyperparameters from the statistics (float64, host)."""
        prior = self.prior
        gaussian: GaussianStatistics = stats.components
        nk = gaussian.resp_sum
        K = self.n_components
        kind = self.family.covariance_type
        if prior.weight_concentration_prior_type == "dirichlet_process":
            after = np.concatenate([np.cumsum(nk[::-1])[-2::-1], [0.0]])
            concentration = np.stack([1.0 + nk, prior.weight_concentration + after])
        else:
            concentration = prior.weight_concentration + nk
        beta = prior.mean_precision + nk
        means = (
            prior.mean_precision * prior.mean + nk[:, None] * gaussian.shift + gaussian.sum_x
        ) / beta[:, None]
        scatter = gaussian.about(means).sum_xx + prior.mean_precision * _outer(
            prior.mean - means, kind
        )
        n_features = means.shape[1]
        identity = _identity(kind, n_features)
        eps = self.family.reg_covar
        prior_scale = _as_statistic(prior.covariance, kind, n_features)
        if kind == "tied":
            nu = np.full(K, prior.degrees_of_freedom + nk.sum() / K)
            inverse_scale = prior_scale + (scatter.sum(axis=0) + nk.sum() * eps * identity) / K
        else:
            nu = prior.degrees_of_freedom + nk
            grow = (slice(None),) + (None,) * identity.ndim
            inverse_scale = prior_scale + scatter + nk[grow] * eps * identity
        if kind == "full":
            inverse_scale = 0.5 * (inverse_scale + inverse_scale.transpose(0, 2, 1))
            covariances = inverse_scale / nu[:, None, None]
        elif kind == "tied":
            inverse_scale = 0.5 * (inverse_scale + inverse_scale.T)
            covariances = inverse_scale / nu[0]
        elif kind == "diag":
            covariances = inverse_scale / nu[:, None]
        else:
            covariances = inverse_scale / (n_features * nu)
        components = GaussianParams(means, covariances, _precision_cholesky(covariances, kind))
        return VariationalParams(concentration, beta, nu, components)

    def regularization_gap(self, params: VariationalParams, stats: MixtureStatistics) -> float:
        r"""How far below the exact maximum of the bound the regularised M-step may land,
        per sample.

        Adding :math:`N_k\epsilon I` to :math:`W_k^{-1}` (ε = ``reg_covar``) moves
        :math:`q(\Lambda_k)` off the optimum; with :math:`\lambda_i` the eigenvalues of the
        unregularised :math:`W_k^{-1}` the bound loses exactly
        :math:`\frac{\nu_k}2 \sum_i [\log(1 + N_k\epsilon/\lambda_i) - N_k\epsilon/(\lambda_i
        + N_k\epsilon)]` (for ``'tied'``: K times this with :math:`N/K` in place of
        :math:`N_k`; for ``'diag'``/``'spherical'``: over the diagonal entries / D times the
        mean one). :func:`run_em` allows a decrease of that much.
        """
        eps = self.family.reg_covar
        if eps == 0.0:
            return 0.0
        nk = stats.components.resp_sum
        nu = params.degrees_of_freedom
        cov = params.components.covariances
        kind = self.family.covariance_type
        n_features = params.components.means.shape[1]
        K = self.n_components
        if kind == "full":
            added = nk * eps
            eigenvalues = np.linalg.eigvalsh(nu[:, None, None] * cov)
        elif kind == "tied":
            added = np.full(K, nk.sum() * eps / K)
            eigenvalues = np.broadcast_to(np.linalg.eigvalsh(nu[0] * cov), (K, n_features))
        elif kind == "diag":
            added = nk * eps
            eigenvalues = nu[:, None] * cov
        else:
            added = nk * eps
            eigenvalues = np.repeat((nu * cov)[:, None], n_features, axis=1)
        eigenvalues = eigenvalues - added[:, None]
        if (eigenvalues <= 0).any():
            return np.inf
        ratio = added[:, None] / eigenvalues
        loss = np.log1p(ratio) - ratio / (1.0 + ratio)
        return float(0.5 * (nu * loss.sum(axis=1)).sum() / nk.sum())

    def empty_components(self, stats: MixtureStatistics) -> np.ndarray:
        """Always none: a component that loses its data returns to the prior and stays
        available, which is how the variational posterior prunes components (never
        re-seeded, so :meth:`Mixture.reseed` is not needed)."""
        return np.empty(0, dtype=np.intp)

    # ------------------------------------------------------------------ the bound
    def kl_divergence(self, params: VariationalParams) -> float:
        r""":math:`\mathrm{KL}(q(\theta) \,\|\, p(\theta))`: weights plus Normal–Wishart."""
        return self._weights_kl(params) + float(self._normal_wishart_kl(params).sum())

    def objective(self, params: VariationalParams, result) -> float:
        r"""What VBEM increases: the bound per sample,
        :math:`(\sum_n w_n \log\sum_k e^{\rho_{nk}} - \mathrm{KL}) / \sum_n w_n`, from the
        pass ``result`` at ``params`` (the E-step's optimal :math:`q(Z)`)."""
        total = result.total_weight
        return (result.log_likelihood * total - self.kl_divergence(params)) / total

    def expected_log_likelihood(
        self, params: VariationalParams, stats: MixtureStatistics
    ) -> float:
        r"""The bound less the entropy of :math:`q(Z)`: :math:`\sum_{n,k} w_n q_{nk}
        \rho_{nk} - \mathrm{KL}(q(\theta) \,\|\, p(\theta))` (a total), for the
        responsibilities :math:`q_{nk}` behind ``stats`` and the posterior ``params``, from
        the statistics alone.

        With :math:`H` the entropy of those responsibilities, the bound of any pair
        :math:`(q(Z), q(\theta))` is ``expected_log_likelihood + H``, the free energy that
        the engine's incremental EM and ELBO tracking compute (the counterpart of
        :meth:`Mixture.expected_log_likelihood`); for the E-step's :math:`q(Z)` it is
        :meth:`objective` times the total weight.
        """
        gaussian = params.components
        kind = self.family.covariance_type
        n_features = gaussian.means.shape[1]
        centred = stats.components.about(gaussian.means)
        constant = (
            self.bias(params) + 0.5 * _log_det_precision(gaussian, kind, self.n_components)
            - 0.5 * n_features * np.log(2 * np.pi)
        )
        quadratic = _trace(_precisions(gaussian, kind), centred.sum_xx, kind)
        expected = centred.resp_sum @ constant - 0.5 * quadratic.sum()
        return float(expected) - self.kl_divergence(params)

    def n_parameters(self, params: VariationalParams) -> int:
        """K − 1 free weights plus the Gaussian family's parameters (for BIC/AIC)."""
        return self.mixture.n_parameters(params)

    def _weights_kl(self, params: VariationalParams) -> float:
        prior = self.prior.weight_concentration
        concentration = params.weight_concentration
        if concentration.ndim == 1:
            K = len(concentration)
            total = concentration.sum()
            log_norm = gammaln(total) - gammaln(concentration).sum()
            prior_log_norm = gammaln(K * prior) - K * gammaln(prior)
            expected = digamma(concentration) - digamma(total)
            return float(log_norm - prior_log_norm + (concentration - prior) @ expected)
        a, b = concentration
        digamma_total = digamma(a + b)
        per_stick = (
            -np.log(prior) - betaln(a, b) + (a - 1.0) * (digamma(a) - digamma_total)
            + (b - prior) * (digamma(b) - digamma_total)
        )
        return float(per_stick.sum())

    def _normal_wishart_kl(self, params: VariationalParams) -> np.ndarray:
        prior = self.prior
        gaussian = params.components
        kind = self.family.covariance_type
        n_features = gaussian.means.shape[1]
        nu, beta = params.degrees_of_freedom, params.mean_precision
        nu0, beta0 = prior.degrees_of_freedom, prior.mean_precision
        precisions = _precisions(gaussian, kind)
        log_det_scale = (
            _log_det_precision(gaussian, kind, self.n_components) - n_features * np.log(nu)
        )
        expected_log_det = _expected_log_det(nu, n_features) + log_det_scale
        prior_log_det_scale = -_log_det(prior.covariance, kind, n_features)
        prior_scale = _as_statistic(prior.covariance, kind, n_features)
        wishart = (
            _log_wishart_normalizer(nu, log_det_scale, n_features)
            - _log_wishart_normalizer(nu0, prior_log_det_scale, n_features)
            + 0.5 * (nu - nu0) * expected_log_det
            + 0.5 * (_trace(precisions, prior_scale, kind) - nu * n_features)
        )
        spread = _trace(precisions, _outer(gaussian.means - prior.mean, kind), kind)
        normal = 0.5 * (
            n_features * (beta0 / beta - 1.0 + np.log(beta / beta0)) + beta0 * spread
        )
        return wishart + normal


def _expected_log_det(nu: np.ndarray, n_features: int) -> np.ndarray:
    r""":math:`\sum_{i=0}^{D-1} \psi(\frac{\nu - i}2) + D \log 2` (:math:`\mathbb E\log|\Lambda|
    - \log|W|`)."""
    offsets = np.arange(n_features)[:, None]
    return digamma(0.5 * (np.atleast_1d(nu) - offsets)).sum(axis=0) + n_features * np.log(2.0)


def _log_wishart_normalizer(nu, log_det_scale, n_features: int) -> np.ndarray:
    r""":math:`\log B(W, \nu) = -\frac\nu2\log|W| - \frac{\nu D}2\log 2 - \frac{D(D-1)}4
    \log\pi - \sum_{i=0}^{D-1}\log\Gamma(\frac{\nu - i}2)`."""
    nu = np.atleast_1d(nu)
    offsets = np.arange(n_features)[:, None]
    return (
        -0.5 * nu * log_det_scale - 0.5 * nu * n_features * np.log(2.0)
        - 0.25 * n_features * (n_features - 1) * np.log(np.pi)
        - gammaln(0.5 * (nu - offsets)).sum(axis=0)
    )


def _precisions(gaussian: GaussianParams, kind: str) -> np.ndarray:
    r""":math:`\nu_k W_k = U_k U_k^\top` in the shape of the statistics: (K, D, D) or
    (D, D) for ``'tied'``, its diagonal (K, D), or the multiple of :math:`I` (K,)."""
    factors = gaussian.precisions_cholesky
    if kind == "full":
        return factors @ factors.transpose(0, 2, 1)
    if kind == "tied":
        return factors @ factors.T
    return factors**2


def _log_det_precision(gaussian: GaussianParams, kind: str, n_components: int) -> np.ndarray:
    r""":math:`\log|\nu_k W_k| = 2\sum_d \log (U_k)_{dd}`, (K,)."""
    factors = gaussian.precisions_cholesky
    n_features = gaussian.means.shape[1]
    if kind == "full":
        return 2.0 * np.log(np.diagonal(factors, axis1=1, axis2=2)).sum(axis=1)
    if kind == "tied":
        return np.full(n_components, 2.0 * np.log(np.diag(factors)).sum())
    if kind == "diag":
        return 2.0 * np.log(factors).sum(axis=1)
    return 2.0 * n_features * np.log(factors)


def _log_det(matrix: np.ndarray, kind: str, n_features: int) -> float:
    """Log-determinant of a prior scale given as scikit-learn's ``covariance_prior_``."""
    if kind in ("full", "tied"):
        return float(np.linalg.slogdet(matrix)[1])
    if kind == "diag":
        return float(np.log(matrix).sum())
    return float(n_features * np.log(matrix))


def _as_statistic(matrix: np.ndarray, kind: str, n_features: int) -> np.ndarray:
    """A prior scale in the shape of the statistics (``'spherical'``: its trace)."""
    return n_features * matrix if kind == "spherical" else matrix


def _identity(kind: str, n_features: int) -> np.ndarray:
    """:math:`I` in the shape of the statistics."""
    if kind in ("full", "tied"):
        return np.eye(n_features)
    if kind == "diag":
        return np.ones(n_features)
    return np.asarray(float(n_features))


def _outer(delta: np.ndarray, kind: str) -> np.ndarray:
    r""":math:`\delta_k\delta_k^\top` for (K, D) ``delta``, in the shape of the statistics."""
    if kind in ("full", "tied"):
        return delta[:, :, None] * delta[:, None, :]
    if kind == "diag":
        return delta**2
    return (delta**2).sum(axis=1)


def _trace(precisions: np.ndarray, matrices: np.ndarray, kind: str) -> np.ndarray:
    r""":math:`\operatorname{tr}(\nu_k W_k A_k)` per component, for :math:`A_k` in the shape
    of the statistics, or one :math:`A` for every component."""
    one = matrices.ndim < (3 if kind in ("full", "tied") else 2 if kind == "diag" else 1)
    if kind == "full":
        return np.einsum("kij,ij->k" if one else "kij,kij->k", precisions, matrices)
    if kind == "tied":
        return np.einsum("ij,ij->" if one else "ij,kij->k", precisions, matrices)
    if kind == "diag":
        return (precisions * matrices).sum(axis=-1)
    return precisions * matrices
