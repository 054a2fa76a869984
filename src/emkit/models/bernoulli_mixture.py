"""Mixtures of multivariate Bernoulli distributions, fitted by EM."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from emkit._backend import is_torch, namespace
from emkit.distributions.bernoulli import Bernoulli, BernoulliParams
from emkit.em.mixture import MixtureParams
from emkit.models.mixture_model import FamilyMixture, checked_parameter, checked_weights

__all__ = ["BernoulliMixture"]


class BernoulliMixture(FamilyMixture):
    r"""Mixture of multivariate Bernoulli distributions (latent class analysis of binary
    data), :math:`p(x) = \sum_k \pi_k \prod_d \theta_{kd}^{x_d} (1 - \theta_{kd})^{1 - x_d}`.

    Fitted by EM as in Bishop (2006), §9.3.3: the E-step computes the responsibilities
    :math:`\gamma_{nk} \propto \pi_k p(x_n \mid \theta_k)` in log space, where
    :math:`\log p(x \mid \theta_k) = x^\top \operatorname{logit}\theta_k + \sum_d \log(1 -
    \theta_{kd})` is one matrix product for all components; the M-step is
    :math:`N_k = \sum_n \gamma_{nk}`, :math:`\pi_k = N_k / N` and

    .. math::

        \theta_{kd} = \frac{\sum_n \gamma_{nk} x_{nd} + \alpha}{N_k + 2\alpha},

    the MAP estimate under a Beta(1 + α, 1 + α) prior, which keeps every mean strictly
    between 0 and 1 (Bishop's maximum likelihood is :math:`\alpha \to 0`). The same API and
    conveniences as :class:`~emkit.GaussianMixture`: chunked E-step, sample weights,
    PyTorch tensors, monotonicity check, re-seeding of empty components, callbacks. Missing
    values (NaN) are marginalised: a missing cell contributes to neither the log-density nor
    the sums, so :math:`\theta_{kd}` is estimated from the rows where column :math:`d` is
    observed; :meth:`impute` replaces it by :math:`\sum_k p(k \mid x_o)\, \theta_{kd}`.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    alpha : float, default=1e-6
        Positive pseudo-count: α ones and α zeros are added to every component and column.
    binarize : float or None, default=None
        Threshold: values above it become 1, the others 0 (as scikit-learn's
        ``BernoulliNB``). ``None`` takes the data as they are; they must then be 0 or 1.
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
        How the initial responsibilities are chosen, as :class:`~emkit.GaussianMixture`.
    weights_init : array-like of shape (n_components,), default=None
    means_init : array-like of shape (n_components, n_features), default=None
        Starting means, strictly between 0 and 1.
    random_state, warm_start, verbose, verbose_interval, chunk_size, n_jobs, callbacks, monotonic,
    algorithm, learning_decay, learning_offset
        As :class:`~emkit.GaussianMixture`.

    Attributes
    ----------
    weights_ : array of shape (n_components,)
    means_ : array of shape (n_components, n_features)
        :math:`\theta_{kd} = p(x_d = 1 \mid z = k)`.
    converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_, feature_names_in_
        As :class:`~emkit.GaussianMixture`.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import BernoulliMixture
    >>> rng = np.random.default_rng(0)
    >>> prototypes = np.array([[0.9, 0.9, 0.1, 0.1], [0.1, 0.1, 0.9, 0.9]])
    >>> X = (rng.random((400, 4)) < prototypes[rng.integers(0, 2, 400)]).astype(float)
    >>> model = BernoulliMixture(2, random_state=0).fit(X)
    >>> model.means_[np.argsort(model.means_[:, 0])].round(1)
    array([[0.1, 0.1, 0.9, 0.9],
           [0.9, 0.9, 0.1, 0.1]])
    """

    _parameter_constraints: ClassVar[dict] = {
        **FamilyMixture._parameter_constraints,
        "alpha": [Interval(Real, 0.0, None, closed="neither")],
        "binarize": [Real, None],
        "means_init": ["array-like", None],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        alpha: float = 1e-6,
        binarize: float | None = None,
        weight_concentration: float = 1.0,
        semi_supervised: bool = False,
        tol: float = 1e-3,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init=None,
        means_init=None,
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
        self.alpha = alpha
        self.binarize = binarize
        self.weight_concentration = weight_concentration
        self.semi_supervised = semi_supervised
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
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

    # ------------------------------------------------------------------ FamilyMixture hooks
    def _groups(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("bernoulli", tuple(range(self.n_features_in_)))]

    def _make_family(self, name: str) -> Bernoulli:
        return Bernoulli(float(self.alpha))

    def _attribute(self, name: str, field: str) -> str:
        return f"{field}_"

    def _encoded(self, X):
        """``X`` thresholded at ``binarize``; NaN and infinities stay, to be refused or
        marginalised as such. Values that are not numbers are left to validation."""
        if self.binarize is None:
            return X
        threshold = float(self.binarize)
        if is_torch(X):
            import torch

            xp = namespace(X)
            values = X if X.is_floating_point() else X.to(torch.float64)
            binary = xp.astype(values > threshold, values.dtype)
            return xp.where(xp.isfinite(values), binary, values)
        if hasattr(X, "iloc") and hasattr(X, "columns"):
            try:
                finite = np.isfinite(X)
            except TypeError:
                return X
            return X.gt(threshold).astype(np.float64).where(finite, X)
        values = np.asarray(X)
        if values.dtype.kind == "c":
            return X
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            return X
        return np.where(np.isfinite(values), values > threshold, values)

    def _row_width(self, n_features: int) -> int:
        return n_features + 2 * self.n_components

    def _has_all_initial_values(self) -> bool:
        return self.weights_init is not None and self.means_init is not None

    def _check_initial_values(self, n_features: int) -> None:
        self._initial_values = {}
        if self.weights_init is not None:
            self._initial_values["weights"] = checked_weights(
                self.weights_init, self.n_components
            )
        if self.means_init is not None:
            self._initial_values["means"] = checked_parameter(
                self.means_init, "means_init", (self.n_components, n_features), 0.0, 1.0
            )

    def _apply_initial_values(
        self, params: MixtureParams | None, origin: np.ndarray | None
    ) -> MixtureParams:
        values = self._initial_values
        weights = values["weights"] if "weights" in values else params.weights
        means = values["means"] if "means" in values else params.components.means
        return MixtureParams(weights, BernoulliParams(means))
