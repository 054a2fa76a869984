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
import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from emkit.em.maximization import MStepResult
from emkit.em.strategies import EStep, EStepPass, Exact, Setting

__all__ = [
    "EMIteration",
    "EMResult",
    "MonotonicityError",
    "MonotonicityWarning",
    "as_callbacks",
    "check_m_step",
    "decrease_tolerance",
    "maximize",
    "notify",
    "report_decrease",
    "run_em",
]


class MonotonicityError(RuntimeError):
    """The log-likelihood decreased, which exact EM never does."""


class MonotonicityWarning(RuntimeWarning):
    """The log-likelihood decreased, which exact EM never does."""


@dataclasses.dataclass(frozen=True)
class EMIteration:
    r"""What a callback receives after each iteration.

    Attributes
    ----------
    iteration : int
        1 for the first M-step; 0 for the initial parameters.
    lower_bound : float
        The monitored objective per sample at ``params``: the mean log-likelihood, or the
        classification log-likelihood for hard EM.
    change : float
        ``lower_bound`` minus the previous one (``inf`` at iteration 0).
    params : object
        The model's parameters after this iteration (estimators pass their own view).
    log_likelihood : float
        Mean log-likelihood per sample at ``params``, :math:`\ell(\theta_t)`.
    elbo : float
        :math:`\mathcal L(q_{t-1}, \theta_t) = [Q(\theta_t \mid q_{t-1}) + H(q_{t-1})]/N`:
        the evidence lower bound after the M-step, before the E-step refreshes
        :math:`q` (NaN unless the run tracks it, and at iteration 0).
    kl : float
        :math:`\mathrm{KL}(q_{t-1} \,\|\, p(Z \mid X, \theta_t))/N = \ell - \mathcal L`
        at the same point, :math:`\ge 0`.
    elbo_after, kl_after : float
        The same with the refreshed :math:`q_t` of this iteration's E-step: after an exact
        E-step, :math:`\mathcal L = \ell` and the KL is 0.
    setting : Setting or None
        The E-step strategy's setting of this iteration's pass (temperature, draws per row).
    """

    iteration: int
    lower_bound: float
    change: float
    params: Any
    log_likelihood: float = math.nan
    elbo: float = math.nan
    kl: float = math.nan
    elbo_after: float = math.nan
    kl_after: float = math.nan
    setting: Setting | None = None


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
    strategy: EStep | None = None,
    seed: int | None = None,
    track_elbo: bool = False,
) -> EMResult:
    """Iterate M- and E-steps from ``params`` until convergence or ``max_iter``.

    Parameters
    ----------
    model : Mixture
        Provides ``maximize`` (or ``maximize_from``, for generalized M-steps), ``objective``
        (the quantity EM increases, from a pass's result), ``regularization_gap``,
        ``empty_components`` and ``reseed``; ``expected_log_likelihood`` for
        ``track_elbo``.
    data : InMemory or Stream
        Provides ``expectation`` and ``worst_rows``.
    params : object
        Starting parameters.
    max_iter : int
        Maximum number of iterations (M-step + E-step); 0 evaluates ``params`` only.
    tol : float
        Convergence threshold on the change of the monitored objective per sample:
        iteration :math:`t` converges when :math:`|\\ell_t - \\ell_{t-1}| < \\mathrm{tol}`
        (the strategy's schedule may ask for more; see :mod:`emkit.em.strategies`).
    monotonic : {'warn', 'raise', 'ignore'}
        What to do when the objective decreases by more than rounding
        (:func:`decrease_tolerance`) and the model's regulariser
        (``model.regularization_gap``) explain, on iterations where the strategy guarantees
        an increase; and when a generalized M-step lowers Q. Iterations that re-seed an
        empty component are exempt.
    callbacks : sequence of callables
        Called with an :class:`EMIteration` after the initial E-step (iteration 0) and after
        every iteration; returning ``True`` stops the loop.
    view : callable
        Maps internal parameters to what callbacks see.
    verbose, verbose_interval : int
        Print progress every ``verbose_interval`` iterations (2: with timing and change).
    dtype : dtype
        The data's dtype, for the rounding tolerance.
    strategy : EStep or None
        The E-step (:mod:`emkit.em.strategies`); ``None`` for the exact one.
    seed : int or None
        Root of the random draws of a random strategy: the draws of chunk :math:`c` at
        iteration :math:`t` come from ``SeedSequence(seed, spawn_key=(t, c))``.
    track_elbo : bool
        Accumulate the entropy of :math:`q` and report the ELBO and the KL divergence in
        every :class:`EMIteration`.
    """
    strategy = Exact() if strategy is None else strategy
    schedule = strategy.schedule()
    plain = type(strategy) is Exact and not track_elbo

    def e_step(current, iteration: int):
        if plain:
            return data.expectation(model, current)
        setting = schedule.setting(iteration)
        return data.expectation(
            model, current, EStepPass(strategy, setting, seed, (iteration,), track_elbo)
        )

    def elbo(current, result) -> float:
        """:math:`[Q(\\theta \\mid q) + H(q)]/N` for the :math:`q` of a pass ``result``."""
        q = model.expected_log_likelihood(current, result.stats)
        return q / result.total_weight + result.sums["entropy"]

    def info(iteration, bound, change, current, result, previous) -> EMIteration:
        extra: dict[str, Any] = {
            "log_likelihood": result.log_likelihood,
            "setting": None if plain else schedule.setting(iteration),
        }
        if track_elbo:
            after = elbo(current, result)
            extra.update(elbo_after=after, kl_after=result.log_likelihood - after)
            if previous is not None:
                before = elbo(current, previous)
                extra.update(elbo=before, kl=result.log_likelihood - before)
        return EMIteration(iteration, bound, change, view(current), **extra)

    result = e_step(params, 0)
    lower_bound = _checked(strategy.objective(model, params, result), 0)
    initial = lower_bound
    history: list[float] = []
    if notify(callbacks, lambda: info(0, lower_bound, np.inf, params, result, None)):
        return EMResult(params, history, False, 0, initial)
    converged = False
    n_iter = 0
    start = time.perf_counter()
    for n_iter in range(1, max_iter + 1):
        previous = result
        stats = previous.stats
        step = maximize(model, params, stats)
        new_params = step.params
        empty = model.empty_components(stats)
        if empty.size:
            points = data.worst_rows(model, params, empty.size)
            new_params = model.reseed(new_params, stats, points)
        else:
            check_m_step(step, model, stats, n_iter, monotonic)
        guaranteed = schedule.guarantees(n_iter)
        params = new_params
        result = e_step(params, n_iter)
        new_bound = _checked(strategy.objective(model, params, result), n_iter)
        change = new_bound - lower_bound
        allowed = decrease_tolerance(lower_bound, dtype) + model.regularization_gap(
            params, stats
        )
        if guaranteed and not empty.size and -change > allowed:
            report_decrease(
                monotonic,
                f"The {_objective_words(strategy)} decreased at iteration {n_iter}, from "
                f"{lower_bound!r} to {new_bound!r} (by {lower_bound - new_bound:.3g} per "
                f"sample), which {_algorithm_words(strategy)} never does. This points at a "
                "numerical problem (ill-conditioned covariances, float32 precision) or at a "
                "component family whose M-step does not maximise.",
            )
        lower_bound = new_bound
        history.append(lower_bound)
        if verbose and n_iter % verbose_interval == 0:
            line = f"  Iteration {n_iter}"
            if verbose >= 2:
                now = time.perf_counter()
                line += f"\t time lapse {now - start:.5f}s\t ll change {change:.5f}"
                start = now
            print(line)
        stop = notify(
            callbacks,
            lambda: info(n_iter, lower_bound, change, params, result, previous),  # noqa: B023
        )
        converged = schedule.converged(n_iter, change, tol)
        if converged or stop:
            break
    return EMResult(params, history, converged, n_iter, initial)


def maximize(model, params, stats) -> MStepResult:
    """The model's M-step from ``params`` on ``stats``: ``model.maximize_from`` where the
    model has it (generalized and conditional M-steps start from the current parameters),
    else ``model.maximize(stats)``."""
    update = getattr(model, "maximize_from", None)
    if update is None:
        return MStepResult(model.maximize(stats))
    return update(params, stats)


def check_m_step(step: MStepResult, model, stats, iteration: int, monotonic: str) -> None:
    """Report a sub-step of a generalized or conditional M-step that lowered Q.

    Q per sample may not decrease by more than rounding (:func:`decrease_tolerance` in
    float64) plus the model's regularisation gap.
    """
    if len(step.trail) < 2:
        return
    gap = model.regularization_gap(step.params, stats)
    for (_, before), (label, after) in zip(step.trail, step.trail[1:], strict=False):
        if before - after > decrease_tolerance(before, np.float64) + gap:
            report_decrease(
                monotonic,
                f"The M-step lowered Q at iteration {iteration}, in its {label!r} step, from "
                f"{before!r} to {after!r} (by {before - after:.3g} per sample): a generalized "
                "or conditional M-step must not decrease the expected complete-data "
                "log-likelihood. The family's partial M-step is wrong.",
            )


def _objective_words(strategy: EStep) -> str:
    return strategy.objective_name.replace("_", " ").replace("log likelihood", "log-likelihood")


def _algorithm_words(strategy: EStep) -> str:
    return "exact EM" if strategy.objective_name == "log_likelihood" else (
        f"{strategy.name} EM"
    )


def notify(callbacks, make_info: Callable[[], EMIteration]) -> bool:
    """Call every callback with the :class:`EMIteration` ``make_info()``; whether one asked
    to stop."""
    if not callbacks:
        return False
    info = make_info()
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


def report_decrease(mode: str, message: str) -> None:
    """Raise :class:`MonotonicityError`, warn with :class:`MonotonicityWarning` or do
    nothing, as ``mode`` says."""
    if mode == "raise":
        raise MonotonicityError(message)
    if mode == "warn":
        warnings.warn(message, MonotonicityWarning, stacklevel=3)


def as_callbacks(callbacks) -> tuple[Callable[[EMIteration], Any], ...]:
    """An estimator's ``callbacks`` parameter (None, a callable or a sequence of them) as a
    tuple, naming the position of anything that is not callable."""
    if callbacks is None:
        return ()
    callbacks = (callbacks,) if callable(callbacks) else tuple(callbacks)
    for position, callback in enumerate(callbacks):
        if not callable(callback):
            raise TypeError(f"callbacks[{position}] is not callable: {callback!r}.")
    return callbacks
