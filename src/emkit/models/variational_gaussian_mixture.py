"""Gaussian mixture models fitted by variational Bayes EM."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array

from emkit._backend import Array, as_backend, is_torch, to_numpy
from emkit.distributions.conjugate import NormalWishartPosterior
from emkit.distributions.gaussian import COVARIANCE_TYPES, Gaussian, precisions_from_cholesky
from emkit.em.mixture import Mixture
from emkit.em.variational import (
    WEIGHT_PRIOR_TYPES,
    VariationalMixture,
    VariationalParams,
    VariationalPrior,
)
from emkit.executors.memory import InMemory
from emkit.models._mixture import BaseMixture, to_like, weighted_mean

__all__ = ["EFFECTIVE_SHARE", "VariationalGaussianMixture"]

#: A component counts in ``n_effective_components_`` when it explains at least this share
#: (1 %) of the data: :math:`N_k \ge 0.01 \sum_j N_j`, with :math:`N_k = \beta_k - \beta_0` the
#: (weighted) number of samples the posterior assigns to it.
EFFECTIVE_SHARE = 0.01


class VariationalGaussianMixture(BaseMixture):
    r"""Bayesian Gaussian mixture fitted by variational Bayes EM (VBEM).

    The weights, means and precisions get conjugate priors — a Dirichlet process
    (stick-breaking, truncated at ``n_components``) or a symmetric Dirichlet on the weights,
    a Normal–Wishart per component — and VBEM fits the factorised posterior
    :math:`q(Z)\,q(\pi)\prod_k q(\mu_k, \Lambda_k)` by maximising the evidence lower bound
    (ELBO) :math:`\mathcal L \le \log p(X)` (Bishop 2006, §10.2). Each iteration:

    * M-step: :math:`N_k = \sum_n \gamma_{nk}`, :math:`\alpha_k = \alpha_0 + N_k` (or the
      sticks :math:`a_k = 1 + N_k`, :math:`b_k = \gamma_0 + \sum_{j>k} N_j`),
      :math:`\beta_k = \beta_0 + N_k`, :math:`\nu_k = \nu_0 + N_k`,
      :math:`m_k = (\beta_0 m_0 + N_k \bar x_k) / \beta_k`,
      :math:`W_k^{-1} = W_0^{-1} + N_k (S_k + \epsilon I) + \frac{\beta_0 N_k}{\beta_k}
      (\bar x_k - m_0)(\bar x_k - m_0)^\top`;
    * E-step: :math:`\gamma_{nk} \propto \exp(\mathbb E[\log\pi_k] + \frac12
      \mathbb E[\log|\Lambda_k|] - \frac D{2\beta_k} - \frac{\nu_k}2 (x_n - m_k)^\top W_k
      (x_n - m_k))`.

    Components the data do not need keep (almost) no responsibility and fall back to the
    prior: with a small ``weight_concentration_prior`` their weights go to about
    :math:`\gamma_0 / N`, so ``n_components`` is an upper bound on the number of clusters and
    ``n_effective_components_`` counts those in use. The formulas and the bound are in
    :mod:`emkit.em.variational`. The API is that of
    :class:`sklearn.mixture.BayesianGaussianMixture`, and from the same initial
    responsibilities the iterates are the same (``resp_init``).

    What differs from scikit-learn:

    * ``lower_bound_`` is the complete ELBO per sample of the returned posterior, with the
      E-step at that posterior; scikit-learn reports the total, one E-step earlier, without
      its constant terms (the relation is in ``docs/variational_gaussian_mixture.md``);
    * ``tol`` applies to the change of the ELBO per sample (default 1e-5);
    * a decrease of the ELBO, which VBEM never produces, is reported (``monotonic``);
    * other E-steps (``algorithm``): variational CEM, stochastic and Monte Carlo VBEM,
      deterministic annealing;
    * :meth:`partial_fit` and :meth:`fit_chunks`: online variational Bayes (stochastic
      variational inference), incremental VBEM, VBEM over a stream of chunks;
    * ``sample_weight`` in :meth:`fit` (an integer weight equals repeating the row; the
      default priors are then the weighted mean and covariance);
    * chunked E-step (``chunk_size``), data centred internally, PyTorch tensors accepted;
    * ``resp_init`` starts from given responsibilities.

    Parameters
    ----------
    n_components : int, default=1
        Number of components K: an upper bound on the number of clusters.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Structure of the precisions' posterior: a general Wishart per component, one shared
        by all components, or a Wishart whose scale matrix is diagonal or a multiple of the
        identity (as scikit-learn).
    tol : float, default=1e-5
        Convergence threshold on the change of the ELBO per sample between two iterations.
        scikit-learn's ``tol`` (default 1e-3) applies to the total bound, i.e. to the
        change per sample times N; components merge and empty slowly, so a per-sample 1e-3
        would stop while a cluster is still split.
    reg_covar : float, default=1e-6
        Non-negative :math:`\epsilon` added to the diagonal of each component's scatter
        :math:`S_k`, as scikit-learn. It makes the M-step slightly suboptimal; the
        monotonicity check allows for the (tiny) loss.
    max_iter : int, default=100
        Maximum number of VBEM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the highest final ELBO is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How the initial responsibilities are chosen (as scikit-learn); an M-step on them
        gives the starting posterior. Ignored when ``resp_init`` is given.
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}, \
default='dirichlet_process'
        Stick-breaking Dirichlet process (truncated at ``n_components``) or a symmetric
        Dirichlet distribution on the weights.
    weight_concentration_prior : float or None, default=None
        :math:`\gamma_0` (or :math:`\alpha_0`), positive; ``None`` means ``1 / n_components``.
        Smaller values leave more components empty.
    mean_precision_prior : float or None, default=None
        :math:`\beta_0`, positive; ``None`` means 1. Larger values pull the means towards
        ``mean_prior``.
    mean_prior : array-like of shape (n_features,) or None, default=None
        :math:`m_0`; ``None`` means the (weighted) mean of the data.
    degrees_of_freedom_prior : float or None, default=None
        :math:`\nu_0 > D - 1`; ``None`` means ``n_features``.
    covariance_prior : float or array-like or None, default=None
        :math:`W_0^{-1}`: (D, D) symmetric positive definite for ``'full'`` and ``'tied'``,
        (D,) positive for ``'diag'``, a positive float for ``'spherical'``. ``None`` means
        the (weighted, ``ddof=1``) covariance of the data, its diagonal or its mean variance;
        where that is singular (constant or collinear columns), ``reg_covar`` is added to
        its diagonal so that the prior is proper.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation and of :meth:`sample`.
    warm_start : bool, default=False
        Start the next :meth:`fit` from the fitted posterior (with one initialisation).
    verbose : int, default=0
        1 prints the initialisation and every ``verbose_interval`` iterations; 2 adds the
        time and the change of the ELBO.
    verbose_interval : int, default=10
    chunk_size : int or None, default=None
        Rows per chunk of the E-step; ``None`` chooses it automatically. Results do not
        depend on it.
    n_jobs : int or None, default=None
        Threads that process chunks of NumPy data, each with single-threaded BLAS: ``None``
        or -1 for every available core, 1 for one thread. Results do not depend on it.
    callbacks : callable or list of callables, default=None
        Each is called with an :class:`emkit.em.EMIteration` after the initial E-step and
        after every iteration (its ``params`` is a dict of fitted-attribute names to
        arrays, its ``lower_bound`` the ELBO per sample); returning ``True`` stops the fit.
    monotonic : {'warn', 'raise', 'ignore'}, default='warn'
        What happens when the ELBO decreases by more than rounding and ``reg_covar`` explain.
    resp_init : array-like of shape (n_samples, n_components) or None, default=None
        Initial responsibilities (non-negative; rows need not sum to one, and all-zero rows
        contribute nothing, as scikit-learn's ``'random_from_data'``). Overrides
        ``init_params``.
    algorithm : {'em', 'hard', 'stochastic', 'monte-carlo', 'annealed'} or EStep, \
default='em'
        The E-step (:mod:`emkit.em.strategies`), applied to the expected log joint
        :math:`\rho_{nk}`. ``'em'``: VBEM, the optimal :math:`q(z_n) \propto e^{\rho_{nk}}`;
        the ELBO never decreases (checked). ``'hard'``: variational CEM, :math:`q(Z)` a point
        mass at :math:`\arg\max_k \rho_{nk}`; the monitored bound is then
        :math:`\frac1N [\sum_n w_n \max_k \rho_{nk} - \mathrm{KL}(q(\theta) \,\|\,
        p(\theta))]`, which never decreases (checked). ``'stochastic'`` and
        ``'monte-carlo'``: the statistics of one class (or :math:`m_t` classes) drawn per row
        from :math:`q(z_n)`, an unbiased estimate of VBEM's; ``'annealed'``:
        :math:`q(z_n) \propto e^{\beta_t \rho_{nk}}` with :math:`\beta_t \uparrow 1`
        (deterministic annealing VB), then VBEM. For these three ``lower_bounds_`` hold the
        ELBO of each iterate (with the optimal :math:`q(Z)`), which is not checked while the
        passes are random or tempered. Random draws come from ``random_state``.
    learning_decay : float, default=0.7
        :math:`\kappa \in (1/2, 1]` of the step sizes :math:`\rho_t = (t + t_0)^{-\kappa}`
        of :meth:`partial_fit`.
    learning_offset : float, default=10.0
        :math:`t_0 \ge 0` of the same step sizes.
    n_samples_total : float or None, default=None
        :math:`N`, the size of the data set a stream of :meth:`partial_fit` mini-batches is
        drawn from: each mini-batch's statistics are scaled to :math:`N` rows. ``None``: the
        total weight of the mini-batches seen so far in the stream (the posterior of the
        data seen, which counts rows again on a second pass over them).

    Attributes
    ----------
    weights_ : array of shape (n_components,)
        Posterior mean weights (scikit-learn's ``weights_``).
    means_ : array of shape (n_components, n_features)
        :math:`m_k`.
    covariances_ : array
        :math:`(\nu_k W_k)^{-1}`, the inverse of the posterior mean precision: (K, D, D),
        (D, D), (K, D) or (K,) as in scikit-learn.
    precisions_ : array
        :math:`\nu_k W_k = \mathbb E[\Lambda_k]`, same shapes.
    precisions_cholesky_ : array
        :math:`U_k` with :math:`U_k U_k^\top = \nu_k W_k`, same shapes.
    weight_concentration_ : array of shape (n_components,) or (2, n_components)
        :math:`\alpha` for the Dirichlet distribution; for the Dirichlet process the sticks'
        Beta parameters :math:`a` and :math:`b` as two rows, which unpack as
        scikit-learn's tuple (``a, b = weight_concentration_``).
    mean_precision_ : array of shape (n_components,)
        :math:`\beta_k`.
    degrees_of_freedom_ : array of shape (n_components,), or float for ``'tied'``
        :math:`\nu_k`.
    weight_concentration_prior_, mean_precision_prior_, mean_prior_, \
degrees_of_freedom_prior_, covariance_prior_
        The prior used (defaults resolved), as scikit-learn.
    n_effective_components_ : int
        Number of components that explain at least :data:`EFFECTIVE_SHARE` (1 %) of the
        data, :math:`N_k = \beta_k - \beta_0 \ge 0.01 \sum_j N_j`. (Not ``weights_``: under
        the Dirichlet process an empty component placed before the used ones in the stick
        order keeps a posterior mean weight of about :math:`1 / (1 + \sum_{j>k} N_j)`.)
    converged_ : bool
    n_iter_ : int
        Iterations of the best initialisation.
    lower_bound_ : float
        ELBO per sample of the returned posterior (E-step included; for ``'hard'``, with
        the point-mass :math:`q(Z)`). After :meth:`partial_fit`: the mini-batch's estimate
        of the ELBO per sample at the posterior before the step.
    lower_bounds_ : list of float
        The same after each iteration of the best initialisation (each step of a stream).
    n_steps_ : int
        Steps of the current :meth:`partial_fit` stream.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has feature names (a DataFrame).

    Fitted arrays are float64, in the namespace and on the device of the training data.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import VariationalGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-5, 1, (200, 2)), rng.normal(5, 1, (200, 2))])
    >>> vgm = VariationalGaussianMixture(
    ...     n_components=6, weight_concentration_prior=0.01, random_state=0
    ... ).fit(X)
    >>> vgm.n_effective_components_
    2
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseMixture._parameter_constraints,
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "weight_concentration_prior_type": [StrOptions(set(WEIGHT_PRIOR_TYPES))],
        "weight_concentration_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_precision_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "mean_prior": [None, "array-like"],
        "degrees_of_freedom_prior": [None, Interval(Real, 0.0, None, closed="neither")],
        "covariance_prior": [None, "array-like", Interval(Real, 0.0, None, closed="neither")],
        "resp_init": [None, "array-like"],
        "n_samples_total": [None, Interval(Real, 0.0, None, closed="neither")],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-5,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weight_concentration_prior_type: str = "dirichlet_process",
        weight_concentration_prior: float | None = None,
        mean_precision_prior: float | None = None,
        mean_prior=None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior=None,
        random_state=None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        chunk_size: int | None = None,
        n_jobs: int | None = None,
        callbacks=None,
        monotonic: str = "warn",
        resp_init=None,
        algorithm="em",
        learning_decay: float = 0.7,
        learning_offset: float = 10.0,
        n_samples_total: float | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.n_jobs = n_jobs
        self.callbacks = callbacks
        self.monotonic = monotonic
        self.resp_init = resp_init
        self.algorithm = algorithm
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.n_samples_total = n_samples_total

    def partial_fit(self, X, y=None, sample_weight=None):
        r"""One step of online variational Bayes (Sato 2001; stochastic variational
        inference, Hoffman et al. 2013) on the mini-batch ``X``.

        An E-step on the batch at the current posterior, the statistics averaged as online
        EM's, :math:`s_t = (1 - \rho_t)\, s_{t-1} + \rho_t\, S(X)/W(X)` with
        :math:`\rho_t = (t + t_0)^{-\kappa}` (``learning_offset``, ``learning_decay``), and
        the VBEM M-step on :math:`N s_t`: the posterior of a data set of :math:`N` rows
        (``n_samples_total``, or the weight seen so far in the stream). Its natural
        parameters are the prior's plus :math:`N s_t`, so this is SVI's average
        :math:`\lambda_t = (1 - \rho_t) \lambda_{t-1} + \rho_t \hat\lambda(X)` of the
        natural parameters of each batch's posterior scaled to :math:`N` rows.

        The first call of a stream starts from the fitted posterior, or, on an unfitted
        model, resolves the default prior from this batch (its mean and covariance; pass
        ``mean_prior`` and ``covariance_prior`` to fix them) and initialises from it with
        ``init_params``. A fitted model keeps its prior. :meth:`fit` ends the stream.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
            With ``n_steps_``, ``lower_bound_`` (the batch's estimate of the ELBO per
            sample, :math:`\frac1{W(X)} \sum_{n} w_n \log\sum_k e^{\rho_{nk}} -
            \mathrm{KL}/N`, at the posterior before the step) and ``lower_bounds_``.
        """
        return super().partial_fit(X, y, sample_weight=sample_weight)

    # ------------------------------------------------------------------ BaseMixture hooks
    def _family(self) -> Gaussian:
        return Gaussian(self.covariance_type, float(self.reg_covar))

    def _model(self) -> VariationalMixture:
        """The VBEM model, its prior in the frame of the last fit's origin."""
        return VariationalMixture(self._family(), self.n_components, self._prior())

    def _row_width(self, n_features: int) -> int:
        K = self.n_components
        if self.covariance_type == "full":
            return K * (n_features + 2)
        return 2 * n_features + 2 + 2 * K

    def _origin(self, X: Array, sample_weight: Array | None) -> np.ndarray:
        """The data's weighted mean. Also resolves this fit's prior (its defaults are the
        data's mean and covariance), kept in the fitted ``*_prior_`` attributes."""
        origin = weighted_mean(X, sample_weight)
        self._resolve_prior(X, sample_weight, origin)
        self._prior_origin = origin
        return origin

    def _stream_origin(self, X: Array, sample_weight: Array | None, fitted: bool):
        """A stream from the fitted posterior keeps the fitted prior, in the frame of the
        last fit (the data's own frame for a model loaded from a file); a new one resolves
        its prior from the first batch (:meth:`_origin`)."""
        if fitted:
            return getattr(self, "_prior_origin", None)
        return self._origin(X, sample_weight)

    def _online_options(self) -> dict:
        """The VBEM M-step needs statistics at the scale of the data set."""
        total = None if self.n_samples_total is None else float(self.n_samples_total)
        return {"data_scale": True, "n_samples_total": total}

    def _prediction_origin(self) -> np.ndarray:
        return to_numpy(self.weights_, np.float64) @ to_numpy(self.means_, np.float64)

    def _check_initial_values(self, n_features: int) -> None:
        """Validate the user-given prior (before any work): shapes, signs, definiteness."""
        kind = self.covariance_type
        if self.mean_prior is not None:
            _checked_prior(self.mean_prior, "mean_prior", (n_features,))
        if (
            self.degrees_of_freedom_prior is not None
            and self.degrees_of_freedom_prior <= n_features - 1
        ):
            raise ValueError(
                "The parameter 'degrees_of_freedom_prior' should be greater than "
                f"n_features - 1 = {n_features - 1}, but got {self.degrees_of_freedom_prior!r}."
            )
        if self.covariance_prior is None:
            return
        if kind == "spherical":
            if not isinstance(self.covariance_prior, Real) or not self.covariance_prior > 0:
                raise ValueError(
                    "The parameter 'covariance_prior' should be a positive float for "
                    f"covariance_type='spherical', but got {self.covariance_prior!r}."
                )
            return
        shape = (n_features,) if kind == "diag" else (n_features, n_features)
        prior = _checked_prior(self.covariance_prior, "covariance_prior", shape)
        if kind == "diag":
            if (prior <= 0).any():
                raise ValueError(
                    "The parameter 'covariance_prior' should be positive for "
                    f"covariance_type='diag', but got min value {prior.min()!r}."
                )
            return
        if not np.allclose(prior, prior.T):
            raise ValueError(f"The parameter 'covariance_prior' ({kind}) is not symmetric.")
        if np.linalg.eigvalsh(prior).min() <= 0:
            raise ValueError(
                f"The parameter 'covariance_prior' ({kind}) is not positive definite."
            )

    def _initial_responsibilities(self, X, sample_weight, random_state):
        """``resp_init`` chunk by chunk when given, else as ``init_params`` says."""
        if self.resp_init is None:
            return super()._initial_responsibilities(X, sample_weight, random_state)
        resp = self.resp_init
        resp = check_array(
            to_numpy(resp) if is_torch(resp) else resp, dtype=np.float64,
            input_name="resp_init", ensure_all_finite=True,
        )
        shape = (X.shape[0], self.n_components)
        if resp.shape != shape:
            raise ValueError(
                f"The parameter 'resp_init' should have the shape {shape} (n_samples, "
                f"n_components), but got {resp.shape}."
            )
        if (resp < 0).any() or not resp.sum() > 0:
            raise ValueError(
                "The parameter 'resp_init' should be non-negative with a positive entry."
            )

        def resp_of(start, rows):
            return as_backend(resp[start : start + rows.shape[0]], like=rows)

        return resp_of

    def _apply_initial_values(
        self, params: VariationalParams | None, origin: np.ndarray | None
    ) -> VariationalParams:
        return params

    def _set_fitted(
        self, params: VariationalParams, origin: np.ndarray | None, like: Array
    ) -> None:
        for name, value in self._public_view(params, origin).items():
            setattr(self, name, to_like(value, like))
        counts = params.components.mean_precision - self.mean_precision_prior_
        self.n_effective_components_ = int((counts >= EFFECTIVE_SHARE * counts.sum()).sum())

    def _public_view(
        self, params: VariationalParams, origin: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        gaussian: NormalWishartPosterior = params.components
        prec_chol = gaussian.precisions_cholesky
        precisions = precisions_from_cholesky(prec_chol, self.covariance_type)
        nu = gaussian.degrees_of_freedom
        return {
            "weights_": params.weights,
            "means_": gaussian.means + (0.0 if origin is None else origin),
            "covariances_": gaussian.covariances,
            "precisions_": precisions,
            "precisions_cholesky_": prec_chol,
            "weight_concentration_": params.weight_concentration,
            "mean_precision_": gaussian.mean_precision,
            "degrees_of_freedom_": np.asarray(nu[0]) if self.covariance_type == "tied" else nu,
        }

    def _fitted_params(self, origin: np.ndarray | None) -> VariationalParams:
        concentration = to_numpy(self.weight_concentration_, np.float64)
        beta = to_numpy(self.mean_precision_, np.float64)
        nu = np.broadcast_to(to_numpy(self.degrees_of_freedom_, np.float64), beta.shape)
        components = NormalWishartPosterior(
            beta, nu.copy(),
            to_numpy(self.means_, np.float64) - (0.0 if origin is None else origin),
            to_numpy(self.covariances_, np.float64),
            to_numpy(self.precisions_cholesky_, np.float64),
        )
        return VariationalParams(concentration, components)

    # ------------------------------------------------------------------ the prior
    def _resolve_prior(self, X: Array, sample_weight: Array | None, origin: np.ndarray) -> None:
        """Set the ``*_prior_`` attributes (scikit-learn's names), defaults from the data."""
        n_features = X.shape[1]
        kind = self.covariance_type
        self.weight_concentration_prior_ = float(
            1.0 / self.n_components
            if self.weight_concentration_prior is None
            else self.weight_concentration_prior
        )
        self.mean_precision_prior_ = float(
            1.0 if self.mean_precision_prior is None else self.mean_precision_prior
        )
        self.degrees_of_freedom_prior_ = float(
            n_features if self.degrees_of_freedom_prior is None
            else self.degrees_of_freedom_prior
        )
        need_moments = self.mean_prior is None or self.covariance_prior is None
        moments = self._data_moments(X, sample_weight, origin) if need_moments else None
        if self.mean_prior is None:
            mean_prior = origin + moments.sum_x[0] / moments.resp_sum[0]
        else:
            mean_prior = _checked_prior(self.mean_prior, "mean_prior", (n_features,))
        if self.covariance_prior is None:
            covariance_prior = self._data_covariance(moments)
        elif kind == "spherical":
            covariance_prior = np.asarray(float(self.covariance_prior))
        else:
            covariance_prior = check_array(
                self.covariance_prior, dtype=np.float64, ensure_2d=False
            ).copy()
        self.mean_prior_ = to_like(mean_prior, X)
        self.covariance_prior_ = (
            float(covariance_prior) if kind == "spherical" else to_like(covariance_prior, X)
        )

    def _data_moments(self, X: Array, sample_weight: Array | None, origin: np.ndarray):
        """Weighted count, sum and second moments of the rows about ``origin`` (one
        Gaussian component's statistics, in the structure of ``covariance_type``)."""
        kind = "full" if self.covariance_type == "tied" else self.covariance_type
        one = Mixture(Gaussian(kind), 1)
        data = InMemory(
            X, sample_weight, origin=origin, chunk_size=self.chunk_size,
            row_width=self._row_width(X.shape[1]), n_jobs=self.n_jobs,
        )
        ones = np.ones((1, 1))
        stats = data.statistics(
            one, lambda start, rows: as_backend(np.repeat(ones, rows.shape[0], 0), like=rows)
        )
        return stats.components

    def _data_covariance(self, moments) -> np.ndarray:
        """The data's covariance with ``ddof=1`` (frequency weights), in the structure of
        ``covariance_type``, made positive definite with ``reg_covar`` where singular."""
        count = float(moments.resp_sum[0])
        if count <= 1.0:
            raise ValueError(
                "The default covariance_prior (the data's covariance, ddof=1) needs sample "
                f"weights summing to more than 1, but they sum to {count!r}. Pass "
                "covariance_prior."
            )
        kind = self.covariance_type
        total, second = moments.sum_x[0], moments.sum_xx[0]
        n_features = len(total)
        if kind in ("full", "tied"):
            covariance = (second - np.outer(total, total) / count) / (count - 1.0)
            covariance = 0.5 * (covariance + covariance.T)
            eigenvalues = np.linalg.eigvalsh(covariance)
            singular = eigenvalues[0] <= n_features * np.finfo(float).eps * eigenvalues[-1]
            regulariser = self.reg_covar * np.eye(n_features)
        elif kind == "diag":
            covariance = (second - total**2 / count) / (count - 1.0)
            singular = (covariance <= 0).any()
            regulariser = self.reg_covar
        else:
            covariance = np.asarray(
                (second - total @ total / count) / (count - 1.0) / n_features
            )
            singular = covariance <= 0
            regulariser = self.reg_covar
        if singular:
            covariance = covariance + regulariser
            if self.reg_covar == 0:
                raise ValueError(
                    "The data's covariance, the default covariance_prior, is singular "
                    "(constant or collinear columns) and reg_covar=0. Pass covariance_prior, "
                    "set reg_covar > 0, or remove those columns."
                )
        return covariance

    def _prior(self) -> VariationalPrior:
        """The fitted prior, its mean moved into the frame of the last fit's origin (the
        original frame for a model loaded from a file, which only predicts)."""
        origin = getattr(self, "_prior_origin", 0.0)
        covariance = to_numpy(self.covariance_prior_, np.float64)
        return VariationalPrior(
            self.weight_concentration_prior_type,
            self.weight_concentration_prior_,
            self.mean_precision_prior_,
            to_numpy(self.mean_prior_, np.float64) - origin,
            self.degrees_of_freedom_prior_,
            covariance,
        )


def _checked_prior(value, name: str, shape: tuple) -> np.ndarray:
    array = check_array(
        to_numpy(value) if is_torch(value) else value, dtype=np.float64, input_name=name,
        ensure_2d=False, ensure_all_finite=True,
    )
    if array.shape != shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape {shape}, but got {array.shape}."
        )
    return array
