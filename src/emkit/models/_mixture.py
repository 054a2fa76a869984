"""What every mixture estimator shares: validation, initialisation, the fit loop, prediction.

A concrete estimator says which component family it mixes (``_family``), how to start from
responsibilities or user-given parameters, and how its parameters map to fitted attributes.
Fitted attributes are the single source of truth: prediction, warm starts and model files
rebuild the engine's parameters from them.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.cluster import KMeans as _SKLearnKMeans
from sklearn.cluster import kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from emkit._backend import (
    Array,
    as_backend,
    device_of,
    is_torch,
    log_normalize,
    namespace,
    to_numpy,
)
from emkit._validation import check_data, check_missing, check_n_samples, check_sample_weight
from emkit.distributions.product import has_missing
from emkit.em.loop import EMResult, as_callbacks, run_em
from emkit.em.mixture import Mixture, MixtureParams
from emkit.em.online import OnlineEM, run_incremental
from emkit.em.strategies import ALGORITHMS, EStep, get_strategy
from emkit.executors.dask import INIT_SAMPLE_ROWS, DaskData, is_dask_array, map_blocks_of_rows
from emkit.executors.memory import InMemory, auto_chunk_size
from emkit.executors.stream import Stream
from emkit.io import SaveLoadMixin

__all__ = ["BaseMixture"]

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")


class BaseMixture(SaveLoadMixin, DensityMixin, BaseEstimator):
    """Base class of the mixture estimators (not for direct use)."""

    _parameter_constraints: ClassVar[dict] = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions(set(INIT_METHODS))],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), None],
        "n_jobs": [Integral, None],
        "callbacks": [list, tuple, callable, None],
        "monotonic": [StrOptions({"warn", "raise", "ignore"})],
        "algorithm": [StrOptions(set(ALGORITHMS)), EStep],
        "learning_decay": [Interval(Real, 0.5, 1.0, closed="right")],
        "learning_offset": [Interval(Real, 0.0, None, closed="left")],
    }

    # ------------------------------------------------------------------ for subclasses
    @abstractmethod
    def _family(self):
        """The component family with this estimator's options."""

    @abstractmethod
    def _check_initial_values(self, n_features: int) -> None:
        """Validate user-given starting values against the data's number of features."""

    @abstractmethod
    def _apply_initial_values(self, params: MixtureParams | None, origin: np.ndarray | None):
        """Starting parameters: ``params`` (from responsibilities) overridden by user values.

        ``params`` is ``None`` when the user gave every starting value.
        """

    @abstractmethod
    def _set_fitted(self, params: MixtureParams, origin: np.ndarray | None, like: Array) -> None:
        """Store ``params`` (in the frame shifted by ``origin``) as fitted attributes."""

    @abstractmethod
    def _fitted_params(self, origin: np.ndarray | None) -> MixtureParams:
        """Engine parameters rebuilt from the fitted attributes, in the frame of ``origin``."""

    def _origin(self, X: Array, sample_weight: Array | None) -> np.ndarray | None:
        """Point subtracted from every row during fitting (``None``: rows are used as they
        are, for families whose support is not translation invariant)."""
        return None

    def _prediction_origin(self) -> np.ndarray | None:
        """Origin of the frame in which prediction runs."""
        return None

    @abstractmethod
    def _public_view(
        self, params: MixtureParams, origin: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """Parameters as fitted-attribute names and NumPy arrays (for callbacks)."""

    def _has_all_initial_values(self) -> bool:
        return False

    def _row_width(self, n_features: int) -> int:
        """Working elements per row in the E-step, for the automatic chunk size."""
        return self.n_components * (n_features + 1)

    # ------------------------------------------------------------------ validation
    #: Whether the component family marginalises missing values (NaN): the estimator then
    #: accepts them (scikit-learn's ``allow_nan`` input tag), in fitting and in prediction.
    _missing_values: ClassVar[bool] = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._missing_values
        return tags

    def _validate_input(
        self, X, *, reset: bool, purpose: Literal["fit", "batch", "predict"]
    ) -> Array:
        """``X`` as the engine will see it, validated once (estimators that encode their
        input, categorical levels say, extend this).

        Infinite values are refused, naming the row and the column; NaN too, unless the
        estimator marginalises missing values (:attr:`_missing_values`). Then a row in which
        every entry is missing is refused for fitting (``purpose`` ``'fit'`` or
        ``'batch'``: it carries no information and would only slow EM down), and so is a
        column without any observed value in :meth:`fit`'s data. In prediction such a row
        is accepted: its log-density is 0 (the density of nothing observed), its
        responsibilities are the weights, and :meth:`impute` fills it with the mixture's
        mean.
        """
        X = check_data(
            self, X, reset=reset, ensure_min_samples=2 if purpose == "fit" else 1,
            allow_nan=self._missing_values,
        )
        if self._missing_values and purpose != "predict" and has_missing(X):
            names = getattr(self, "feature_names_in_", None)
            check_missing(X, "X", names, columns=purpose == "fit")
        return X

    # ------------------------------------------------------------------ fitting
    def _model(self) -> Mixture:
        return Mixture(self._family(), self.n_components)

    def _data(self, X: Array, sample_weight: Array | None, origin: np.ndarray | None) -> InMemory:
        return InMemory(
            X, sample_weight, origin=origin, chunk_size=self.chunk_size,
            row_width=self._row_width(X.shape[1]), n_jobs=self.n_jobs,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters by EM.

        Runs ``n_init`` initialisations and keeps the one with the highest final
        log-likelihood; each runs until the mean log-likelihood per sample changes by less
        than ``tol`` or ``max_iter`` iterations. With ``warm_start=True`` and a fitted model,
        starts from the fitted parameters (one initialisation).

        Missing values (NaN), where the estimator accepts them, are marginalised in every
        E-step and M-step (see :meth:`impute`); only the starting point, from
        ``init_params``, sees each missing entry at its column's observed mean.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; an integer weight equals repeating the row.

        Returns
        -------
        self
        """
        if is_dask_array(X):
            return self._fit_distributed(X, sample_weight)
        warm = self.warm_start and hasattr(self, "converged_")
        return self._fit(self._validate_input(X, reset=not warm, purpose="fit"), sample_weight)

    def _fit_distributed(self, X, sample_weight):
        """:meth:`fit` on a Dask array: ``max_iter`` iterations over its blocks."""
        return self._fit_dask(X, sample_weight, self.max_iter + 1, "batch",
                              f"max_iter={self.max_iter} iterations", self.n_init)

    def _fit(self, X: Array, sample_weight) -> BaseMixture:
        """:meth:`fit` on data already validated by :meth:`_validate_input`."""
        warm = self.warm_start and hasattr(self, "converged_")
        check_n_samples(X, self.n_components)
        sample_weight = check_sample_weight(sample_weight, X)
        self._check_initial_values(X.shape[1])
        callbacks = as_callbacks(self.callbacks)
        origin = self._origin(X, sample_weight)
        model = self._model()
        data = self._data(X, sample_weight, origin)
        random_state = check_random_state(self.random_state)
        strategy = self._strategy()
        self._online = None
        best: EMResult | None = None
        n_init = 1 if warm else self.n_init
        for init in range(n_init):
            if self.verbose:
                print(f"Initialization {init}")
            if warm:
                params = self._fitted_params(origin)
            else:
                params = self._initial_params(model, data, X, sample_weight, origin, random_state)
            result = run_em(
                model, data, params,
                max_iter=self.max_iter, tol=self.tol, monotonic=self.monotonic,
                callbacks=callbacks, view=lambda p: self._public_view(p, origin),
                verbose=self.verbose, verbose_interval=self.verbose_interval, dtype=_dtype(X),
                strategy=strategy, seed=_seed(strategy, random_state),
                track_elbo=_tracks_elbo(callbacks),
            )
            if self.verbose:
                state = "converged" if result.converged else "did not converge"
                print(f"Initialization {state}. lower bound {_final_bound(result)!r}.")
            if best is None or _final_bound(result) > _final_bound(best):
                best = result
        self._store_result(
            best, origin, X, self.max_iter, f"max_iter={self.max_iter} iterations"
        )
        return self

    def _store_result(
        self, best: EMResult, origin: np.ndarray | None, X: Array, limit: int, budget: str
    ) -> None:
        """Fitted attributes of a run, with a warning if it did not converge within
        ``budget`` (``limit`` iterations; none is due for 0)."""
        if not best.converged and limit > 0:
            warnings.warn(
                f"Best performing initialization did not converge within {budget} (last "
                "change of the mean log-likelihood above "
                f"tol={self.tol}). Try different init parameters, increase max_iter or tol, or "
                "check for degenerate data.",
                ConvergenceWarning,
                stacklevel=4,
            )
        self._set_fitted(best.params, origin, X)
        self.converged_ = best.converged
        self.n_iter_ = best.n_iter
        self.lower_bounds_ = list(best.lower_bounds)
        self.lower_bound_ = _final_bound(best)

    def _strategy(self) -> EStep:
        """The E-step strategy named by ``algorithm`` (exact EM for estimators without it)."""
        return get_strategy(getattr(self, "algorithm", "em"))

    # ------------------------------------------------------------------ online and streams
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        r"""One step of online EM (Cappé and Moulines 2009) on the mini-batch ``X``.

        An E-step on the batch at the current parameters, then

        .. math::

            s_t = (1 - \rho_t)\, s_{t-1} + \rho_t\, S(X) / W(X), \qquad
            \rho_t = (t + t_0)^{-\kappa},

        on the normalised statistics :math:`s` (:math:`W(X)` the batch's total weight,
        :math:`t_0` = ``learning_offset``, :math:`\kappa` = ``learning_decay``), and an
        M-step on :math:`s_t`. The first call of a stream takes :math:`s_1 = S(X)/W(X)`:
        one EM step from the current parameters, or, on an unfitted model, from the
        initialisation ``init_params`` on this batch (which then needs at least
        ``n_components`` rows). :meth:`fit` ends the stream. Components are not re-seeded.
        Estimators with priors (pseudo-counts, a Dirichlet prior on the weights) run the
        M-step on :math:`N_t s_t`, :math:`N_t` the weight seen so far, so that the prior
        weighs as in :meth:`fit` on those rows.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
            With ``n_steps_`` (steps of this stream), ``lower_bound_`` (the batch's mean
            log-likelihood at the parameters before the step) and ``lower_bounds_`` (that
            of every step of the stream).
        """
        X = self._validate_batch(X, reset=not hasattr(self, "lower_bound_"))
        sample_weight = check_sample_weight(sample_weight, X)
        self._online_step(X, sample_weight)
        return self

    def _validate_batch(self, X, *, reset: bool) -> Array:
        """A mini-batch or chunk as the engine sees it."""
        return self._validate_input(X, reset=reset, purpose="batch")

    def _starting_params(self, model, X, sample_weight, origin, random_state, from_fitted):
        """The fitted parameters (``from_fitted``), or ``init_params`` applied to ``X``."""
        if from_fitted:
            return self._fitted_params(origin)
        check_n_samples(X, self.n_components)
        self._check_initial_values(X.shape[1])
        data = self._data(X, sample_weight, origin)
        return self._initial_params(model, data, X, sample_weight, origin, random_state)

    def _online_state(self, X: Array, sample_weight: Array | None):
        """The stream's state and current parameters, starting a stream if none runs."""
        state = getattr(self, "_online", None)
        if state is not None:
            return state, self._fitted_params(state.origin)
        random_state = check_random_state(self.random_state)
        fitted = hasattr(self, "lower_bound_")
        origin = self._stream_origin(X, sample_weight, fitted)
        model = self._model()
        params = self._starting_params(model, X, sample_weight, origin, random_state, fitted)
        state = OnlineEM(
            model, float(getattr(self, "learning_decay", 0.7)),
            float(getattr(self, "learning_offset", 10.0)), origin=origin,
            seed=_seed(self._strategy(), random_state), monotonic=self.monotonic,
            **self._online_options(),
        )
        self.lower_bounds_ = []
        return state, params

    def _stream_origin(self, X: Array, sample_weight: Array | None, fitted: bool):
        """The frame of an online stream that starts on the batch ``X`` (``fitted``: from
        the fitted parameters): :meth:`_origin` of the batch."""
        return self._origin(X, sample_weight)

    def _online_options(self) -> dict[str, Any]:
        """Further options of :class:`~emkit.em.online.OnlineEM` (none: online EM on
        normalised statistics)."""
        return {}

    def _online_step(self, X: Array, sample_weight: Array | None) -> None:
        state, params = self._online_state(X, sample_weight)
        data = self._data(X, sample_weight, state.origin)
        params, bound = state.step(data, params, self._strategy())
        self._online = state
        self._set_fitted(params, state.origin, X)
        self.n_steps_ = state.n_steps
        self.lower_bounds_.append(bound)
        self.lower_bound_ = bound
        self.converged_ = False

    def fit_chunks(self, chunks, *, n_passes: int = 1, update: str = "online"):
        """Fit from data that come in chunks: an iterator, a generator function, a memmap.

        Statistics add up, so the chunks need never be in memory together.

        Parameters
        ----------
        chunks : array, callable, iterable or iterator
            An array (a NumPy memmap, say) is read in slices of ``chunk_size`` rows (default
            65536). A callable is called once per pass and returns an iterable of chunks
            (a generator function that reopens a file); an iterable that is not an iterator
            (a list) is iterated once per pass; an iterator allows one pass. A chunk is an
            array-like of shape (n, n_features) or a pair ``(rows, sample_weight)``; chunks
            are validated as :meth:`fit`'s input.
        n_passes : int, default=1
            Passes over the chunks (at most, for ``'incremental'`` and ``'batch'``, which
            stop when the change per pass falls below ``tol``).
        update : {'online', 'incremental', 'batch'}, default='online'
            When the M-step runs. ``'online'``: after every chunk, as :meth:`partial_fit`
            (continuing its stream; a chunk is a mini-batch). ``'incremental'``: incremental
            EM (Neal and Hinton 1998): the first pass computes every chunk's statistics
            at the starting parameters, later passes replace one chunk's at a time, with an
            M-step after each; the free energy (ELBO) never decreases, which is checked
            (``monotonic``), and ``lower_bounds_`` holds it after each pass. ``'batch'``:
            one EM iteration per pass, exactly :meth:`fit` on the concatenated chunks. For
            the last two, the starting parameters come from the fitted model with
            ``warm_start=True``, else from ``init_params`` applied to the first chunk.

        Returns
        -------
        self
        """
        if update not in ("online", "incremental", "batch"):
            raise ValueError(
                f"update must be 'online', 'incremental' or 'batch', got {update!r}"
            )
        if not isinstance(n_passes, Integral) or n_passes < 1:
            raise ValueError(f"n_passes must be a positive integer, got {n_passes!r}")
        self._validate_params()
        if is_dask_array(chunks) and update != "online":
            return self._fit_dask(chunks, None, n_passes, update, f"n_passes={n_passes} passes")
        stream = Stream(chunks, chunk_size=self.chunk_size)
        if update == "online":
            for _ in range(n_passes):
                for rows, weights in stream.read():
                    self.partial_fit(rows, sample_weight=weights)
            return self
        if not stream.repeatable:
            raise ValueError(
                f"update={update!r} reads the chunks more than once: pass a callable that "
                "returns a fresh iterable of chunks, a list or an array, not an iterator"
            )
        return self._fit_stream(stream, n_passes, update)

    def _fit_stream(self, stream: Stream, n_passes: int, update: str):
        """Incremental or batch EM over a stream of chunks, starting from the first."""

        def data_of(origin, validated, like):
            return Stream(stream.source, origin=origin, n_jobs=self.n_jobs,
                          transform=validated, chunk_size=stream.chunk_size)

        return self._fit_passes(next(stream.read()), data_of, n_passes, update,
                                f"n_passes={n_passes} passes")

    def _fit_dask(self, X, sample_weight, n_passes: int, update: str, budget: str,
                  n_init: int = 1):
        """EM over a Dask array, each block's E-step on its worker; the starting point
        (origin, ``init_params``) from a uniform sample of
        :data:`~emkit.executors.dask.INIT_SAMPLE_ROWS` rows (all rows of a smaller
        array, which then gives the in-memory fit)."""
        raw = DaskData(X, sample_weight)
        first = raw.sample(INIT_SAMPLE_ROWS, check_random_state(self.random_state))

        def data_of(origin, validated, like):
            return raw.validated(lambda block: validated((block, None))[0], like.dtype, origin)

        return self._fit_passes(first, data_of, n_passes, update, budget, n_init)

    def _fit_passes(self, first, data_of, n_passes: int, update: str, budget: str,
                    n_init: int = 1):
        """Incremental or batch EM over chunked data: origin and starting parameters from
        the ``first`` ``(rows, sample_weight)``, then ``n_passes`` passes over
        ``data_of(origin, validated, like)``, an executor whose chunks go through
        ``validated`` (``like``: the validated first rows); the best of ``n_init``
        starts."""
        warm = self.warm_start and hasattr(self, "converged_")

        def validated(pair, reset=False):
            rows = self._validate_batch(pair[0], reset=reset)
            return rows, check_sample_weight(pair[1], rows)

        X, sample_weight = validated(first, reset=not warm)
        random_state = check_random_state(self.random_state)
        strategy = self._strategy()
        origin = self._origin(X, sample_weight)
        model = self._model()
        data = data_of(origin, validated, X)
        options = dict(
            monotonic=self.monotonic, callbacks=as_callbacks(self.callbacks),
            view=lambda p: self._public_view(p, origin), dtype=_dtype(X), strategy=strategy,
        )
        best: EMResult | None = None
        for _ in range(1 if warm else n_init):
            params = self._starting_params(model, X, sample_weight, origin, random_state, warm)
            seed = _seed(strategy, random_state)
            if update == "incremental":
                result = run_incremental(model, data, params, n_passes=n_passes, tol=self.tol,
                                         seed=seed, **options)
            else:
                result = run_em(model, data, params, max_iter=n_passes - 1, tol=self.tol,
                                verbose=self.verbose, verbose_interval=self.verbose_interval,
                                track_elbo=_tracks_elbo(options["callbacks"]), seed=seed,
                                **options)
            if best is None or _final_bound(result) > _final_bound(best):
                best = result
        self._online = None
        self._store_result(best, origin, X, n_passes - 1, budget)
        return self

    def _initial_params(self, model, data, X, sample_weight, origin, random_state):
        """Starting parameters: an M-step on initial responsibilities, then user values.

        With missing values, the initial responsibilities and this first M-step see each
        missing entry at its column's observed mean (k-means needs complete rows, and the
        Gaussian family's expected statistics need parameters); every E-step after it
        marginalises them.
        """
        if self._has_all_initial_values():
            return self._apply_initial_values(None, origin)
        if has_missing(X):
            xp = namespace(X)
            mean = as_backend(weighted_mean(X, sample_weight), like=X)
            X = xp.where(xp.isnan(X), mean, X)
            data = self._data(X, sample_weight, origin)
        resp_of = self._initial_responsibilities(X, sample_weight, random_state)
        stats = data.statistics(model, resp_of)
        return self._apply_initial_values(model.maximize(stats), origin)

    def _initial_responsibilities(self, X, sample_weight, random_state):
        """``resp_of(start, rows)`` giving initial responsibilities chunk by chunk.

        As scikit-learn: ``'kmeans'`` one-hot labels of one k-means run; ``'k-means++'`` and
        ``'random_from_data'`` one-hot rows at K chosen samples (all others zero);
        ``'random'`` uniform draws normalised per row, drawn chunk after chunk in the same
        order as one (n, K) draw.
        """
        n_samples = X.shape[0]
        K = self.n_components
        method = self.init_params
        if method == "random":
            def resp_of(start, rows):
                draws = random_state.uniform(size=(rows.shape[0], K))
                return as_backend(draws / draws.sum(axis=1)[:, None], like=rows)
            return resp_of
        if method == "kmeans":
            weights = None if sample_weight is None else to_numpy(sample_weight)
            labels = (
                _SKLearnKMeans(n_clusters=K, n_init=1, random_state=random_state)
                .fit(to_numpy(X), sample_weight=weights)
                .labels_
            )
        else:
            if method == "k-means++":
                _, chosen = kmeans_plusplus(to_numpy(X), K, random_state=random_state)
            else:
                chosen = random_state.choice(n_samples, size=K, replace=False)
            labels = np.full(n_samples, -1)
            labels[chosen] = np.arange(K)

        def resp_of(start, rows):
            block = labels[start : start + rows.shape[0]]
            one_hot = (block[:, None] == np.arange(K)[None, :]).astype(np.float64)
            return as_backend(one_hot, like=rows)

        return resp_of

    # ------------------------------------------------------------------ prediction
    def _blockwise(self, method, X, n_columns: int | None, dtype=None):
        """``method`` over each block of rows of the Dask array ``X``: a lazy Dask array of
        ``n_columns`` columns (one dimension for ``None``), in ``X``'s floating dtype."""
        check_is_fitted(self)
        if dtype is None:
            dtype = X.dtype if X.dtype.kind == "f" else np.dtype(np.float64)
        return map_blocks_of_rows(X, method, n_columns, dtype)

    def _prepared(self, X):
        check_is_fitted(self)
        X = self._validate_input(X, reset=False, purpose="predict")
        origin = self._prediction_origin()
        model = self._model()
        data = self._data(X, None, origin)
        return model, data, model.prepare(self._fitted_params(origin), X)

    def score_samples(self, X):
        r"""Log-density :math:`\log p(x_n) = \log \sum_k \pi_k p(x_n \mid k)` of each row.

        Returns
        -------
        log_prob : array of shape (n_samples,), in the namespace and on the device of X
            (a lazy Dask array for a Dask array)
        """
        if is_dask_array(X):
            return self._blockwise(self.score_samples, X, None)
        model, data, prepared = self._prepared(X)
        return data.map_rows(lambda rows: log_normalize(model.log_joint(rows, prepared))[1])

    def _log_likelihood(self, X) -> tuple[float, int]:
        """Total log-likelihood of ``X`` and its number of rows."""
        log_prob = self.score_samples(X)
        if is_dask_array(log_prob):
            return float(log_prob.astype(np.float64).sum().compute()), int(log_prob.shape[0])
        log_prob = to_numpy(log_prob, np.float64)
        return float(log_prob.sum()), len(log_prob)

    def score(self, X, y=None):
        """Mean log-likelihood per sample of ``X`` (a float)."""
        total, n = self._log_likelihood(X)
        return total / n

    def predict_proba(self, X):
        r"""Posterior responsibilities :math:`\gamma_{nk} = p(z_n = k \mid x_n)`, (n, K)."""
        if is_dask_array(X):
            return self._blockwise(self.predict_proba, X, self.n_components)
        model, data, prepared = self._prepared(X)
        return data.map_rows(lambda rows: log_normalize(model.log_joint(rows, prepared))[0])

    def predict(self, X):
        """The most probable component of each row (the argmax of the responsibilities)."""
        if is_dask_array(X):
            return self._blockwise(self.predict, X, None, np.dtype(np.int64))
        model, data, prepared = self._prepared(X)
        xp = data.xp
        return data.map_rows(lambda rows: xp.argmax(model.log_joint(rows, prepared), axis=1))

    def impute(self, X):
        r"""A copy of ``X`` with every missing value (NaN) replaced by its conditional
        expectation given the row's observed values; ``X`` itself is not modified.

        .. math::

            \hat x_{nd} = E[x_{nd} \mid x_{n,o}]
              = \sum_k p(z_n = k \mid x_{n,o})\, E[x_{nd} \mid x_{n,o}, z_n = k],

        with the posterior :math:`p(z_n = k \mid x_{n,o}) \propto \pi_k p(x_{n,o} \mid
        z_n = k)` of the observed entries :math:`o`. For Gaussian components,
        :math:`E[x_m \mid x_o, z = k] = \mu_{k,m} + \Sigma_{k,mo} \Sigma_{k,oo}^{-1}
        (x_o - \mu_{k,o})` (Ghahramani and Jordan 1994; :math:`\mu_{k,m}` for diagonal and
        spherical covariances); for families with independent columns it is the
        component's mean of the column. A row with every entry missing gets the mixture's
        mean. Observed values are returned as given.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        X_imputed : array of shape (n_samples, n_features), in the namespace and on the
            device of X (a lazy Dask array for a Dask array)
        """
        if is_dask_array(X):
            return self._blockwise(self.impute, X, X.shape[1])
        model, data, prepared = self._prepared(X)
        xp = data.xp
        if not has_missing(data.X):
            return xp.asarray(data.X, copy=True)
        family = model.family
        params = self._fitted_params(self._prediction_origin()).components

        def fill(rows):
            if not has_missing(rows):
                return rows
            features = family.features(rows, prepared)
            resp, _ = log_normalize(family.log_prob(features, prepared))
            return family.impute(rows, features, params, resp)

        filled = data.map_rows(fill)
        if data.origin is not None:
            filled = filled + data.origin
        return xp.where(xp.isnan(data.X), filled, data.X)

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then label ``X`` with the fitted parameters (same as ``fit(X).predict(X)``)."""
        return self.fit(X, y, sample_weight=sample_weight).predict(X)

    def _n_parameters(self) -> int:
        check_is_fitted(self)
        return self._model().n_parameters(self._fitted_params(None))

    def bic(self, X) -> float:
        r"""Bayesian information criterion :math:`-2 \log L + p \log n` (lower is better)."""
        total, n = self._log_likelihood(X)
        return -2.0 * total + self._n_parameters() * np.log(n)

    def aic(self, X) -> float:
        r"""Akaike information criterion :math:`-2 \log L + 2p` (lower is better)."""
        total, _ = self._log_likelihood(X)
        return -2.0 * total + 2.0 * self._n_parameters()

    def sample(self, n_samples: int = 1):
        """Draw ``n_samples`` rows from the fitted mixture.

        Component counts are multinomial with the fitted weights (drawn with
        ``random_state``, as scikit-learn), then rows are drawn per component.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component of each row.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples!r}. The sampling requires at least "
                "one sample."
            )
        params = self._fitted_params(None)
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, params.weights)
        X = self._model().family.sample(params.components, counts, rng)
        y = np.concatenate([np.full(count, k, dtype=int) for k, count in enumerate(counts)])
        return X, y


def _seed(strategy: EStep, random_state: np.random.RandomState) -> int | None:
    """Root of a random strategy's draws, from ``random_state`` (nothing drawn otherwise)."""
    return int(random_state.randint(np.iinfo(np.int32).max)) if strategy.random else None


def _tracks_elbo(callbacks) -> bool:
    """Whether a callback asks for the ELBO (``tracks_elbo = True``, as
    :class:`emkit.diagnostics.Trace`)."""
    return any(getattr(callback, "tracks_elbo", False) for callback in callbacks)


def _final_bound(result: EMResult) -> float:
    return result.lower_bounds[-1] if result.lower_bounds else result.initial_lower_bound


def _dtype(X: Array):
    return np.float32 if str(X.dtype).endswith("float32") else np.float64


def weighted_mean(X: Array, sample_weight: Array | None) -> np.ndarray:
    """Mean of the rows in float64 (of each column's observed values when some are missing,
    NaN), rounded to a value the data's dtype holds exactly."""
    if has_missing(X):
        mean = _observed_mean(X, sample_weight)
    else:
        mean = InMemory(X, sample_weight, row_width=X.shape[1]).mean()
    return to_numpy(as_backend(mean, like=X), np.float64)


def _observed_mean(X: Array, sample_weight: Array | None) -> np.ndarray:
    r""":math:`\sum_n w_n M_{nd} x_{nd} / \sum_n w_n M_{nd}` per column, with the mask
    :math:`M` of observed entries, accumulated in float64 a chunk at a time."""
    xp = namespace(X)
    total = np.zeros(X.shape[1])
    weight = np.zeros(X.shape[1])
    step = auto_chunk_size(X, X.shape[1])
    for start in range(0, X.shape[0], step):
        rows = xp.astype(X[start : start + step], xp.float64)
        observed = ~xp.isnan(rows)
        values = xp.where(observed, rows, xp.zeros_like(rows))
        if sample_weight is None:
            w = xp.ones(rows.shape[0], dtype=xp.float64, device=device_of(rows))
        else:
            w = xp.astype(sample_weight[start : start + step], xp.float64)
        total += to_numpy(w @ values)
        weight += to_numpy(w @ xp.astype(observed, xp.float64))
    return total / weight


def to_like(a: np.ndarray, like: Array) -> Any:
    """Fitted attribute ``a`` (float64) in the namespace and on the device of ``like``."""
    if is_torch(like):
        import torch

        return as_backend(a, like, dtype=torch.float64)
    return np.asarray(a, dtype=np.float64)
