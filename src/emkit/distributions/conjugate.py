r"""Conjugate variational posteriors: the variational Bayes side of a component family.

Variational Bayes EM (:mod:`emkit.em.variational`) puts a prior :math:`p(\theta_k)` on every
component's parameters and fits a factorised posterior :math:`q(Z) \prod_k q(\theta_k)`. When
the prior is conjugate to the family, the optimal :math:`q(\theta_k)` stays in the prior's
family and its hyperparameters are the prior's plus the family's own additive sufficient
statistics, *posterior = prior + statistics*. What the E-step needs of it is the expected
log-density

.. math::

    \mathbb E_q[\log p(x \mid \theta_k)]
      = \mathbb E_q[\eta_k]^\top t(x) - \mathbb E_q[A(\eta_k)] + h(x),

the family's log-density with the natural parameters :math:`\eta` and the log-partition
:math:`A` replaced by their expectations under :math:`q`. So the E-step *is* the family's
(``features``, ``log_prob``, ``statistics``) with coefficients from :meth:`prepare`: chunking,
threads, float32 data, PyTorch tensors and the marginalisation of missing cells (NaN) carry
over unchanged. A conjugate family (:class:`ConjugateFamily`) holds the prior's
hyperparameters and provides

* ``update(stats)``: the posterior from the statistics of the responsibilities;
* ``prepare(posterior, like, bias)`` and ``expected_log_prob(X, posterior)``: the E-step
  coefficients of :math:`\mathbb E_q[\log p(x \mid \theta_k)]` + ``bias``, and its (n, K)
  values;
* ``kl_divergence(posterior)``: :math:`\mathrm{KL}(q(\theta_k) \,\|\, p(\theta_k))` per
  component, the posterior's price in the evidence lower bound;
* ``expected_log_likelihood(posterior, stats, bias)``: :math:`\sum_{nk} q_{nk}\,
  (\mathbb E_q[\log p(x_n \mid \theta_k)] + b_k)` from the statistics alone;
* ``counts(stats)``: :math:`N_k` as the statistics count it, for the weights' update;
* ``regularization_gap(posterior, stats)``: how far below the exact optimum a regularised
  update lands (0 for an exact one).

============================= ============== ==============================================
family                        prior          :math:`\mathbb E_q[\log p(x \mid \theta)]`
============================= ============== ==============================================
:class:`BetaBernoulli`        Beta(a, b)     :math:`x\psi(a) + (1 - x)\psi(b) - \psi(a + b)`
:class:`DirichletCategorical` Dirichlet(α)   :math:`\psi(\alpha_x) - \psi(\sum_c \alpha_c)`
:class:`GammaPoisson`         Gamma(α, β)    :math:`x(\psi(\alpha) - \log\beta) - \alpha/\beta
                                             - \log x!`
:class:`NormalWishart`        Normal–Wishart see the class
:class:`ConjugateProduct`     the groups'    the sum over the groups
============================= ============== ==============================================

Every posterior exposes its mean parameters :math:`\mathbb E_q[\theta]` under the family's
own parameter names (``means``, ``probabilities``, ``rates``; the Normal–Wishart's ``means``
and ``covariances`` :math:`(\nu_k W_k)^{-1}`), so that the family's ``sample`` and
``n_parameters`` apply to it.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import betaln, digamma, gammaln

from emkit._backend import Array
from emkit.distributions.bernoulli import Bernoulli
from emkit.distributions.categorical import Categorical, CategoricalStatistics
from emkit.distributions.gaussian import (
    Gaussian,
    GaussianParams,
    GaussianStatistics,
    _precision_cholesky,
    precisions_from_cholesky,
)
from emkit.distributions.poisson import Poisson
from emkit.distributions.product import (
    ColumnStatistics,
    IndependentColumns,
    Product,
    ProductParams,
    ProductStatistics,
)

__all__ = [
    "BetaBernoulli",
    "BetaPosterior",
    "ConjugateFamily",
    "ConjugateProduct",
    "DirichletCategorical",
    "DirichletPosterior",
    "GammaPoisson",
    "GammaPosterior",
    "NormalWishart",
    "NormalWishartPosterior",
]


class ConjugateFamily(abc.ABC):
    """A component family with a conjugate prior: what variational Bayes EM needs of it.

    Subclasses are frozen dataclasses of the prior's hyperparameters (and of the family's
    options).

    Attributes
    ----------
    family : ComponentFamily
        The component family whose E-step (``features``, ``log_prob``, ``statistics``) runs
        with the coefficients of :meth:`prepare`, and whose statistics :meth:`update` takes.
    """

    family: Any

    @abc.abstractmethod
    def prepare(self, posterior: Any, like: Array, bias: np.ndarray | None = None) -> Any:
        r"""The family's E-step coefficients of :math:`\mathbb E_q[\log p(x \mid
        \theta_k)]` + ``bias`` (K,), in the namespace and dtype of ``like``."""

    @abc.abstractmethod
    def update(self, stats: Any) -> Any:
        """The posterior from the family's statistics (prior + statistics)."""

    @abc.abstractmethod
    def kl_divergence(self, posterior: Any) -> np.ndarray:
        r""":math:`\mathrm{KL}(q(\theta_k) \,\|\, p(\theta_k))`, (K,)."""

    @abc.abstractmethod
    def expected_log_likelihood(
        self, posterior: Any, stats: Any, bias: np.ndarray | None = None
    ) -> float:
        r""":math:`\sum_n \sum_k q_{nk}\, (\mathbb E_q[\log p(x_n \mid \theta_k)] + b_k)`
        for the responsibilities :math:`q_{nk}` behind ``stats`` (a total), with ``bias``
        :math:`b` (K,) as in :meth:`prepare` (none: 0)."""

    def counts(self, stats: Any) -> np.ndarray:
        r""":math:`N_k = \sum_n q_{nk}` as the statistics count it, (K,): the weights'
        update takes the same :math:`N_k` as the components'."""
        return stats.resp_sum

    def _biased(self, value: float, stats: Any, bias: np.ndarray | None) -> float:
        r"""``value`` plus :math:`\sum_k N_k b_k`."""
        return value if bias is None else value + float(self.counts(stats) @ bias)

    def expected_log_prob(self, X: Array, posterior: Any) -> Array:
        r""":math:`\mathbb E_q[\log p(x_n \mid \theta_k)]` for every row and component,
        (n, K), in the namespace, on the device and in the dtype of ``X``; missing cells
        (NaN) are marginalised where the family does so."""
        family = self.family
        prepared = self.prepare(posterior, X)
        return family.log_prob(family.features(X, prepared), prepared)

    def regularization_gap(self, posterior: Any, stats: Any) -> float:
        """0: the update is the exact optimum of the bound."""
        return 0.0


# ---------------------------------------------------------------------- independent columns
class _ConjugateColumns(ConjugateFamily):
    r"""A family of independent columns
    (:class:`~emkit.distributions.product.IndependentColumns`) with a conjugate prior per
    component and column: its E-step
    coefficients and expected log-likelihood are the family's, with
    :math:`\mathbb E_q[\eta_{kd}]` and :math:`\mathbb E_q[A(\eta_{kd})]`."""

    family: IndependentColumns

    @abc.abstractmethod
    def expected_natural(self, posterior: Any) -> np.ndarray:
        r""":math:`\mathbb E_q[\eta_{kd}]`, (K, 1, D)."""

    @abc.abstractmethod
    def expected_log_partition(self, posterior: Any) -> np.ndarray:
        r""":math:`\mathbb E_q[A(\eta_{kd})]`, (K, D)."""

    def prepare(self, posterior: Any, like: Array, bias: np.ndarray | None = None) -> Any:
        r""":math:`\mathbb E_q[\eta]` and :math:`\mathbb E_q[A]` as the family's
        coefficients."""
        return self.family.coefficients(
            self.expected_natural(posterior), self.expected_log_partition(posterior), like, bias
        )

    def expected_log_likelihood(
        self, posterior: Any, stats: ColumnStatistics, bias: np.ndarray | None = None
    ) -> float:
        r""":math:`\sum_{kd} [\mathbb E_q[\eta_{kd}] S_{kd} - N_{kd}\,
        \mathbb E_q[A(\eta_{kd})]] + \sum_{nk} q_{nk} h(x_n)` (+ :math:`\sum_k N_k b_k`)."""
        value = self.family.expected_value(
            self.expected_natural(posterior), self.expected_log_partition(posterior), stats
        )
        return self._biased(value, stats, bias)


@dataclasses.dataclass(frozen=True)
class BetaPosterior:
    r""":math:`q(\theta_{kd}) = \mathrm{Beta}(a_{kd}, b_{kd})`, each (K, D), float64."""

    a: np.ndarray
    b: np.ndarray

    @property
    def means(self) -> np.ndarray:
        r""":math:`\mathbb E_q[\theta_{kd}] = a_{kd} / (a_{kd} + b_{kd})` (the Bernoulli
        family's parameter)."""
        return self.a / (self.a + self.b)


@dataclasses.dataclass(frozen=True)
class BetaBernoulli(_ConjugateColumns):
    r"""Bernoulli columns with a :math:`\mathrm{Beta}(a_0, b_0)` prior on every mean.

    With :math:`N_{kd} = \sum_n q_{nk}` over the rows where column :math:`d` is observed and
    :math:`S_{kd} = \sum_n q_{nk} x_{nd}`, the posterior is

    .. math::

        a_{kd} = a_0 + S_{kd}, \qquad b_{kd} = b_0 + N_{kd} - S_{kd};

    under it :math:`\mathbb E_q[\log\theta] = \psi(a) - \psi(a + b)` and
    :math:`\mathbb E_q[\log(1 - \theta)] = \psi(b) - \psi(a + b)`, so

    .. math::

        \mathbb E_q[\log p(x \mid \theta)] = x\,(\psi(a) - \psi(a + b))
          + (1 - x)\,(\psi(b) - \psi(a + b)),

    the Bernoulli log-density with log-odds :math:`\psi(a) - \psi(b)` and log-partition
    :math:`\psi(a + b) - \psi(b)`. Per component and column,

    .. math::

        \mathrm{KL}(\mathrm{Beta}(a, b) \,\|\, \mathrm{Beta}(a_0, b_0))
          = \log\frac{B(a_0, b_0)}{B(a, b)} + (a - a_0)\,\psi(a) + (b - b_0)\,\psi(b)
          - (a + b - a_0 - b_0)\,\psi(a + b).

    Parameters
    ----------
    a, b : float
        Positive :math:`a_0`, :math:`b_0`: prior pseudo-counts of ones and of zeros.
    """

    a: float = 1.0
    b: float = 1.0

    @property
    def family(self) -> Bernoulli:
        """The bernoulli family of the columns."""
        return Bernoulli()

    def update(self, stats: ColumnStatistics) -> BetaPosterior:
        r""":math:`a = a_0 + S`, :math:`b = b_0 + N - S`."""
        ones = stats.sums[:, 0, :]
        return BetaPosterior(self.a + ones, self.b + (stats.counts - ones))

    def expected_natural(self, posterior: BetaPosterior) -> np.ndarray:
        r""":math:`\mathbb E_q[\operatorname{logit}\theta] = \psi(a) - \psi(b)`, (K, 1, D)."""
        return (digamma(posterior.a) - digamma(posterior.b))[:, None, :]

    def expected_log_partition(self, posterior: BetaPosterior) -> np.ndarray:
        r""":math:`\mathbb E_q[-\log(1 - \theta)] = \psi(a + b) - \psi(b)`, (K, D)."""
        return digamma(posterior.a + posterior.b) - digamma(posterior.b)

    def kl_divergence(self, posterior: BetaPosterior) -> np.ndarray:
        r"""The Beta KL of every column, summed per component, (K,)."""
        a, b = posterior.a, posterior.b
        kl = (
            betaln(self.a, self.b) - betaln(a, b) + (a - self.a) * digamma(a)
            + (b - self.b) * digamma(b) - (a + b - self.a - self.b) * digamma(a + b)
        )
        return kl.sum(axis=1)


@dataclasses.dataclass(frozen=True)
class GammaPosterior:
    r""":math:`q(\lambda_{kd}) = \mathrm{Gamma}(\alpha_{kd}, \beta_{kd})` (shape, rate), each
    (K, D), float64."""

    shape: np.ndarray
    rate: np.ndarray

    @property
    def rates(self) -> np.ndarray:
        r""":math:`\mathbb E_q[\lambda_{kd}] = \alpha_{kd} / \beta_{kd}` (the Poisson
        family's parameter)."""
        return self.shape / self.rate


@dataclasses.dataclass(frozen=True)
class GammaPoisson(_ConjugateColumns):
    r"""Poisson columns with a :math:`\mathrm{Gamma}(\alpha_0, \beta_0)` prior (shape, rate)
    on every rate.

    The posterior is :math:`\alpha_{kd} = \alpha_0 + S_{kd}` (events) and
    :math:`\beta_{kd} = \beta_0 + N_{kd}` (observations); under it
    :math:`\mathbb E_q[\log\lambda] = \psi(\alpha) - \log\beta` and
    :math:`\mathbb E_q[\lambda] = \alpha / \beta`, so

    .. math::

        \mathbb E_q[\log p(x \mid \lambda)] = x\,(\psi(\alpha) - \log\beta)
          - \frac\alpha\beta - \log x!,

    and per component and column

    .. math::

        \mathrm{KL}(\mathrm{Gamma}(\alpha, \beta) \,\|\, \mathrm{Gamma}(\alpha_0, \beta_0))
          = (\alpha - \alpha_0)\,\psi(\alpha) - \log\Gamma(\alpha) + \log\Gamma(\alpha_0)
          + \alpha_0 \log\frac{\beta}{\beta_0} + \alpha\,\frac{\beta_0 - \beta}{\beta}.

    Parameters
    ----------
    shape, rate : float
        Positive :math:`\alpha_0` (prior events) and :math:`\beta_0` (prior observations).
    """

    shape: float = 1.0
    rate: float = 1.0

    @property
    def family(self) -> Poisson:
        """The poisson family of the columns."""
        return Poisson()

    def update(self, stats: ColumnStatistics) -> GammaPosterior:
        r""":math:`\alpha = \alpha_0 + S`, :math:`\beta = \beta_0 + N`."""
        return GammaPosterior(self.shape + stats.sums[:, 0, :], self.rate + stats.counts)

    def expected_natural(self, posterior: GammaPosterior) -> np.ndarray:
        r""":math:`\mathbb E_q[\log\lambda] = \psi(\alpha) - \log\beta`, (K, 1, D)."""
        return (digamma(posterior.shape) - np.log(posterior.rate))[:, None, :]

    def expected_log_partition(self, posterior: GammaPosterior) -> np.ndarray:
        r""":math:`\mathbb E_q[\lambda] = \alpha / \beta`, (K, D)."""
        return posterior.rates

    def kl_divergence(self, posterior: GammaPosterior) -> np.ndarray:
        r"""The Gamma KL of every column, summed per component, (K,)."""
        shape, rate = posterior.shape, posterior.rate
        kl = (
            (shape - self.shape) * digamma(shape) - gammaln(shape) + gammaln(self.shape)
            + self.shape * (np.log(rate) - np.log(self.rate))
            + shape * (self.rate - rate) / rate
        )
        return kl.sum(axis=1)


# ---------------------------------------------------------------------- categorical columns
@dataclasses.dataclass(frozen=True)
class DirichletPosterior:
    r""":math:`q(\theta_{kj}) = \mathrm{Dir}(\alpha_{kj})`, (K, J, C_max), zero beyond each
    column's levels, float64."""

    concentration: np.ndarray

    @property
    def probabilities(self) -> np.ndarray:
        r""":math:`\mathbb E_q[\theta_{kjc}] = \alpha_{kjc} / \sum_{c'} \alpha_{kjc'}` (the
        categorical family's parameter)."""
        return self.concentration / self.concentration.sum(axis=2, keepdims=True)


@dataclasses.dataclass(frozen=True)
class DirichletCategorical(ConjugateFamily):
    r"""Categorical columns with a symmetric :math:`\mathrm{Dir}(\alpha_0, \ldots,
    \alpha_0)` prior on every component's and column's level probabilities.

    With the level counts :math:`S_{kjc} = \sum_n q_{nk} [x_{nj} = c]`, the posterior is
    :math:`\alpha_{kjc} = \alpha_0 + S_{kjc}`; with :math:`\alpha_{kj\cdot} = \sum_c
    \alpha_{kjc}`,

    .. math::

        \mathbb E_q[\log p(x \mid \theta)] = \sum_j \psi(\alpha_{kjx_j})
          - \psi(\alpha_{kj\cdot}),

    the categorical log-density with :math:`\log\theta` replaced by
    :math:`\mathbb E_q[\log\theta]` (a missing cell contributes nothing), and per component
    and column

    .. math::

        \mathrm{KL}(\mathrm{Dir}(\alpha) \,\|\, \mathrm{Dir}(\alpha_0))
          = \log\Gamma(\alpha_\cdot) - \sum_c \log\Gamma(\alpha_c) - \log\Gamma(C\alpha_0)
          + C \log\Gamma(\alpha_0) + \sum_c (\alpha_c - \alpha_0)
          (\psi(\alpha_c) - \psi(\alpha_\cdot)).

    Parameters
    ----------
    n_levels : sequence of int
        :math:`C_j`, the levels of every column.
    concentration : float
        Positive :math:`\alpha_0`: prior pseudo-count of every level.
    """

    n_levels: tuple
    concentration: float = 1.0

    @property
    def family(self) -> Categorical:
        """The categorical family of the columns."""
        return Categorical(tuple(self.n_levels))

    def update(self, stats: CategoricalStatistics) -> DirichletPosterior:
        r""":math:`\alpha_{kjc} = \alpha_0 + S_{kjc}` on the existing levels."""
        family = self.family
        return DirichletPosterior(
            family._padded(stats.counts) + self.concentration * family._valid
        )

    def _levels(self, posterior: DirichletPosterior) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`\alpha_{kjc}` of the existing levels (K, L), and
        :math:`\alpha_{kj\cdot}` level by level (K, L)."""
        concentration = posterior.concentration
        column = np.repeat(np.arange(len(self.n_levels)), self.n_levels)
        return concentration[:, self.family._valid], concentration.sum(axis=2)[:, column]

    def _expected_log_probabilities(self, posterior: DirichletPosterior) -> np.ndarray:
        r""":math:`\mathbb E_q[\log\theta_{kjc}] = \psi(\alpha_{kjc}) - \psi(\alpha_{kj\cdot})`
        of the existing levels, (K, L)."""
        concentration, totals = self._levels(posterior)
        return digamma(concentration) - digamma(totals)

    def prepare(
        self, posterior: DirichletPosterior, like: Array, bias: np.ndarray | None = None
    ) -> Any:
        r""":math:`\mathbb E_q[\log\theta]` as the categorical family's coefficients."""
        return self.family.coefficients(
            self._expected_log_probabilities(posterior), like, bias
        )

    def expected_log_likelihood(
        self, posterior: DirichletPosterior, stats: CategoricalStatistics,
        bias: np.ndarray | None = None,
    ) -> float:
        r""":math:`\sum_{kjc} S_{kjc}\, \mathbb E_q[\log\theta_{kjc}]` (+ :math:`\sum_k N_k
        b_k`)."""
        value = float((stats.counts * self._expected_log_probabilities(posterior)).sum())
        return self._biased(value, stats, bias)

    def kl_divergence(self, posterior: DirichletPosterior) -> np.ndarray:
        r"""The Dirichlet KL of every column, summed per component, (K,)."""
        concentration, totals = self._levels(posterior)
        prior = self.concentration
        levels = np.asarray(self.n_levels, dtype=np.float64)
        per_level = (concentration - prior) * (
            digamma(concentration) - digamma(totals)
        ) - gammaln(concentration)
        per_column = gammaln(posterior.concentration.sum(axis=2)) - gammaln(levels * prior)
        return per_level.sum(axis=1) + per_column.sum(axis=1) + (levels * gammaln(prior)).sum()


# ---------------------------------------------------------------------- products
@dataclasses.dataclass(frozen=True, init=False)
class ConjugateProduct(ConjugateFamily):
    r"""Independent conjugate families on disjoint groups of columns.

    :math:`q(\theta_k) = \prod_g q(\theta_{gk})`: the expected log-density, the expected
    log-likelihood and the KL divergence are sums over the groups, and each group's
    posterior is its own update (its parameters appear in no other group's terms).

    Parameters
    ----------
    groups : sequence of (columns, ConjugateFamily)
        As :class:`~emkit.distributions.Product`'s groups, with conjugate families.
    """

    groups: tuple

    def __init__(self, groups: Sequence[tuple[Sequence[int], ConjugateFamily]]) -> None:
        normalised = tuple(
            (tuple(int(c) for c in columns), family) for columns, family in groups
        )
        object.__setattr__(self, "groups", normalised)

    @property
    def family(self) -> Product:
        """The :class:`~emkit.distributions.Product` of the groups' families."""
        return Product([(columns, conjugate.family) for columns, conjugate in self.groups])

    def _zipped(self, values: tuple):
        return zip((conjugate for _, conjugate in self.groups), values, strict=True)

    def prepare(self, posterior: ProductParams, like: Array, bias: np.ndarray | None = None):
        """Each group's coefficients; the bias is folded into the first group's."""
        return tuple(
            conjugate.prepare(part, like, bias if g == 0 else None)
            for g, (conjugate, part) in enumerate(self._zipped(posterior.parts))
        )

    def counts(self, stats: ProductStatistics) -> np.ndarray:
        """:math:`N_k` of the first group (every group sees the same responsibilities)."""
        return self.groups[0][1].counts(stats.parts[0])

    def update(self, stats: ProductStatistics) -> ProductParams:
        """Each group's update."""
        return ProductParams(
            tuple(conjugate.update(part) for conjugate, part in self._zipped(stats.parts))
        )

    def kl_divergence(self, posterior: ProductParams) -> np.ndarray:
        """The sum of the groups' KL divergences, (K,)."""
        return sum(
            conjugate.kl_divergence(part) for conjugate, part in self._zipped(posterior.parts)
        )

    def expected_log_likelihood(
        self, posterior: ProductParams, stats: ProductStatistics,
        bias: np.ndarray | None = None,
    ) -> float:
        """The sum of the groups' expected log-likelihoods (the bias counted in the first
        group's)."""
        return float(
            sum(
                conjugate.expected_log_likelihood(part, part_stats, bias if g == 0 else None)
                for g, ((conjugate, part), part_stats) in enumerate(
                    zip(self._zipped(posterior.parts), stats.parts, strict=True)
                )
            )
        )

    def regularization_gap(self, posterior: ProductParams, stats: ProductStatistics) -> float:
        """The sum of the groups' gaps."""
        return float(
            sum(
                conjugate.regularization_gap(part, part_stats)
                for (conjugate, part), part_stats in zip(
                    self._zipped(posterior.parts), stats.parts, strict=True
                )
            )
        )


# ---------------------------------------------------------------------- Gaussian
@dataclasses.dataclass(frozen=True)
class NormalWishartPosterior:
    r""":math:`q(\mu_k, \Lambda_k) = \mathcal N(\mu_k \mid m_k, (\beta_k\Lambda_k)^{-1})\,
    \mathcal W(\Lambda_k \mid W_k, \nu_k)` (float64, host).

    Attributes
    ----------
    mean_precision : ndarray of shape (K,)
        :math:`\beta_k`.
    degrees_of_freedom : ndarray of shape (K,)
        :math:`\nu_k` (K equal values for ``'tied'``).
    means : ndarray of shape (K, D)
        :math:`m_k`.
    covariances, precisions_cholesky : ndarray
        :math:`(\nu_k W_k)^{-1}` (scikit-learn's ``covariances_``) and the upper factors
        :math:`U_k U_k^\top = \nu_k W_k`, in the shape of the covariance structure.
    """

    mean_precision: np.ndarray
    degrees_of_freedom: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray

    @property
    def gaussian(self) -> GaussianParams:
        r"""The Gaussian parameters :math:`(m_k, (\nu_k W_k)^{-1})` whose log-density, plus
        a constant per component, is :math:`\mathbb E_q[\log \mathcal N(x \mid \mu_k,
        \Lambda_k^{-1})]`."""
        return GaussianParams(self.means, self.covariances, self.precisions_cholesky)


@dataclasses.dataclass(frozen=True)
class NormalWishart(ConjugateFamily):
    r"""Gaussian components with a Normal–Wishart prior (Bishop 2006, §10.2).

    Prior :math:`\mathcal N(\mu_k \mid m_0, (\beta_0\Lambda_k)^{-1})\,\mathcal W(\Lambda_k
    \mid W_0, \nu_0)`. The expected log-density (Bishop 10.64–10.65)

    .. math::

        \mathbb E_q[\log \mathcal N(x \mid \mu_k, \Lambda_k^{-1})]
          = \tfrac12 \mathbb E[\log|\Lambda_k|] - \tfrac D2 \log 2\pi - \tfrac{D}{2\beta_k}
          - \tfrac{\nu_k}2 (x - m_k)^\top W_k (x - m_k)

    is a quadratic form in :math:`x` of exactly the Gaussian family's shape,
    :math:`\log \mathcal N(x \mid m_k, (\nu_k W_k)^{-1}) + c_k` with

    .. math::

        c_k = -\tfrac{D}{2\beta_k} + \tfrac12 \Big(\sum_{i=0}^{D-1} \psi\big(\tfrac{\nu_k -
          i}2\big) + D \log 2 - D \log \nu_k\Big),

    so the E-step is :class:`~emkit.distributions.Gaussian`'s with ``bias`` :math:`c_k`.
    From the statistics :math:`N_k` and the sums about a reference, recentred on the new
    mean (no division by :math:`N_k`, so empty components are harmless), the update is
    (Bishop 10.60–10.63)

    .. math::

        \beta_k = \beta_0 + N_k, \qquad \nu_k = \nu_0 + N_k, \qquad
        m_k = \frac{\beta_0 m_0 + \sum_n q_{nk} x_n}{\beta_k},

        W_k^{-1} = W_0^{-1} + \sum_n q_{nk} (x_n - m_k)(x_n - m_k)^\top
          + \beta_0 (m_0 - m_k)(m_0 - m_k)^\top + N_k \epsilon I,

    Bishop's :math:`W_0^{-1} + N_k S_k + \frac{\beta_0 N_k}{\beta_k} (\bar x_k - m_0)
    (\bar x_k - m_0)^\top` after completing the square, plus the regulariser :math:`\epsilon`
    = ``reg_covar`` added to :math:`S_k` as scikit-learn does. The posterior is stored as
    scikit-learn's: ``covariances`` :math:`(\nu_k W_k)^{-1}` and their precision Cholesky
    factors. Covariance structures, as scikit-learn:

    * ``'diag'`` and ``'spherical'``: the same Wishart with :math:`W_k` restricted to
      diagonal matrices (multiples of :math:`I`); the best such :math:`W_k` keeps the
      diagonal (the mean of the diagonal) of :math:`W_k^{-1}` above, and
      :math:`\nu_k = \nu_0 + N_k` stays optimal;
    * ``'tied'``: one :math:`q(\Lambda) = \mathcal W(W, \nu)` shared by the K components
      (each with its own prior): :math:`\nu = \nu_0 + N/K`, :math:`W^{-1} = W_0^{-1} +
      \frac1K \sum_k (\ldots)_k`.

    Per component, :math:`\mathrm{KL} = \mathrm{KL}_{\mathcal N} + \mathrm{KL}_{\mathcal W}`
    (Bishop B.79–B.82) with

    .. math::

        \mathrm{KL}_{\mathcal N} = \tfrac12 \Big(\frac{D\beta_0}{\beta_k} - D
          + D \log\frac{\beta_k}{\beta_0} + \beta_0 \nu_k (m_k - m_0)^\top W_k (m_k - m_0)
          \Big),

        \mathrm{KL}_{\mathcal W} = \log B(W_k, \nu_k) - \log B(W_0, \nu_0)
          + \tfrac{\nu_k - \nu_0}2 \mathbb E[\log|\Lambda_k|]
          + \tfrac{\nu_k}2 \big(\operatorname{tr}(W_0^{-1} W_k) - D\big),

    :math:`\log B(W, \nu) = -\frac\nu2 \log|W| - \frac{\nu D}2 \log 2 - \log\Gamma_D(\frac\nu2)`
    and :math:`\mathbb E[\log|\Lambda_k|] = \sum_{i=0}^{D-1} \psi(\frac{\nu_k - i}2) + D\log 2
    + \log|W_k|`.

    Parameters
    ----------
    family : Gaussian
        Covariance structure and ``reg_covar`` :math:`\epsilon`.
    mean_precision : float
        :math:`\beta_0 > 0`.
    mean : ndarray of shape (n_features,)
        :math:`m_0`, in the frame of the rows the E-step sees.
    degrees_of_freedom : float
        :math:`\nu_0 > D - 1`.
    covariance : ndarray
        :math:`W_0^{-1}`: (D, D) for ``'full'`` and ``'tied'``, (D,) for ``'diag'``, a 0-d
        array for ``'spherical'`` (the multiple of :math:`I`), as scikit-learn's
        ``covariance_prior_``.
    """

    family: Gaussian
    mean_precision: float
    mean: np.ndarray
    degrees_of_freedom: float
    covariance: np.ndarray

    def _constant(self, posterior: NormalWishartPosterior, bias: np.ndarray) -> np.ndarray:
        r"""``bias`` plus :math:`c_k`, (K,)."""
        n_features = posterior.means.shape[1]
        nu = posterior.degrees_of_freedom
        log_det_gap = _expected_log_det(nu, n_features) - n_features * np.log(nu)
        return bias - 0.5 * n_features / posterior.mean_precision + 0.5 * log_det_gap

    def prepare(
        self, posterior: NormalWishartPosterior, like: Array, bias: np.ndarray | None = None
    ) -> Any:
        r"""The Gaussian family's coefficients of :math:`(m_k, (\nu_k W_k)^{-1})`, with
        ``bias`` + :math:`c_k`."""
        bias = np.zeros(len(posterior.mean_precision)) if bias is None else bias
        return self.family.prepare(posterior.gaussian, like, bias=self._constant(posterior, bias))

    def update(self, stats: GaussianStatistics) -> NormalWishartPosterior:
        """The Normal–Wishart posterior from the Gaussian statistics (see the class)."""
        nk = stats.resp_sum
        K = len(nk)
        kind = self.family.covariance_type
        beta = self.mean_precision + nk
        means = (
            self.mean_precision * self.mean + nk[:, None] * stats.shift + stats.sum_x
        ) / beta[:, None]
        scatter = stats.about(means).sum_xx + self.mean_precision * _outer(
            self.mean - means, kind
        )
        n_features = means.shape[1]
        identity = _identity(kind, n_features)
        eps = self.family.reg_covar
        prior_scale = _as_statistic(self.covariance, kind, n_features)
        if kind == "tied":
            nu = np.full(K, self.degrees_of_freedom + nk.sum() / K)
            inverse_scale = prior_scale + (scatter.sum(axis=0) + nk.sum() * eps * identity) / K
        else:
            nu = self.degrees_of_freedom + nk
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
        return NormalWishartPosterior(
            beta, nu, means, covariances, _precision_cholesky(covariances, kind)
        )

    def regularization_gap(
        self, posterior: NormalWishartPosterior, stats: GaussianStatistics
    ) -> float:
        r"""How far below the exact maximum of the bound the regularised update may land,
        per sample.

        Adding :math:`N_k\epsilon I` to :math:`W_k^{-1}` (ε = ``reg_covar``) moves
        :math:`q(\Lambda_k)` off the optimum; with :math:`\lambda_i` the eigenvalues of the
        unregularised :math:`W_k^{-1}` the bound loses exactly
        :math:`\frac{\nu_k}2 \sum_i [\log(1 + N_k\epsilon/\lambda_i) - N_k\epsilon/(\lambda_i
        + N_k\epsilon)]` (for ``'tied'``: K times this with :math:`N/K` in place of
        :math:`N_k`; for ``'diag'``/``'spherical'``: over the diagonal entries / D times the
        mean one).
        """
        eps = self.family.reg_covar
        if eps == 0.0:
            return 0.0
        nk = stats.resp_sum
        nu = posterior.degrees_of_freedom
        cov = posterior.covariances
        kind = self.family.covariance_type
        n_features = posterior.means.shape[1]
        K = len(nk)
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

    def expected_log_likelihood(
        self, posterior: NormalWishartPosterior, stats: GaussianStatistics,
        bias: np.ndarray | None = None,
    ) -> float:
        r""":math:`\sum_k [N_k (b_k + c_k + \frac12 \log|\nu_k W_k| - \frac D2 \log 2\pi)
        - \frac12 \operatorname{tr}(\nu_k W_k \sum_n q_{nk} (x_n - m_k)(x_n - m_k)^\top)]`."""
        kind = self.family.covariance_type
        n_features = posterior.means.shape[1]
        K = len(posterior.mean_precision)
        centred = stats.about(posterior.means)
        constant = (
            self._constant(posterior, np.zeros(K) if bias is None else bias)
            + 0.5 * _log_det_precision(posterior, kind, K)
            - 0.5 * n_features * np.log(2 * np.pi)
        )
        quadratic = _trace(_precisions(posterior, kind), centred.sum_xx, kind)
        return float(centred.resp_sum @ constant - 0.5 * quadratic.sum())

    def kl_divergence(self, posterior: NormalWishartPosterior) -> np.ndarray:
        r""":math:`\mathrm{KL}_{\mathcal N} + \mathrm{KL}_{\mathcal W}` per component, (K,)."""
        kind = self.family.covariance_type
        n_features = posterior.means.shape[1]
        nu, beta = posterior.degrees_of_freedom, posterior.mean_precision
        nu0, beta0 = self.degrees_of_freedom, self.mean_precision
        precisions = _precisions(posterior, kind)
        log_det_scale = (
            _log_det_precision(posterior, kind, len(beta)) - n_features * np.log(nu)
        )
        expected_log_det = _expected_log_det(nu, n_features) + log_det_scale
        prior_log_det_scale = -_log_det(self.covariance, kind, n_features)
        prior_scale = _as_statistic(self.covariance, kind, n_features)
        wishart = (
            _log_wishart_normalizer(nu, log_det_scale, n_features)
            - _log_wishart_normalizer(nu0, prior_log_det_scale, n_features)
            + 0.5 * (nu - nu0) * expected_log_det
            + 0.5 * (_trace(precisions, prior_scale, kind) - nu * n_features)
        )
        spread = _trace(precisions, _outer(posterior.means - self.mean, kind), kind)
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


def _precisions(posterior: NormalWishartPosterior, kind: str) -> np.ndarray:
    r""":math:`\nu_k W_k = U_k U_k^\top` in the shape of the statistics: (K, D, D) or
    (D, D) for ``'tied'``, its diagonal (K, D), or the multiple of :math:`I` (K,)."""
    return precisions_from_cholesky(posterior.precisions_cholesky, kind)


def _log_det_precision(
    posterior: NormalWishartPosterior, kind: str, n_components: int
) -> np.ndarray:
    r""":math:`\log|\nu_k W_k| = 2\sum_d \log (U_k)_{dd}`, (K,)."""
    factors = posterior.precisions_cholesky
    n_features = posterior.means.shape[1]
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
