r"""The EM loop, once, for every model and every executor.

Each iteration runs the M-step on the statistics of the last E-step, then an E-step at the
new parameters, which yields the log-likelihood of exactly the parameters it returns. The
notes' decomposition :math:`\log p(X \mid \theta) = \mathcal L(q, \theta) +
\mathrm{KL}(q \,\|\, p(Z \mid X, \theta))` with the exact posterior :math:`q` guarantees that
this log-likelihood never decreases; the loop checks it, so a bug or a numerical breakdown
cannot pass silently.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

__all__ = ["EMIteration", "EMResult", "MonotonicityError", "MonotonicityWarning", "run_em"]


class MonotonicityError(RuntimeError):
    """The log-likelihood decreased, which exact EM never does."""


class MonotonicityWarning(RuntimeWarning):
    """The log-likelihood decreased, which exact EM never does."""


@dataclasses.dataclass(frozen=True)
class EMIteration:
    """What a callback receives after each iteration.

    Attributes
    ----------
    iteration : int
        1 for the first M-step; 0 for the initial parameters.
    lower_bound : float
        Mean log-likelihood per sample at ``params``.
    change : float
        ``lower_bound`` minus the previous one (``inf`` at iteration 0).
    params : object
        The model's parameters after this iteration (estimators pass their own view).
    """

    iteration: int
    lower_bound: float
    change: float
    params: Any


@dataclasses.dataclass(frozen=True)
class EMResult:
    """Outcome of :func:`run_em`."""

    params: Any
    lower_bounds: list[float]
    converged: bool
    n_iter: int
    initial_lower_bound: float


def decrease_tolerance(lower_bound: float, dtype) -> float:
    """Largest decrease of the mean log-likelihood attributed to rounding.

    :math:`10^3\\,\\varepsilon\\,\\max(1, |\\ell|)` with :math:`\\varepsilon` the machine
    epsilon of the data's dtype: about :math:`2\\cdot10^{-13}|\\ell|` in float64 and
    :math:`10^{-4}|\\ell|` in float32.
    """
    return 1e3 * float(np.finfo(dtype).eps) * max(1.0, abs(lower_bound))


def run_em(
    model,
    data,
    params,
    *,
    max_iter: int,
    tol: float,
    monotonic: Literal["warn", "raise", "ignore"] = "warn",
    callbacks: Sequence[Callable[[EMIteration], Any]] = (),
    view: Callable[[Any], Any] = lambda params: params,
    verbose: int = 0,
    verbose_interval: int = 10,
    dtype=np.float64,
) -> EMResult:
    """Iterate M- and E-steps from ``params`` until convergence or ``max_iter``.

    Parameters
    ----------
    model : Mixture
        Provides ``maximize``, ``objective`` (the quantity EM increases, from a pass's
        result), ``regularization_gap``, ``empty_components`` and ``reseed``.
    data : InMemory
        Provides ``expectation`` and ``worst_rows``.
    params : object
        Starting parameters.
    max_iter : int
        Maximum number of iterations (M-step + E-step); 0 evaluates ``params`` only.
    tol : float
        Convergence threshold on the change of the mean log-likelihood per sample:
        iteration :math:`t` converges when :math:`|\\ell_t - \\ell_{t-1}| < \\mathrm{tol}`.
    monotonic : {'warn', 'raise', 'ignore'}
        What to do when the log-likelihood decreases by more than rounding
        (:func:`decrease_tolerance`) and the model's regulariser
        (``model.regularization_gap``) explain. Iterations that re-seed an empty component
        are exempt.
    callbacks : sequence of callables
        Called with an :class:`EMIteration` after the initial E-step (iteration 0) and after
        every iteration; returning ``True`` stops the loop.
    view : callable
        Maps internal parameters to what callbacks see.
    verbose, verbose_interval : int
        Print progress every ``verbose_interval`` iterations (2: with timing and change).
    dtype : dtype
        The data's dtype, for the rounding tolerance.
    """
    result = data.expectation(model, params)
    lower_bound = _checked(model.objective(params, result), 0)
    initial = lower_bound
    history: list[float] = []
    if _notify(callbacks, view, 0, lower_bound, np.inf, params):
        return EMResult(params, history, False, 0, initial)
    converged = False
    n_iter = 0
    start = time.perf_counter()
    for n_iter in range(1, max_iter + 1):
        result_stats = result.stats
        new_params = model.maximize(result_stats)
        empty = model.empty_components(result_stats)
        if empty.size:
            points = data.worst_rows(model, params, empty.size)
            new_params = model.reseed(new_params, result_stats, points)
        params = new_params
        result = data.expectation(model, params)
        new_bound = _checked(model.objective(params, result), n_iter)
        change = new_bound - lower_bound
        allowed = decrease_tolerance(lower_bound, dtype) + model.regularization_gap(
            params, result_stats
        )
        if not empty.size and -change > allowed:
            _report_decrease(monotonic, n_iter, lower_bound, new_bound)
        lower_bound = new_bound
        history.append(lower_bound)
        if verbose and n_iter % verbose_interval == 0:
            line = f"  Iteration {n_iter}"
            if verbose >= 2:
                now = time.perf_counter()
                line += f"\t time lapse {now - start:.5f}s\t ll change {change:.5f}"
                start = now
            print(line)
        stop = _notify(callbacks, view, n_iter, lower_bound, change, params)
        if abs(change) < tol:
            converged = True
        if converged or stop:
            break
    return EMResult(params, history, converged, n_iter, initial)


def _notify(callbacks, view, iteration: int, lower_bound: float, change: float, params) -> bool:
    """Call every callback with an :class:`EMIteration`; whether one asked to stop."""
    if not callbacks:
        return False
    info = EMIteration(iteration, lower_bound, change, view(params))
    stop = False
    for callback in callbacks:
        stop = bool(callback(info)) or stop
    return stop


def _checked(lower_bound: float, iteration: int) -> float:
    if np.isnan(lower_bound) or lower_bound == np.inf:
        raise FloatingPointError(
            f"The log-likelihood became {lower_bound} at iteration {iteration}: the fit broke "
            "down numerically. Scale the data or increase the regularisation."
        )
    return lower_bound


def _report_decrease(mode: str, iteration: int, before: float, after: float) -> None:
    message = (
        f"The log-likelihood decreased at iteration {iteration}, from {before!r} to {after!r} "
        f"(by {before - after:.3g} per sample), which exact EM never does. This points at a "
        "numerical problem (ill-conditioned covariances, float32 precision) or at a component "
        "family whose M-step does not maximise."
    )
    if mode == "raise":
        raise MonotonicityError(message)
    if mode == "warn":
        warnings.warn(message, MonotonicityWarning, stacklevel=3)
