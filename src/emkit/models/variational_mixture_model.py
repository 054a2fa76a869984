r"""Mixtures of conjugate discrete families (Bernoulli, categorical, Poisson) by variational
Bayes EM."""

from __future__ import annotations

import dataclasses
from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array

from emkit._backend import Array, is_torch, to_numpy
from emkit.distributions.bernoulli import Bernoulli
from emkit.distributions.categorical import Categorical
from emkit.distributions.conjugate import (
    BetaBernoulli,
    BetaPosterior,
    ConjugateProduct,
    DirichletCategorical,
    DirichletPosterior,
    GammaPoisson,
    GammaPosterior,
)
from emkit.distributions.poisson import Poisson
from emkit.em.variational import (
    WEIGHT_PRIOR_TYPES,
    ConjugatePrior,
    VariationalMixture,
    VariationalParams,
)
from emkit.models._mixture import BaseMixture, to_like
from emkit.models.mixture_model import FAMILIES, KnownComponents, MixtureModel, _Table
from emkit.models.variational_gaussian_mixture import EFFECTIVE_SHARE

__all__ = ["CONJUGATE_FAMILIES", "VariationalMixtureModel"]

#: The families of ``VariationalMixtureModel(families=...)`` and their posteriors.
CONJUGATE_FAMILIES: dict[str, type] = {
    "bernoulli": BetaPosterior,
    "categorical": DirichletPosterior,
    "poisson": GammaPosterior,
}


class VariationalMixtureModel(MixtureModel):
    r"""Bayesian mixture of Bernoulli, categorical and Poisson columns, by variational Bayes.

    .. math::

        p(x) = \sum_k \pi_k \prod_g p_g(x_{C_g} \mid \theta_{gk}),

    with the columns of :class:`~emkit.MixtureModel` (``families``) restricted to the
    families that have a conjugate prior, which every component and column gets:

    * ``bernoulli``: :math:`\theta_{kd} \sim \mathrm{Beta}(a_0, b_0)`, posterior
      :math:`a_{kd} = a_0 + S_{kd}`, :math:`b_{kd} = b_0 + N_{kd} - S_{kd}`;
    * ``categorical``: :math:`\theta_{kj} \sim \mathrm{Dir}(\alpha_0, \ldots, \alpha_0)`,
      posterior :math:`\alpha_{kjc} = \alpha_0 + S_{kjc}`;
    * ``poisson``: :math:`\lambda_{kd} \sim \mathrm{Gamma}(\alpha_0, \beta_0)` (shape,
      rate), posterior :math:`\alpha_{kd} = \alpha_0 + S_{kd}`, :math:`\beta_{kd} = \beta_0
      + N_{kd}`

    (:math:`N_{kd} = \sum_n \gamma_{nk}` over the rows where column :math:`d` is observed,
    :math:`S_{kd} = \sum_n \gamma_{nk} x_{nd}`, :math:`S_{kjc}` the weighted count of level
    :math:`c`), and the weights a Dirichlet process (stick-breaking, truncated at
    ``n_components``) or a symmetric Dirichlet, as :class:`~emkit.VariationalGaussianMixture`.
    VBEM fits :math:`q(Z)\,q(\pi)\prod_k q(\theta_k)` by maximising the evidence lower bound
    (ELBO). Its E-step is :math:`\gamma_{nk} \propto \exp(\mathbb E_q[\log\pi_k] +
    \mathbb E_q[\log p(x_n \mid \theta_k)])` with the digamma forms

    .. math::

        \mathbb E_q[\log \mathrm{Bern}(x \mid \theta)] = x\,\psi(a) + (1 - x)\,\psi(b)
          - \psi(a + b), \qquad
        \mathbb E_q[\log \mathrm{Cat}(x \mid \theta)] = \psi(\alpha_x) - \psi(\textstyle
          \sum_c \alpha_c),

        \mathbb E_q[\log \mathrm{Poi}(x \mid \lambda)] = x\,(\psi(\alpha) - \log\beta)
          - \alpha/\beta - \log x!,

    missing cells (NaN) contributing nothing, and the bound is

    .. math::

        \mathcal L = \sum_n w_n \log \sum_k e^{\rho_{nk}} - \mathrm{KL}(q(\pi) \,\|\, p(\pi))
          - \sum_{k} \mathrm{KL}(q(\theta_k) \,\|\, p(\theta_k)),

    (:mod:`emkit.em.variational`, :mod:`emkit.distributions.conjugate`). Components the
    data do not need lose their responsibility and return to the prior, so
    ``n_components`` is an upper bound on the number of clusters;
    ``n_effective_components_`` counts those in use.

    Parameters
    ----------
    n_components : int, default=1
        Number of components K: an upper bound on the number of clusters.
    families : 'auto', str or dict, default='auto'
        Which family models which columns, as :class:`~emkit.MixtureModel`'s (category, text
        or object → categorical, bool → bernoulli, integer → poisson for ``'auto'``), among
        ``'bernoulli'``, ``'categorical'`` and ``'poisson'``; a column given (or chosen from
        its dtype) to another family is refused, naming it, before any work.
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}, \
default='dirichlet_process'
        Stick-breaking Dirichlet process or symmetric Dirichlet distribution on the weights.
    weight_concentration_prior : float or None, default=None
        :math:`\gamma_0` (or :math:`\alpha_0`), positive; ``None`` means
        ``1 / n_components``. Smaller values leave more components empty.
    bernoulli_prior : pair of float or None, default=None
        :math:`(a_0, b_0)`, positive: prior pseudo-counts of ones and zeros of every
        Bernoulli column; ``None`` means (1, 1), uniform on the mean.
    categorical_prior : float, default=1.0
        :math:`\alpha_0`, positive: prior pseudo-count of every level of every categorical
        column (1: uniform on the simplex).
    poisson_prior : pair of float or None, default=None
        :math:`(\alpha_0, \beta_0)`, positive: shape (prior events) and rate (prior
        observations) of the Gamma prior on every Poisson rate, of mean
        :math:`\alpha_0 / \beta_0`; ``None`` means (1, 1), one event in one observation.
    semi_supervised : bool, default=False
        Whether :meth:`fit`'s ``y`` gives the known component of some rows (-1 for the
        others), as :class:`~emkit.MixtureModel`: their :math:`q(z_n)` is fixed there.
    tol : float, default=1e-5
        Convergence threshold on the change of the ELBO per sample.
    max_iter, n_init, init_params, random_state, warm_start, verbose, verbose_interval, \
chunk_size, n_jobs, callbacks, monotonic
        As :class:`~emkit.MixtureModel` (``monotonic`` for the ELBO); the initialisation is
        an update of the prior with the statistics of the initial responsibilities.
    algorithm, learning_decay, learning_offset, n_samples_total
        The E-step and online variational Bayes (:meth:`partial_fit`), as
        :class:`~emkit.VariationalGaussianMixture`.

    Attributes
    ----------
    weights_ : array of shape (n_components,)
        Posterior mean weights.
    weight_concentration_ : array of shape (n_components,) or (2, n_components)
        :math:`\alpha`, or the sticks' :math:`a` and :math:`b` as two rows.
    bernoulli_means_, categorical_probabilities_, poisson_rates_ : array
        The posterior means :math:`\mathbb E_q[\theta]` (:math:`a/(a+b)`,
        :math:`\alpha_{kjc}/\sum_c \alpha_{kjc}`, :math:`\alpha/\beta`), shaped as
        :class:`~emkit.MixtureModel`'s parameters; defined for the families in use.
    bernoulli_posterior_a_, bernoulli_posterior_b_ : array of shape (K, D)
        :math:`a_{kd}`, :math:`b_{kd}`.
    categorical_posterior_concentration_ : array of shape (K, J, C_max)
        :math:`\alpha_{kjc}`, zero beyond each column's levels.
    poisson_posterior_shape_, poisson_posterior_rate_ : array of shape (K, D)
        :math:`\alpha_{kd}`, :math:`\beta_{kd}`.
    weight_concentration_prior_, bernoulli_prior_, categorical_prior_, poisson_prior_
        The prior used (defaults resolved).
    n_effective_components_ : int
        Number of components that explain at least 1 % of the data,
        :math:`N_k \ge 0.01 \sum_j N_j` with :math:`N_k` read off the weights' posterior
        (:math:`\alpha_k - \alpha_0`, or :math:`a_k - 1`).
    lower_bound_ : float
        ELBO per sample of the returned posterior (E-step included).
    lower_bounds_ : list of float
        The same after each iteration of the best initialisation.
    column_families_, categories_, n_categories_, converged_, n_iter_, n_features_in_, \
feature_names_in_
        As :class:`~emkit.MixtureModel`.

    Notes
    -----
    :meth:`score_samples` returns :math:`\log \sum_k \exp(\mathbb E_q[\log \pi_k] +
    \mathbb E_q[\log p(x_n \mid \theta_k)])`, the log-likelihood at the expected
    log-parameters (what scikit-learn's ``BayesianGaussianMixture`` and
    :class:`~emkit.VariationalGaussianMixture` report): by Jensen's inequality a lower bound
    of the log posterior predictive density :math:`\log \mathbb E_q[p(x_n \mid \pi,
    \theta)]`. :meth:`predict_proba` gives the variational responsibilities, :meth:`sample`
    draws from the mixture at the posterior means, and :meth:`bic` and :meth:`aic` count the
    posterior means' parameters (they are not model-selection criteria for a posterior:
    compare ``lower_bound_`` instead).

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import VariationalMixtureModel
    >>> rng = np.random.default_rng(0)
    >>> z = rng.integers(0, 2, 600)
    >>> X = (rng.random((600, 8)) < np.where(z[:, None], 0.85, 0.15)).astype(int)
    >>> model = VariationalMixtureModel(
    ...     6, families="bernoulli", weight_concentration_prior=0.01, max_iter=500,
    ...     random_state=0,
    ... ).fit(X)
    >>> model.n_effective_components_
    2
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseMixture._parameter_constraints,
        "families": [str, dict],
        "semi_supervised": ["boolean"],
        "weight_concentration_prior_type": [StrOptions(set(WEIGHT_PRIOR_TYPES))],
        "weight_concentration_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "bernoulli_prior": [None, "array-like"],
        "categorical_prior": [Interval(Real, 0.0, None, closed="neither")],
        "poisson_prior": [None, "array-like"],
        "n_samples_total": [None, Interval(Real, 0.0, None, closed="neither")],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        families="auto",
        weight_concentration_prior_type: str = "dirichlet_process",
        weight_concentration_prior: float | None = None,
        bernoulli_prior=None,
        categorical_prior: float = 1.0,
        poisson_prior=None,
        semi_supervised: bool = False,
        tol: float = 1e-5,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
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
        n_samples_total: float | None = None,
    ) -> None:
        self.n_components = n_components
        self.families = families
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.bernoulli_prior = bernoulli_prior
        self.categorical_prior = categorical_prior
        self.poisson_prior = poisson_prior
        self.semi_supervised = semi_supervised
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
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
        self.n_samples_total = n_samples_total

    def partial_fit(self, X, y=None, sample_weight=None):
        r"""One step of online variational Bayes on the mini-batch ``X``, as
        :meth:`emkit.VariationalGaussianMixture.partial_fit`: the statistics averaged with
        step sizes :math:`\rho_t = (t + t_0)^{-\kappa}` and the posterior of a data set of
        :math:`N` rows (``n_samples_total``, or the weight seen so far) taken from them.
        The first batch of a stream fixes the columns' families and categorical levels.

        Returns
        -------
        self
        """
        return super().partial_fit(X, y, sample_weight=sample_weight)

    # ------------------------------------------------------------------ layout
    def _resolve_families(self, table: _Table) -> list[str]:
        """:class:`~emkit.MixtureModel`'s families, refusing the non-conjugate ones."""
        families = super()._resolve_families(table)
        for j, name in enumerate(families):
            if name not in CONJUGATE_FAMILIES:
                raise ValueError(
                    f"Column {table.label(j)} is modelled by the {name!r} family, which has "
                    "no conjugate variational posterior in VariationalMixtureModel; it "
                    f"models {', '.join(map(repr, CONJUGATE_FAMILIES))} columns (for "
                    "Gaussian columns use VariationalGaussianMixture, for the others "
                    "MixtureModel)."
                )
        return families

    def _make_family(self, name: str):
        if name == "bernoulli":
            return Bernoulli()
        if name == "categorical":
            return Categorical(tuple(int(c) for c in self.n_categories_))
        return Poisson()

    # ------------------------------------------------------------------ the prior
    def _resolved_prior(self) -> dict[str, float | np.ndarray]:
        """The prior's hyperparameters, defaults resolved and checked (clear errors)."""
        concentration = self.weight_concentration_prior
        return {
            "weight_concentration_prior_": float(
                1.0 / self.n_components if concentration is None else concentration
            ),
            "bernoulli_prior_": _positive_pair(self.bernoulli_prior, "bernoulli_prior", "(a, b)"),
            "categorical_prior_": float(self.categorical_prior),
            "poisson_prior_": _positive_pair(self.poisson_prior, "poisson_prior", "(shape, rate)"),
        }

    def _conjugate(self, name: str, prior: dict):
        """The conjugate family of the family ``name``."""
        if name == "bernoulli":
            return BetaBernoulli(*prior["bernoulli_prior_"])
        if name == "categorical":
            return DirichletCategorical(
                tuple(int(c) for c in self.n_categories_), prior["categorical_prior_"]
            )
        return GammaPoisson(*prior["poisson_prior_"])

    def _model(self) -> VariationalMixture:
        """The VBEM model: the columns' families (labelled rows' components fixed while
        fitting with ``y``) and their conjugate priors."""
        prior = self._resolved_prior()
        groups = [(columns, self._conjugate(name, prior)) for name, columns in self._groups()]
        components = groups[0][1] if len(groups) == 1 else ConjugateProduct(groups)
        family = self._family()
        if getattr(self, "_known", None) is not None:
            family = KnownComponents(family)
        return VariationalMixture(
            family, self.n_components,
            ConjugatePrior(
                self.weight_concentration_prior_type,
                prior["weight_concentration_prior_"], components,
            ),
        )

    def _online_options(self) -> dict:
        """The VBEM M-step needs statistics at the scale of the data set."""
        total = None if self.n_samples_total is None else float(self.n_samples_total)
        return {"data_scale": True, "n_samples_total": total}

    # ------------------------------------------------------------------ BaseMixture hooks
    def _check_initial_values(self, n_features: int) -> None:
        """Check the prior before any work."""
        self._resolved_prior()

    def _apply_initial_values(
        self, params: VariationalParams | None, origin: np.ndarray | None
    ) -> VariationalParams:
        return params

    def _public_view(
        self, params: VariationalParams, origin: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        view = {
            "weights_": params.weights,
            "weight_concentration_": params.weight_concentration,
        }
        for (name, _), part in zip(self._groups(), self._parts(params.components), strict=True):
            for field in dataclasses.fields(part):
                view[f"{name}_posterior_{field.name}_"] = getattr(part, field.name)
            for field in dataclasses.fields(FAMILIES[name]):
                view[self._attribute(name, field.name)] = getattr(part, field.name)
        return view

    def _set_fitted(
        self, params: VariationalParams, origin: np.ndarray | None, like: Array
    ) -> None:
        for name, value in self._public_view(params, origin).items():
            setattr(self, name, to_like(value, like))
        for name, value in self._resolved_prior().items():
            setattr(self, name, value)
        counts = self._model().effective_counts(params)
        self.n_effective_components_ = int((counts >= EFFECTIVE_SHARE * counts.sum()).sum())

    def _fitted_params(self, origin: np.ndarray | None) -> VariationalParams:
        parts = []
        for name, _ in self._groups():
            posterior = CONJUGATE_FAMILIES[name]
            parts.append(posterior(**{
                field.name: to_numpy(
                    getattr(self, f"{name}_posterior_{field.name}_"), np.float64
                )
                for field in dataclasses.fields(posterior)
            }))
        return VariationalParams(
            to_numpy(self.weight_concentration_, np.float64), self._joined(parts)
        )


def _positive_pair(value, name: str, meaning: str) -> np.ndarray:
    """``value`` as two positive finite numbers (``None``: (1, 1)), or a clear error naming
    ``name``."""
    if value is None:
        return np.ones(2)
    pair = check_array(
        to_numpy(value) if is_torch(value) else value, dtype=np.float64,
        ensure_2d=False, ensure_all_finite=True, input_name=name,
    )
    if pair.shape != (2,) or not (pair > 0).all():
        raise ValueError(
            f"The parameter '{name}' should be a pair {meaning} of positive numbers, but got "
            f"{value!r}."
        )
    return pair
