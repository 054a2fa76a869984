"""Mixtures of products of categorical distributions (latent class analysis), by EM."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from emkit.distributions.categorical import Categorical, CategoricalParams, learn_categories
from emkit.em.mixture import MixtureParams
from emkit.models.mixture_model import (
    FamilyMixture,
    _Table,
    checked_parameter,
    checked_weights,
)

__all__ = ["CategoricalMixture"]


class CategoricalMixture(FamilyMixture):
    r"""Latent class model: a mixture of products of categorical distributions.

    .. math::

        p(x) = \sum_k \pi_k \prod_j \theta_{k j x_j},

    where column :math:`j` takes one of :math:`C_j` levels (text or numbers, learnt at fit).
    The E-step computes the responsibilities in log space, :math:`\log p(x \mid z = k)`
    being one matrix product of the one-hot rows with :math:`\log\theta`; the M-step is
    :math:`\pi_k = N_k / N` and

    .. math::

        \theta_{kjc} = \frac{\sum_n \gamma_{nk} [x_{nj} = c] + \alpha}
          {\sum_n \gamma_{nk} + C_j \alpha},

    the MAP estimate under a Dirichlet(1 + α) prior per column, which keeps every
    probability positive (:math:`\alpha \to 0` is maximum likelihood). A level not seen at
    fit is refused at prediction, naming the column and the value. Missing values (``None``
    or NaN) are marginalised: a missing cell matches no level and adds to no count;
    :meth:`impute` replaces it by the most probable level given the row's observed cells.

    Parameters
    ----------
    n_components : int, default=1
        Number of latent classes K.
    alpha : float, default=1e-6
        Positive pseudo-count added to every level of every column and class.
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
        As :class:`~emkit.GaussianMixture`; k-means runs on the one-hot encoded rows.
    weights_init : array-like of shape (n_components,), default=None
    probabilities_init : array-like of shape (n_components, n_features, max levels), default=None
        Starting probabilities in the layout of ``probabilities_`` (levels in the order of
        ``categories_``; entries beyond a column's levels are ignored).
    random_state, warm_start, verbose, verbose_interval, chunk_size, n_jobs, callbacks, monotonic,
    algorithm, learning_decay, learning_offset
        As :class:`~emkit.GaussianMixture`.

    Attributes
    ----------
    weights_ : array of shape (n_components,)
    probabilities_ : array of shape (n_components, n_features, max levels)
        :math:`\theta_{kjc} = p(x_j = \text{categories_}[j, c] \mid z = k)`, zero beyond
        a column's levels.
    categories_ : ndarray of shape (n_features, max levels)
        The levels of every column: float64 padded with NaN when all levels are numbers,
        else text padded with '' (numbers then compare by their text, ``1`` as ``'1'``).
    n_categories_ : ndarray of int, shape (n_features,)
    converged_, n_iter_, lower_bound_, lower_bounds_, n_features_in_, feature_names_in_
        As :class:`~emkit.GaussianMixture`.

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import CategoricalMixture
    >>> rng = np.random.default_rng(0)
    >>> z = rng.integers(0, 2, 600)
    >>> agree = rng.random((600, 3)) < np.where(z, 0.9, 0.1)[:, None]
    >>> X = np.where(agree, "yes", "no")
    >>> model = CategoricalMixture(2, random_state=0).fit(X)
    >>> model.categories_[0].tolist()
    ['no', 'yes']
    >>> np.sort(model.probabilities_[:, 0, 1]).round(1)
    array([0.1, 0.9])
    """

    _parameter_constraints: ClassVar[dict] = {
        **FamilyMixture._parameter_constraints,
        "alpha": [Interval(Real, 0.0, None, closed="neither")],
        "probabilities_init": ["array-like", None],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        alpha: float = 1e-6,
        weight_concentration: float = 1.0,
        semi_supervised: bool = False,
        tol: float = 1e-3,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init=None,
        probabilities_init=None,
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
        self.weight_concentration = weight_concentration
        self.semi_supervised = semi_supervised
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.probabilities_init = probabilities_init
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
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        return tags

    # ------------------------------------------------------------------ FamilyMixture hooks
    def _learn_layout(self, X) -> None:
        table = _Table(X)
        columns = range(table.n_columns)
        self.categories_, self.n_categories_ = learn_categories(
            [table.column(j) for j in columns], [table.declared_levels(j) for j in columns],
            [table.label(j) for j in columns],
        )

    def _groups(self) -> list[tuple[str, tuple[int, ...]]]:
        return [("categorical", tuple(range(len(self.n_categories_))))]

    def _make_family(self, name: str) -> Categorical:
        return Categorical(tuple(int(c) for c in self.n_categories_), float(self.alpha))

    def _attribute(self, name: str, field: str) -> str:
        return f"{field}_"

    def _has_all_initial_values(self) -> bool:
        return self.weights_init is not None and self.probabilities_init is not None

    def _check_initial_values(self, n_features: int) -> None:
        self._initial_values = {}
        if self.weights_init is not None:
            self._initial_values["weights"] = checked_weights(
                self.weights_init, self.n_components
            )
        if self.probabilities_init is not None:
            shape = (self.n_components, n_features, int(np.max(self.n_categories_)))
            valid = np.arange(shape[2])[None, :] < self.n_categories_[:, None]
            probabilities = checked_parameter(
                self.probabilities_init, "probabilities_init", shape, -np.inf, np.inf
            )
            probabilities = np.where(valid, probabilities, 0.0)
            if (probabilities[:, valid] <= 0).any() or not np.allclose(
                probabilities.sum(axis=2), 1.0, rtol=0, atol=1e-6
            ):
                raise ValueError(
                    "The parameter 'probabilities_init' should hold positive probabilities "
                    "that sum to one over each column's levels."
                )
            self._initial_values["probabilities"] = probabilities / probabilities.sum(
                axis=2, keepdims=True
            )

    def _apply_initial_values(
        self, params: MixtureParams | None, origin: np.ndarray | None
    ) -> MixtureParams:
        values = self._initial_values
        weights = values["weights"] if "weights" in values else params.weights
        probabilities = (
            values["probabilities"] if "probabilities" in values
            else params.components.probabilities
        )
        return MixtureParams(weights, CategoricalParams(probabilities))
