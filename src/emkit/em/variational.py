r"""Variational Bayes EM for a mixture of conjugate component families (Bishop 2006, §10.2).

The mixture weights :math:`\pi` get a symmetric Dirichlet prior :math:`\mathrm{Dir}(\pi \mid
\alpha_0)` or the stick-breaking construction of a Dirichlet process with concentration
:math:`\gamma_0`, and every component's parameters :math:`\theta_k` a prior conjugate to its
family: Normal–Wishart for Gaussians, Beta for Bernoulli columns, Dirichlet for categorical
columns, Gamma for Poisson rates, independent priors for a product of these
(:mod:`emkit.distributions.conjugate`). VBEM alternates two exact coordinate ascents on the
evidence lower bound :math:`\mathcal L(q) = \log p(X) - \mathrm{KL}(q \,\|\, p(Z, \theta
\mid X))` with :math:`q = q(Z)\,q(\pi)\prod_k q(\theta_k)`:

**E-step** (Bishop 10.46–10.49). :math:`q(z_n = k) = \gamma_{nk} \propto e^{\rho_{nk}}` with
the expected log joint

.. math::

    \rho_{nk} = \mathbb E_q[\log \pi_k] + \mathbb E_q[\log p(x_n \mid \theta_k)],

where the second term is the family's log-density with expected natural parameters
(:meth:`ConjugateFamily.prepare <emkit.distributions.conjugate.ConjugateFamily.prepare>`
with ``bias`` :math:`\mathbb E_q[\log \pi_k]`), so the E-step is the family's, through
:class:`emkit.em.Mixture`'s ``expectation``. :math:`\mathbb E_q[\log \pi_k] = \psi(\alpha_k)
- \psi(\sum_j \alpha_j)` for the Dirichlet, and :math:`\psi(a_k) - \psi(a_k + b_k) +
\sum_{j<k} [\psi(b_j) - \psi(a_j + b_j)]` for the sticks :math:`v_k \sim \mathrm{Beta}(a_k,
b_k)`, :math:`\pi_k = v_k \prod_{j<k} (1 - v_j)`.

**M-step** (Bishop 10.58). From the statistics, :math:`N_k = \sum_n w_n \gamma_{nk}` and the
family's,

.. math::

    \alpha_k = \alpha_0 + N_k \quad\text{or}\quad
      (a_k, b_k) = \big(1 + N_k,\ \gamma_0 + \textstyle\sum_{j>k} N_j\big),

and :math:`q(\theta_k)` = the prior updated with the family's statistics
(``ConjugateFamily.update``: posterior = prior + statistics).

**The bound.** With the optimal :math:`q(Z)`, :math:`\sum_n w_n \sum_k \gamma_{nk}\rho_{nk}
+ H[q(Z)] = \sum_n w_n \log \sum_k e^{\rho_{nk}}` — the E-step's summed log-normaliser — so

.. math::

    \mathcal L = \sum_n w_n \log \sum_k e^{\rho_{nk}}
      - \mathrm{KL}(q(\pi) \,\|\, p(\pi))
      - \sum_k \mathrm{KL}(q(\theta_k) \,\|\, p(\theta_k)),

with the family's KL terms and, for the weights, :math:`\log C(\alpha) - \log C(\alpha_0)
+ \sum_k (\alpha_k - \alpha_0)(\psi(\alpha_k) - \psi(\sum_j \alpha_j))` (:math:`C` the
Dirichlet normaliser). The Dirichlet process is truncated in :math:`q(Z)` only
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
from emkit.distributions.conjugate import ConjugateFamily, NormalWishart
from emkit.distributions.gaussian import Gaussian
from emkit.em.mixture import ChunkExpectation, Mixture, MixtureStatistics

__all__ = [
    "WEIGHT_PRIOR_TYPES",
    "ConjugatePrior",
    "VariationalMixture",
    "VariationalParams",
    "VariationalPrior",
]

WeightPriorType = Literal["dirichlet_process", "dirichlet_distribution"]
WEIGHT_PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


@dataclasses.dataclass(frozen=True)
class VariationalPrior:
    r"""The conjugate prior of a Gaussian mixture, in the engine's frame (rows shifted by
    the data's origin): weights and a Normal–Wishart per component.

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

    def conjugate(self, family: Gaussian) -> NormalWishart:
        """The components' Normal–Wishart prior, for the Gaussian ``family``."""
        return NormalWishart(
            family, self.mean_precision, self.mean, self.degrees_of_freedom, self.covariance
        )


@dataclasses.dataclass(frozen=True)
class ConjugatePrior:
    r"""A prior on the weights and a conjugate family for the components.

    Attributes
    ----------
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}
        As :class:`VariationalPrior`.
    weight_concentration : float
        :math:`\gamma_0` or :math:`\alpha_0`, positive.
    components : ConjugateFamily
        The components' prior (:mod:`emkit.distributions.conjugate`), whose ``family``
        gives the statistics the mixture's family collects (the mixture's family may wrap
        it, to fix the component of labelled rows, say).
    """

    weight_concentration_prior_type: WeightPriorType
    weight_concentration: float
    components: ConjugateFamily

    def conjugate(self, family: Any) -> ConjugateFamily:
        """The components' prior (whatever wrapper ``family`` puts around its family)."""
        return self.components


@dataclasses.dataclass(frozen=True)
class VariationalParams:
    r"""The variational posterior :math:`q(\pi)\prod_k q(\theta_k)` (float64, host).

    Attributes
    ----------
    weight_concentration : ndarray
        :math:`\alpha` (K,) for the Dirichlet, or the sticks' :math:`(a, b)` stacked (2, K).
    components : object
        The components' posterior, of the conjugate family's type
        (:class:`~emkit.distributions.conjugate.NormalWishartPosterior`, ...).
    """

    weight_concentration: np.ndarray
    components: Any

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
    r"""Variational Bayes EM for K components of a conjugate family: the model
    :func:`run_em` drives.

    It has :class:`emkit.em.Mixture`'s interface (``prepare``, ``expectation``,
    ``statistics``, ``maximize``, ``objective``, ``regularization_gap``,
    ``empty_components``) and shares its E-step: only the coefficients (:meth:`prepare`)
    and the M-step differ. Everything about the components is the conjugate family's
    (:attr:`posterior`); the weights' part is here.

    Parameters
    ----------
    family : ComponentFamily
        The component family whose E-step and statistics run (a Gaussian with its
        covariance structure and ``reg_covar``, a product of discrete families, ...).
    n_components : int
        K (the truncation level for the Dirichlet process).
    prior : VariationalPrior or ConjugatePrior
        The prior, in the engine's frame: ``weight_concentration_prior_type``,
        ``weight_concentration`` and ``conjugate(family)``, the components' conjugate family.
    """

    family: Any
    n_components: int
    prior: VariationalPrior | ConjugatePrior

    @property
    def posterior(self) -> ConjugateFamily:
        """The components' conjugate family: prior hyperparameters, update, KL."""
        return self.prior.conjugate(self.family)

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

    def effective_counts(self, params: VariationalParams) -> np.ndarray:
        r""":math:`N_k` behind the weights' posterior, (K,): :math:`\alpha_k - \alpha_0`, or
        :math:`a_k - 1` for the sticks."""
        concentration = params.weight_concentration
        if concentration.ndim == 1:
            return concentration - self.prior.weight_concentration
        return concentration[0] - 1.0

    def prepare(self, params: VariationalParams, like: Array) -> Any:
        """The family's E-step coefficients for :math:`\\rho_{nk}`, on the device of ``like``."""
        return self.posterior.prepare(params.components, like, bias=self.log_weights(params))

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
        posterior = self.posterior
        nk = posterior.counts(stats.components)
        if prior.weight_concentration_prior_type == "dirichlet_process":
            after = np.concatenate([np.cumsum(nk[::-1])[-2::-1], [0.0]])
            concentration = np.stack([1.0 + nk, prior.weight_concentration + after])
        else:
            concentration = prior.weight_concentration + nk
        return VariationalParams(concentration, posterior.update(stats.components))

    def regularization_gap(self, params: VariationalParams, stats: MixtureStatistics) -> float:
        """How far below the exact maximum of the bound the family's regularised update may
        land, per sample (``reg_covar`` of the Normal–Wishart; 0 otherwise): :func:`run_em`
        allows a decrease of that much."""
        return self.posterior.regularization_gap(params.components, stats.components)

    def empty_components(self, stats: MixtureStatistics) -> np.ndarray:
        """Always none: a component that loses its data returns to the prior and stays
        available, which is how the variational posterior prunes components (never
        re-seeded, so :meth:`Mixture.reseed` is not needed)."""
        return np.empty(0, dtype=np.intp)

    # ------------------------------------------------------------------ the bound
    def kl_divergence(self, params: VariationalParams) -> float:
        r""":math:`\mathrm{KL}(q(\theta) \,\|\, p(\theta))`: the weights' plus the
        components'."""
        return self._weights_kl(params) + float(
            self.posterior.kl_divergence(params.components).sum()
        )

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
        expected = self.posterior.expected_log_likelihood(
            params.components, stats.components, self.log_weights(params)
        )
        return expected - self.kl_divergence(params)

    def n_parameters(self, params: VariationalParams) -> int:
        """K − 1 free weights plus the family's parameters (for BIC/AIC): the family counts
        the posterior's mean parameters."""
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
