r"""EM one chunk at a time: online EM and incremental EM.

Statistics add up, so both are a matter of when the M-step runs, not of the model.

**Online EM** (Cappé and Moulines 2009) keeps *normalised* statistics :math:`s`, the
statistics per unit of weight, and after the E-step of each mini-batch :math:`b_t` (at the
current parameters) moves them towards the batch's,

.. math::

    s_t = (1 - \rho_t)\, s_{t-1} + \rho_t\, \frac{S(b_t)}{W(b_t)}, \qquad
    \rho_t = (t + t_0)^{-\kappa}, \qquad \theta_t = M(s_t),

with :math:`W(b_t)` the batch's total weight, the learning offset :math:`t_0 \ge 0` and the
learning decay :math:`\kappa \in (1/2, 1]` (so that :math:`\sum_t \rho_t = \infty` and
:math:`\sum_t \rho_t^2 < \infty`: a stochastic approximation of the EM fixed point over the
population). The first step of a stream takes :math:`s_1 = S(b_1)/W(b_1)`: one EM step on
the first batch. One pass over a long stream approaches the batch optimum at the cost of one
E-step per row.

**Online variational Bayes** (Sato 2001; stochastic variational inference, Hoffman, Blei,
Wang and Paisley 2013) is the same recursion with the M-step at the scale of the data set:
the variational posterior of a conjugate model has natural parameters
:math:`\lambda = \eta_0 + S` (the prior's plus the statistics), so it runs on
:math:`N s_t`,

.. math::

    \lambda_t = \eta_0 + N s_t
      = (1 - \rho_t)\, \lambda_{t-1} + \rho_t \Big(\eta_0 + N\, \frac{S(b_t)}{W(b_t)}\Big),

SVI's average of natural parameters, each batch's statistics scaled up to a data set of
:math:`N` rows. Any M-step that is not invariant to the scale of the statistics needs this
(a prior, a ridge penalty): ``data_scale=True``. :math:`N` is ``n_samples_total``, or, when
it is ``None``, the weight the stream has shown so far, :math:`N_t = \sum_{u \le t}
W(b_u)` — the posterior of as many rows as have been seen (the first step is then exactly
one VBEM step on the first batch). A stream that passes over the same rows more than once
should give their number, else each pass counts them again.

**Incremental EM** (Neal and Hinton 1998) keeps every chunk's statistics :math:`S_j` and
the entropy :math:`H_j` of its responsibilities. A first pass computes them all at the
starting parameters, followed by one M-step; every later pass refreshes one chunk at a time
— :math:`S \leftarrow S - S_j^{old} + S_j^{new}` — each followed by an M-step. Each chunk's
E-step maximises the free energy

.. math::

    F(q, \theta) = Q(\theta \mid S) + \sum_j H_j
      = \ell(\theta) - \mathrm{KL}(q \,\|\, p(Z \mid X, \theta)) \le \ell(\theta)

over that chunk's :math:`q_j`, and the M-step over :math:`\theta`, so :math:`F` never
decreases; the loop checks it after every M-step (needs the family's
``expected_log_likelihood``). The parameters profit from each chunk's E-step straight away,
which often needs fewer passes than batch EM.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from emkit.distributions._base import Statistics
from emkit.em.loop import (
    EMIteration,
    EMResult,
    check_m_step,
    decrease_tolerance,
    maximize,
    notify,
    report_decrease,
)
from emkit.em.strategies import EStep, EStepPass, Exact

__all__ = ["OnlineEM", "run_incremental", "step_size"]


def step_size(step: int, decay: float, offset: float) -> float:
    r""":math:`\rho_t = (t + t_0)^{-\kappa}` for step :math:`t \ge 1`."""
    return float((step + offset) ** (-decay))


@dataclasses.dataclass
class OnlineEM:
    """The state of online EM over one stream: normalised statistics and the step count.

    Parameters
    ----------
    model : Mixture
        Provides ``maximize`` (or ``maximize_from``).
    decay : float
        :math:`\\kappa \\in (1/2, 1]`.
    offset : float
        :math:`t_0 \\ge 0`.
    origin : object
        The frame of the stream's parameters, kept for its estimator: the point rows are
        shifted by (``None``: none), or a regression's origins of each column.
    seed : int or None
        Root of the random draws of a random E-step strategy.
    monotonic : {'warn', 'raise', 'ignore'}
        What a generalized M-step that lowers Q does.
    data_scale : bool
        Run the M-step on :math:`N s_t` rather than :math:`s_t` (online variational Bayes,
        or any M-step that depends on the scale of the statistics).
    n_samples_total : float or None
        :math:`N`, the size of the data set the stream samples; ``None``: the weight seen so
        far (only with ``data_scale``).

    Attributes
    ----------
    stats : Statistics or None
        The normalised statistics :math:`s_t`.
    n_steps : int
        :math:`t`.
    seen : float
        The total weight of the batches so far.
    """

    model: Any
    decay: float
    offset: float
    origin: Any = None
    seed: int | None = None
    monotonic: Literal["warn", "raise", "ignore"] = "warn"
    data_scale: bool = False
    n_samples_total: float | None = None
    stats: Statistics | None = None
    n_steps: int = 0
    seen: float = 0.0

    def data_size(self) -> float:
        """:math:`N`: ``n_samples_total``, or the weight seen so far."""
        return self.seen if self.n_samples_total is None else float(self.n_samples_total)

    def update(self, params, batch_stats: Statistics, batch_weight: float):
        """Fold one batch's statistics (a total over weight ``batch_weight``) into the
        normalised statistics, then the M-step from ``params`` (on :math:`N s_t` with
        ``data_scale``)."""
        batch = batch_stats * (1.0 / batch_weight)
        self.n_steps += 1
        self.seen += float(batch_weight)
        if self.stats is None:
            self.stats = batch
        else:
            rho = step_size(self.n_steps, self.decay, self.offset)
            self.stats = (1.0 - rho) * self.stats + rho * batch
        stats = self.stats * self.data_size() if self.data_scale else self.stats
        step = maximize(self.model, params, stats)
        check_m_step(step, self.model, stats, self.n_steps, self.monotonic)
        return step.params

    def step(self, data, params, strategy: EStep | None = None) -> tuple[Any, float]:
        r"""One step on the mini-batch ``data`` (an executor): its E-step at ``params``, then
        :meth:`update`.

        Returns
        -------
        params : object
            The parameters after the step.
        bound : float
            The strategy's objective per sample on the batch at ``params`` (the batch's
            mean log-likelihood for exact EM); with ``data_scale``, the model's own terms
            count for a data set of :math:`N` rows (variational Bayes:
            :math:`\frac1{W(b)} \sum_{n \in b} w_n \log\sum_k e^{\rho_{nk}} -
            \mathrm{KL}/N`, the batch's estimate of the ELBO per sample).
        """
        strategy = Exact() if strategy is None else strategy
        estep = self.estep(strategy)
        if estep is None:
            result = data.expectation(self.model, params)
        else:
            result = data.expectation(self.model, params, estep)
        new_params = self.update(params, result.stats, result.total_weight)
        if self.data_scale:
            result = dataclasses.replace(result, total_weight=self.data_size())
        return new_params, strategy.objective(self.model, params, result)

    def run(self, data, params, *, n_passes: int = 1, strategy: EStep | None = None):
        """Online EM over the chunks of ``data`` (each chunk a mini-batch), ``n_passes``
        times; the parameters after the last step."""
        strategy = Exact() if strategy is None else strategy
        current = params
        for _ in range(n_passes):
            chunks = data.each_expectation(
                self.model, lambda: current, lambda index: self.estep(strategy)  # noqa: B023
            )
            for chunk in chunks:
                current = self.update(current, chunk.stats, chunk.weight)
        return current

    def estep(self, strategy: EStep) -> EStepPass | None:
        """The E-step pass of the next step (``None`` for the plain exact one)."""
        if type(strategy) is Exact:
            return None
        setting = strategy.schedule().setting(self.n_steps)
        return EStepPass(strategy, setting, self.seed, (self.n_steps,))


def run_incremental(
    model,
    data,
    params,
    *,
    n_passes: int,
    tol: float,
    monotonic: Literal["warn", "raise", "ignore"] = "warn",
    callbacks: Sequence[Callable[[EMIteration], Any]] = (),
    view: Callable[[Any], Any] = lambda params: params,
    dtype=np.float64,
    strategy: EStep | None = None,
    seed: int | None = None,
) -> EMResult:
    """Incremental EM over the chunks of ``data`` for at most ``n_passes`` passes.

    Parameters
    ----------
    model : Mixture
        Needs ``expected_log_likelihood`` besides the E- and M-steps.
    data : InMemory or Stream
        Visited with ``each_expectation``; its chunks must come in the same order on every
        pass.
    params : object
        Starting parameters.
    n_passes : int
        Passes over the data; the first computes every chunk's statistics, so at least two
        are needed for an incremental step.
    tol : float
        Stop when the free energy per sample changes by less than ``tol`` over a pass.
    monotonic : {'warn', 'raise', 'ignore'}
        What a decrease of the free energy (or of Q in a generalized M-step) does, beyond
        rounding and the model's regularisation gap, where the strategy guarantees it.
    callbacks, view
        As :func:`emkit.em.run_em`, called after each pass; ``lower_bound`` and ``elbo``
        are the free energy per sample.
    dtype : dtype
        The data's dtype, for the rounding tolerance.
    strategy : EStep or None
        The E-step strategy (exact by default); its schedule runs per pass.
    seed : int or None
        Root of the random draws of a random strategy.

    Returns
    -------
    EMResult
        ``lower_bounds`` holds the free energy per sample after each pass (a lower bound of
        the log-likelihood); ``initial_lower_bound`` the log-likelihood at ``params``.
    """
    strategy = Exact() if strategy is None else strategy
    schedule = strategy.schedule()
    current = params

    def estep_of(iteration: int) -> Callable[[int], EStepPass]:
        pass_estep = EStepPass(strategy, schedule.setting(iteration), seed, (iteration,), True)
        return lambda index: pass_estep

    parts = list(data.each_expectation(model, lambda: current, estep_of(0)))
    total_weight = math.fsum(part.weight for part in parts)
    initial = math.fsum(part.log_likelihood for part in parts) / total_weight
    stats = _total(parts)
    entropy = math.fsum(part.sums["entropy"] for part in parts)

    def free_energy(candidate) -> float:
        return (model.expected_log_likelihood(candidate, stats) + entropy) / total_weight

    step = maximize(model, current, stats)
    check_m_step(step, model, stats, 1, monotonic)
    current = step.params
    bound = free_energy(current)
    history = [bound]
    stop = notify(callbacks, lambda: EMIteration(1, bound, np.inf, view(current), elbo=bound))
    converged = False
    n_passes_done = 1
    for iteration in range(2, n_passes + 1):
        if stop:
            break
        n_passes_done = iteration
        guaranteed = schedule.guarantees(iteration)
        before_pass = bound
        for chunk in data.each_expectation(model, lambda: current, estep_of(iteration - 1)):  # noqa: B023
            old = parts[chunk.index]
            parts[chunk.index] = chunk
            stats = stats + chunk.stats + (-1.0) * old.stats
            entropy += chunk.sums["entropy"] - old.sums["entropy"]
            step = maximize(model, current, stats)
            check_m_step(step, model, stats, iteration, monotonic)
            current = step.params
            new_bound = free_energy(current)
            allowed = decrease_tolerance(bound, dtype) + model.regularization_gap(current, stats)
            if guaranteed and bound - new_bound > allowed:
                report_decrease(
                    monotonic,
                    f"The free energy decreased at pass {iteration}, chunk {chunk.index}, from "
                    f"{bound!r} to {new_bound!r} (by {bound - new_bound:.3g} per sample), "
                    "which incremental EM never does.",
                )
            bound = new_bound
        stats = _total(parts)
        entropy = math.fsum(part.sums["entropy"] for part in parts)
        bound = free_energy(current)
        history.append(bound)
        change = bound - before_pass
        stop = notify(
            callbacks,
            lambda: EMIteration(iteration, bound, change, view(current), elbo=bound),  # noqa: B023
        )
        converged = schedule.converged(iteration, change, tol)
        if converged:
            break
    return EMResult(current, history, converged, n_passes_done, initial)


def _total(parts) -> Statistics:
    total = None
    for part in parts:
        total = part.stats if total is None else total + part.stats
    return total
