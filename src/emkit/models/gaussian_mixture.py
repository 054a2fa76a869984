"""Gaussian mixture models fitted by EM."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array

from emkit._backend import Array, to_numpy
from emkit.distributions.gaussian import (
    COVARIANCE_TYPES,
    Gaussian,
    GaussianParams,
    precisions_from_cholesky,
)
from emkit.em.mixture import MixtureParams
from emkit.models._mixture import BaseMixture, to_like, weighted_mean

__all__ = ["GaussianMixture"]


class GaussianMixture(BaseMixture):
    r"""Gaussian mixture model, :math:`p(x) = \sum_k \pi_k \mathcal N(x \mid \mu_k, \Sigma_k)`.

    Fitted by Expectation–Maximization with the closed-form updates of Bishop (2006),
    §9.2.2: the E-step computes the responsibilities
    :math:`\gamma_{nk} = \pi_k \mathcal N(x_n \mid \mu_k, \Sigma_k) / \sum_j \pi_j
    \mathcal N(x_n \mid \mu_j, \Sigma_j)` (in log space), the M-step
    :math:`N_k = \sum_n \gamma_{nk}`, :math:`\pi_k = N_k / N`,
    :math:`\mu_k = \sum_n \gamma_{nk} x_n / N_k` and
    :math:`\Sigma_k = \sum_n \gamma_{nk} (x_n - \mu_k)(x_n - \mu_k)^\top / N_k + \epsilon I`.
    The API is that of :class:`sklearn.mixture.GaussianMixture`, and from the same starting
    parameters the iterates are the same.

    What differs from scikit-learn:

    * ``sample_weight`` in :meth:`fit` (an integer weight equals repeating the row);
    * the E-step runs in chunks of rows (``chunk_size``), so memory beyond the data is
      bounded by one chunk; statistics are summed in float64;
    * data are centred internally, so data far from the origin fit as well as centred data;
    * ``lower_bound_`` is the log-likelihood of the returned parameters, and
      ``lower_bounds_`` holds it after every iteration;
    * a decrease of the log-likelihood, which exact EM never produces, is reported
      (``monotonic``);
    * a component that loses all its responsibility is re-seeded on the worst-explained
      sample with the pooled covariance of the data, instead of staying dead;
    * PyTorch tensors (CPU or CUDA) are accepted; results come back on the same device;
    * missing values (NaN) are marginalised in the E-step and the M-step, never imputed
      first: a row contributes the density of its observed entries,
      :math:`\mathcal N(x_o \mid \mu_{k,o}, \Sigma_{k,oo})`, and expected statistics under
      the conditional distribution of its missing entries (Ghahramani and Jordan 1994), so
      EM stays exact and monotone; :meth:`impute` fills them with their conditional
      expectations (see :mod:`emkit.distributions.gaussian_missing`).

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Each component has its own general covariance matrix (``'full'``), all components
        share one (``'tied'``), each has a diagonal one (``'diag'``) or a single variance
        (``'spherical'``).
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood per sample between
        two iterations.
    reg_covar : float, default=1e-6
        Non-negative value added to the diagonal of every covariance: it keeps the
        likelihood away from its singularities (a component collapsing on a point, where
        the likelihood goes to infinity).
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the highest log-likelihood is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How the initial responsibilities are chosen: labels of one k-means run, one-hot at
        K points chosen by k-means++ or uniformly from the data, or uniform random numbers
        normalised per row. The first M-step on them gives the starting parameters.
    weights_init : array-like of shape (n_components,), default=None
        Starting weights (overrides those from ``init_params``).
    means_init : array-like of shape (n_components, n_features), default=None
        Starting means.
    precisions_init : array-like, default=None
        Starting precision matrices (inverse covariances), shaped as ``precisions_``.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation and of :meth:`sample`.
    warm_start : bool, default=False
        Start the next :meth:`fit` from the fitted parameters (with one initialisation).
    verbose : int, default=0
        1 prints the initialisation and every ``verbose_interval`` iterations; 2 adds the
        time and the change of the log-likelihood.
    verbose_interval : int, default=10
    chunk_size : int or None, default=None
        Rows per chunk of the E-step; ``None`` chooses it so that a chunk's working arrays
        hold about 2**19 numbers (more on a GPU). Results do not depend on it.
    n_jobs : int or None, default=None
        Threads that process chunks of NumPy data, each with single-threaded BLAS: ``None``
        or -1 for every available core (as scikit-learn's KMeans), 1 for one thread (BLAS
        may then use its own). Results do not depend on it: chunk statistics are summed in
        chunk order. PyTorch tensors are processed by PyTorch's own parallelism.
    callbacks : callable or list of callables, default=None
        Each is called with an :class:`emkit.em.EMIteration` after the initial E-step and
        after every iteration (its ``params`` is a dict of fitted-attribute names to
        arrays); returning ``True`` stops the fit.
    monotonic : {'warn', 'raise', 'ignore'}, default='warn'
        What happens when the log-likelihood decreases by more than rounding explains.
    algorithm : {'em', 'hard', 'stochastic', 'monte-carlo', 'annealed'} or EStep, default='em'
        The E-step (:mod:`emkit.em.strategies`): exact EM; classification EM (one-hot
        argmax responsibilities; ``lower_bound_`` is then the classification
        log-likelihood, which it never decreases); stochastic EM (one class drawn per row);
        Monte Carlo EM (an automatically growing number of draws per row, stopping when the
        change stays below ``tol`` for 3 iterations); deterministic annealing (tempered
        posteriors up to temperature 1, then exact EM). An
        :class:`emkit.em.strategies.EStep` instance sets a strategy's options. Draws are
        reproducible with ``random_state`` and do not depend on ``n_jobs``.
    learning_decay : float in (0.5, 1], default=0.7
        :math:`\kappa` of the step sizes :math:`\rho_t = (t + t_0)^{-\kappa}` of online EM
        (:meth:`partial_fit`, :meth:`fit_chunks`).
    learning_offset : float >= 0, default=10.0
        :math:`t_0` of the same step sizes: larger values make the first steps smaller.

    Attributes
    ----------
    weights_ : array of shape (n_components,)
    means_ : array of shape (n_components, n_features)
    covariances_ : array
        (K, D, D) for ``'full'``, (D, D) for ``'tied'``, (K, D) for ``'diag'``, (K,) for
        ``'spherical'``.
    precisions_ : array
        Inverses of the covariances, same shapes.
    precisions_cholesky_ : array
        Factors :math:`U_k` with :math:`U_k U_k^\top = \Sigma_k^{-1}`, same shapes.
    converged_ : bool
    n_iter_ : int
        Iterations of the best initialisation.
    lower_bound_ : float
        Mean log-likelihood per sample of the training data at the fitted parameters.
    lower_bounds_ : list of float
        The same after each iteration of the best initialisation.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has feature names (a DataFrame).

    Fitted arrays are float64, in the namespace and on the device of the training data.

    Examples
    --------
    >>> from emkit import GaussianMixture
    >>> from emkit.datasets import load_faithful
    >>> X = load_faithful().data
    >>> gmm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> gmm.weights_.round(2)
    array([0.36, 0.64])
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseMixture._parameter_constraints,
        "covariance_type": [StrOptions(set(COVARIANCE_TYPES))],
        "reg_covar": [Interval(Real, 0.0, None, closed="left")],
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
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
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
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

    # ------------------------------------------------------------------ BaseMixture hooks
    _missing_values: ClassVar[bool] = True

    def _family(self) -> Gaussian:
        return Gaussian(self.covariance_type, float(self.reg_covar))

    def _row_width(self, n_features: int) -> int:
        """The larger of the two E-step paths' working numbers per row: the residual path
        holds K residuals of D numbers, the expanded path the features (x, 1, quadratic
        terms) and K log-densities."""
        K, D = self.n_components, n_features
        quadratic = {"full": D * (D + 1) // 2, "tied": D * (D + 1) // 2, "diag": D}.get(
            self.covariance_type, 1
        )
        return max(K * (D + 1), D + 1 + quadratic + 2 * K)

    def _origin(self, X: Array, sample_weight: Array | None) -> np.ndarray:
        return weighted_mean(X, sample_weight)

    def _prediction_origin(self) -> np.ndarray:
        return to_numpy(self.weights_, np.float64) @ to_numpy(self.means_, np.float64)

    def _has_all_initial_values(self) -> bool:
        return all(
            value is not None
            for value in (self.weights_init, self.means_init, self.precisions_init)
        )

    def _check_initial_values(self, n_features: int) -> None:
        K = self.n_components
        self._initial_values = {}
        if self.weights_init is not None:
            weights = _checked_init(self.weights_init, "weights_init", (K,), ensure_2d=False)
            if (weights < 0).any() or (weights > 1).any():
                raise ValueError(
                    "The parameter 'weights_init' should be in the range [0, 1], but got "
                    f"min value {weights.min():.5f}, max value {weights.max():.5f}."
                )
            if not np.isclose(weights.sum(), 1.0, rtol=0, atol=1e-6):
                raise ValueError(
                    "The parameter 'weights_init' should be normalized, but got "
                    f"sum(weights) = {weights.sum():.5f}."
                )
            self._initial_values["weights"] = weights / weights.sum()
        if self.means_init is not None:
            self._initial_values["means"] = _checked_init(
                self.means_init, "means_init", (K, n_features)
            )
        if self.precisions_init is not None:
            shape = {
                "full": (K, n_features, n_features),
                "tied": (n_features, n_features),
                "diag": (K, n_features),
                "spherical": (K,),
            }[self.covariance_type]
            precisions = _checked_init(
                self.precisions_init, "precisions_init", shape,
                ensure_2d=False, allow_nd=True,
            )
            if self.covariance_type in ("full", "tied"):
                batch = precisions[None] if self.covariance_type == "tied" else precisions
                for k, matrix in enumerate(batch):
                    if not np.allclose(matrix, matrix.T):
                        where = "" if self.covariance_type == "tied" else f"[{k}]"
                        raise ValueError(f"precisions_init{where} is not symmetric.")
                    if np.linalg.eigvalsh(matrix).min() <= 0:
                        where = "" if self.covariance_type == "tied" else f"[{k}]"
                        raise ValueError(f"precisions_init{where} is not positive definite.")
            elif (precisions <= 0).any():
                raise ValueError("precisions_init must be positive.")
            self._initial_values["precisions"] = precisions

    def _apply_initial_values(
        self, params: MixtureParams | None, origin: np.ndarray | None
    ) -> MixtureParams:
        values = self._initial_values
        weights = values["weights"] if "weights" in values else params.weights
        means = (
            values["means"] - origin if "means" in values else params.components.means
        )
        if "precisions" in values:
            components = self._family().from_precisions(means, values["precisions"])
        else:
            components = GaussianParams(
                means, params.components.covariances, params.components.precisions_cholesky
            )
        return MixtureParams(weights, components)

    def _set_fitted(self, params: MixtureParams, origin: np.ndarray | None, like: Array) -> None:
        view = self._public_view(params, origin)
        for name, value in view.items():
            setattr(self, name, to_like(value, like))

    def _public_view(
        self, params: MixtureParams, origin: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        gaussian: GaussianParams = params.components
        prec_chol = gaussian.precisions_cholesky
        precisions = precisions_from_cholesky(prec_chol, self.covariance_type)
        return {
            "weights_": params.weights,
            "means_": gaussian.means + (0.0 if origin is None else origin),
            "covariances_": gaussian.covariances,
            "precisions_": precisions,
            "precisions_cholesky_": prec_chol,
        }

    def _fitted_params(self, origin: np.ndarray | None) -> MixtureParams:
        means = to_numpy(self.means_, np.float64)
        components = GaussianParams(
            means - (0.0 if origin is None else origin),
            to_numpy(self.covariances_, np.float64),
            to_numpy(self.precisions_cholesky_, np.float64),
        )
        return MixtureParams(to_numpy(self.weights_, np.float64), components)


def _checked_init(value, name: str, shape: tuple, **kwargs) -> np.ndarray:
    array = check_array(
        value, dtype=np.float64, input_name=name, ensure_all_finite=True, **kwargs
    )
    if array.shape != shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape {shape}, but got {array.shape}."
        )
    return array
