r"""E-step strategies: what a pass puts in place of the exact posterior.

Every strategy starts from the same joint log-probabilities
:math:`a_{nk} = \log \pi_k + \log p(x_n \mid z_n = k)` of a chunk, computes the exact
log-likelihood :math:`\log p(x_n) = \operatorname{logsumexp}_k a_{nk}` and the posterior
:math:`\gamma_{nk} = e^{a_{nk} - \log p(x_n)}`, then hands the statistics a distribution
:math:`q_{nk}` of its own:

============================  ==============================================================
``'em'`` (:class:`Exact`)     :math:`q_{nk} = \gamma_{nk}`, the exact E-step.
``'hard'`` (:class:`Hard`)    classification EM (CEM): :math:`q_{nk} = [k = \arg\max_j a_{nj}]`.
``'stochastic'``              stochastic EM (SEM): one class drawn per row,
                              :math:`z_n \sim \gamma_{n\cdot}`, :math:`q_{nk} = [k = z_n]`.
``'monte-carlo'``             Monte Carlo EM (MCEM): the average of :math:`m_t` such draws,
                              :math:`q_{nk} = c_{nk} / m_t`, :math:`c_{n\cdot} \sim
                              \operatorname{Multinomial}(m_t, \gamma_{n\cdot})`.
``'annealed'``                deterministic annealing: :math:`q_{nk} \propto e^{\beta_t a_{nk}}`
                              with :math:`\beta_t \uparrow 1`, then exact EM.
============================  ==============================================================

The notes' decomposition :math:`\log p(X \mid \theta) = \mathcal L(q, \theta) +
\mathrm{KL}(q \,\|\, p(Z \mid X, \theta))` says what each one guarantees. Exact EM sets the
KL to zero, so the log-likelihood never decreases. CEM alternately maximises the
classification log-likelihood :math:`C(\theta, z) = \sum_n \log \pi_{z_n} p(x_n \mid z_n)`
over :math:`z` (the argmax) and over :math:`\theta` (the M-step), so :math:`C` never
decreases: that is what it monitors. SEM, MCEM and the annealing phase guarantee neither;
their log-likelihood is reported but not checked.

The same strategies serve variational Bayes EM (:mod:`emkit.em.variational`), with the
expected log joint :math:`\rho_{nk}` in place of :math:`a_{nk}` and the ELBO of the optimal
:math:`q(Z)`, :math:`\sum_n w_n \log\sum_k e^{\rho_{nk}} - \mathrm{KL}(q(\theta) \,\|\,
p(\theta))`, in place of the log-likelihood: exact VBEM never lowers it, variational CEM never
lowers its point-mass counterpart, and the random and annealed passes are not held to it.

Random draws are reproducible and do not depend on threads: the draws of chunk :math:`c` at
pass :math:`t` come from ``numpy.random.SeedSequence(seed, spawn_key=(t, c))``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np

from emkit._backend import Array, as_backend, device_of, log_normalize, namespace, to_numpy

__all__ = [
    "ALGORITHMS",
    "Annealed",
    "EStep",
    "EStepPass",
    "Exact",
    "Hard",
    "MonteCarlo",
    "Schedule",
    "Setting",
    "Stochastic",
    "get_strategy",
]


@dataclasses.dataclass(frozen=True)
class Setting:
    """What a strategy's schedule sets for one pass.

    Attributes
    ----------
    beta : float
        Inverse temperature :math:`\\beta` of the annealed posterior (1: none).
    n_samples : int
        Draws per row :math:`m` of stochastic and Monte Carlo EM (0: no draws).
    """

    beta: float = 1.0
    n_samples: int = 0


@dataclasses.dataclass(frozen=True)
class EStepPass:
    """Everything an E-step pass needs beyond the parameters.

    Attributes
    ----------
    strategy : EStep
        How responsibilities are formed.
    setting : Setting
        The schedule's values for this pass.
    seed : int or None
        Root entropy of the random draws (``None`` for strategies that draw nothing).
    key : tuple of int
        Where this pass, and then this chunk, sits: ``(iteration,)`` for a pass, extended
        with the chunk's index by :meth:`for_chunk`.
    entropy : bool
        Whether to accumulate the entropy :math:`H(q) = -\\sum_{nk} q_{nk} \\log q_{nk}`.
    """

    strategy: EStep
    setting: Setting = Setting()
    seed: int | None = None
    key: tuple[int, ...] = ()
    entropy: bool = False

    def for_chunk(self, index: int) -> EStepPass:
        """The same pass for chunk ``index``: its own, independent random stream."""
        return dataclasses.replace(self, key=(*self.key, int(index)))

    def rng(self) -> np.random.Generator:
        """Generator of this pass and chunk, from ``SeedSequence(seed, spawn_key=key)``."""
        if self.seed is None:
            raise ValueError(f"the {self.strategy.name!r} E-step draws random numbers: give it "
                             "a seed")
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=self.key))

    def responsibilities(self, log_joint: Array) -> tuple[Array, Array, dict[str, Array]]:
        """``(q, log p(x_n), per-row extras)`` of a chunk; see :meth:`EStep.responsibilities`."""
        resp, log_norm, extras = self.strategy.responsibilities(log_joint, self)
        if self.entropy:
            extras = {**extras, "entropy": entropy(resp)}
        return resp, log_norm, extras


def entropy(resp: Array) -> Array:
    r"""Row entropies :math:`H(q_n) = -\sum_k q_{nk} \log q_{nk}` (with :math:`0 \log 0 = 0`)."""
    xp = namespace(resp)
    positive = resp > 0
    logs = xp.log(xp.where(positive, resp, xp.ones_like(resp)))
    return -xp.sum(resp * logs, axis=1)


class Schedule:
    """Per-run state of a strategy: its setting for each pass, what it guarantees, when it
    has converged. This one is stationary: exact passes, convergence when the monitored
    objective changes by less than ``tol``."""

    def setting(self, iteration: int) -> Setting:
        """The setting of the pass at ``iteration`` (0 for the starting parameters)."""
        return Setting()

    def guarantees(self, iteration: int) -> bool:
        """Whether the objective at ``iteration`` cannot be below the one before: the
        statistics of the M-step came from a pass whose strategy guarantees it."""
        return True

    def converged(self, iteration: int, change: float, tol: float) -> bool:
        """Whether the run stops after ``iteration``, whose objective changed by ``change``."""
        return abs(change) < tol


class EStep:
    """Base of the E-step strategies (see the module's table)."""

    #: Name accepted by the estimators' ``algorithm`` parameter.
    name: ClassVar[str] = "em"
    #: Whether the strategy draws random numbers (and needs a seed).
    random: ClassVar[bool] = False
    #: What the loop monitors: ``'log_likelihood'`` or a per-row extra of the strategy.
    objective_name: ClassVar[str] = "log_likelihood"

    def schedule(self) -> Schedule:
        """A fresh per-run schedule."""
        return Schedule()

    def objective(self, model, params: Any, result) -> float:
        r"""The monitored objective of a pass ``result`` (per sample): the model's objective
        with the strategy's per-row term in place of the log-likelihood.

        For a mixture that term is the whole objective (the classification log-likelihood of
        hard EM, say); a model adds its own terms to it: variational Bayes subtracts
        :math:`\mathrm{KL}(q(\theta) \,\|\, p(\theta))/N`, a ridge adds its penalty per sample.
        """
        if self.objective_name != "log_likelihood":
            result = dataclasses.replace(result, log_likelihood=result.sums[self.objective_name])
        return model.objective(params, result)

    def responsibilities(
        self, log_joint: Array, estep: EStepPass
    ) -> tuple[Array, Array, dict[str, Array]]:
        r"""From :math:`a_{nk}` (n, K): the distribution :math:`q_{nk}` handed to the
        statistics, :math:`\log p(x_n)`, and per-row extras (summed by the executor). A NumPy
        ``log_joint`` may be overwritten."""
        resp, log_norm = log_normalize(log_joint)
        return resp, log_norm, {}


@dataclasses.dataclass(frozen=True)
class Exact(EStep):
    """The exact E-step: :math:`q_{nk} = p(z_n = k \\mid x_n, \\theta)`."""

    name: ClassVar[str] = "em"


@dataclasses.dataclass(frozen=True)
class Hard(EStep):
    r"""Classification EM (Celeux and Govaert 1992): one-hot argmax responsibilities.

    The monitored objective is the classification log-likelihood per sample,
    :math:`\frac1N \sum_n w_n \max_k a_{nk}`, which CEM never decreases (up to the
    family's regulariser). With spherical components of equal, fixed variance and equal
    weights, CEM is Lloyd's k-means. Under variational Bayes, :math:`a_{nk}` is the expected
    log joint :math:`\rho_{nk}` and :math:`q(Z)` is restricted to point masses (variational
    CEM): the argmax maximises the bound :math:`\sum_n w_n \rho_{n z_n} - \mathrm{KL}(q(\theta)
    \,\|\, p(\theta))` over them and the M-step over :math:`q(\theta)`, so that bound never
    decreases (see :meth:`EStep.objective`).
    """

    name: ClassVar[str] = "hard"
    objective_name: ClassVar[str] = "classification_log_likelihood"

    def responsibilities(self, log_joint, estep):
        xp = namespace(log_joint)
        best = xp.max(log_joint, axis=1)
        labels = xp.argmax(log_joint, axis=1)
        _, log_norm = log_normalize(log_joint)
        return one_hot(labels, log_joint), log_norm, {self.objective_name: best}


def one_hot(labels: Array, like: Array) -> Array:
    """(n, K) indicators of ``labels`` in the namespace, dtype and device of ``like``."""
    xp = namespace(like)
    classes = xp.arange(like.shape[1], dtype=labels.dtype, device=device_of(labels))
    return xp.astype(labels[:, None] == classes[None, :], like.dtype)


class _MonteCarloSchedule(Schedule):
    """Sample sizes that grow when Monte Carlo noise swamps the EM step; see
    :class:`MonteCarlo`."""

    def __init__(self, strategy: MonteCarlo) -> None:
        self.strategy = strategy
        self.n_samples = strategy.n_samples
        self.streak = 0

    def setting(self, iteration: int) -> Setting:
        return Setting(n_samples=self.n_samples)

    def guarantees(self, iteration: int) -> bool:
        return False

    def converged(self, iteration: int, change: float, tol: float) -> bool:
        strategy = self.strategy
        if change < 0:
            self.n_samples = min(
                strategy.max_samples, math.ceil(self.n_samples * strategy.growth)
            )
        self.streak = self.streak + 1 if abs(change) < tol else 0
        return self.streak >= strategy.patience


@dataclasses.dataclass(frozen=True)
class MonteCarlo(EStep):
    r"""Monte Carlo EM (Wei and Tanner 1990) with an automatic sample size.

    Each row's responsibilities are the average of :math:`m_t` classes drawn from its
    posterior, :math:`q_{nk} = c_{nk}/m_t` with
    :math:`c_{n\cdot} \sim \operatorname{Multinomial}(m_t, \gamma_{n\cdot})`; the statistics
    are then an unbiased Monte Carlo estimate of the exact ones, with variance
    :math:`\propto 1/m_t`.

    **Sample size.** Following Booth and Hobert (1999), the sample size grows when the EM
    step is swamped by Monte Carlo error. Here the log-likelihood :math:`\ell(\theta_t)` of
    each iterate is computed exactly (only the responsibilities are simulated), and an exact
    EM step never lowers it; so a decrease, :math:`\ell(\theta_t) < \ell(\theta_{t-1})`, is
    evidence that the simulation error dominates the step, and the next pass draws
    :math:`m_{t+1} = \lceil g\, m_t \rceil` samples per row (``growth`` :math:`g`; Booth and
    Hobert use :math:`g = 1 + 1/k`, :math:`k \in \{3, 4, 5\}`), at most ``max_samples``.
    Near the optimum the exact step shrinks while the noise does not, decreases become
    frequent and :math:`m_t` grows geometrically: small samples far from the optimum, large
    ones near it, as Wei and Tanner recommend.

    **Stopping.** A single small change can be luck of the draw. As Booth and Hobert, the
    run stops only when the change of the mean log-likelihood stays below ``tol`` for
    ``patience`` consecutive iterations (3 by default). Since the noise floor of the change
    falls as :math:`1/m_t`, this happens once :math:`m_t` is large enough for ``tol``; if
    ``max_samples`` is reached first, ``max_iter`` ends the run.

    Parameters
    ----------
    n_samples : int
        Draws per row at the first pass, :math:`m_1`.
    growth : float
        Factor :math:`g \ge 1` applied to :math:`m_t` after a decrease.
    max_samples : int
        Largest :math:`m_t`.
    patience : int
        Consecutive iterations with a change below ``tol`` needed to stop.
    """

    n_samples: int = 10
    growth: float = 4.0 / 3.0
    max_samples: int = 10_000
    patience: int = 3

    name: ClassVar[str] = "monte-carlo"
    random: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.n_samples < 1 or self.max_samples < self.n_samples:
            raise ValueError(
                f"need 1 <= n_samples <= max_samples, got {self.n_samples} and "
                f"{self.max_samples}"
            )
        if self.growth < 1.0 or self.patience < 1:
            raise ValueError(
                f"need growth >= 1 and patience >= 1, got {self.growth} and {self.patience}"
            )

    def schedule(self) -> Schedule:
        return _MonteCarloSchedule(self)

    def responsibilities(self, log_joint, estep):
        resp, log_norm = log_normalize(log_joint)
        probabilities = to_numpy(resp, np.float64)
        # Rows that no component can explain (all zero) are left to the log-likelihood,
        # which is then -inf; multinomial draws need a distribution.
        total = probabilities.sum(axis=1, keepdims=True)
        probabilities = np.where(total > 0, probabilities / np.where(total > 0, total, 1.0),
                                 1.0 / probabilities.shape[1])
        n_samples = estep.setting.n_samples
        counts = estep.rng().multinomial(n_samples, probabilities)
        return as_backend(counts / n_samples, like=log_joint), log_norm, {}


@dataclasses.dataclass(frozen=True)
class Stochastic(MonteCarlo):
    r"""Stochastic EM (Celeux and Diebolt 1985): one class drawn per row,
    :math:`z_n \sim \gamma_{n\cdot}`, one-hot responsibilities.

    It is Monte Carlo EM with :math:`m = 1` that never grows: the iterates form a Markov
    chain around the maximum-likelihood estimate, whose spread does not shrink with the
    iterations (it is :math:`O(1/\sqrt N)`). The run stops as :class:`MonteCarlo` does, when
    the change of the log-likelihood stays below ``tol`` for ``patience`` iterations, so
    ``tol`` must sit above that noise floor; otherwise ``max_iter`` ends it.
    """

    n_samples: int = 1
    growth: float = 1.0
    max_samples: int = 1

    name: ClassVar[str] = "stochastic"


class _AnnealingSchedule(Schedule):
    def __init__(self, strategy: Annealed) -> None:
        self.strategy = strategy

    def setting(self, iteration: int) -> Setting:
        return Setting(beta=self.strategy.beta(iteration))

    def guarantees(self, iteration: int) -> bool:
        return self.strategy.beta(iteration - 1) == 1.0

    def converged(self, iteration: int, change: float, tol: float) -> bool:
        return self.guarantees(iteration) and abs(change) < tol


@dataclasses.dataclass(frozen=True)
class Annealed(EStep):
    r"""Deterministic annealing EM (Ueda and Nakano 1998).

    The E-step maximises the free energy at inverse temperature :math:`\beta`,
    :math:`F_\beta(q, \theta) = E_q[\log p(X, Z \mid \theta)] + \beta^{-1} H(q)`, whose
    maximiser is the tempered posterior :math:`q_{nk} \propto e^{\beta a_{nk}}`. A small
    :math:`\beta` flattens the likelihood surface (at :math:`\beta \to 0` every component
    sits on the data's mean); raising it tracks a maximum as the surface sharpens, which
    avoids many poor local maxima of the plain likelihood.

    Schedule: :math:`\beta_t = \min(1, \beta_0 g^t)` at pass :math:`t` (or the given
    ``betas``, then 1). Once :math:`\beta = 1` the passes are exact EM: the log-likelihood
    is checked for monotonicity from the first iteration whose statistics are exact, and
    the run may only stop from then on.

    Parameters
    ----------
    beta0 : float
        Starting inverse temperature, in (0, 1].
    growth : float
        Factor :math:`g > 1` between successive temperatures.
    betas : tuple of float or None
        Explicit increasing schedule in (0, 1] (replaces ``beta0`` and ``growth``).
    """

    beta0: float = 0.3
    growth: float = 1.1
    betas: tuple[float, ...] | None = None

    name: ClassVar[str] = "annealed"

    def __post_init__(self) -> None:
        if not 0.0 < self.beta0 <= 1.0 or self.growth <= 1.0:
            raise ValueError(f"need 0 < beta0 <= 1 and growth > 1, got {self.beta0}, "
                             f"{self.growth}")
        if self.betas is not None:
            betas = np.asarray(self.betas, dtype=float)
            if betas.ndim != 1 or ((betas <= 0) | (betas > 1)).any() or (np.diff(betas) < 0).any():
                raise ValueError(f"betas must increase within (0, 1], got {self.betas}")

    def beta(self, iteration: int) -> float:
        """:math:`\\beta_t` of the pass at ``iteration`` (1 before the start)."""
        if iteration < 0:
            return 1.0
        if self.betas is not None:
            return float(self.betas[iteration]) if iteration < len(self.betas) else 1.0
        return float(min(1.0, self.beta0 * self.growth**iteration))

    def schedule(self) -> Schedule:
        return _AnnealingSchedule(self)

    def responsibilities(self, log_joint, estep):
        beta = estep.setting.beta
        if beta == 1.0:
            return super().responsibilities(log_joint, estep)
        tempered, _ = log_normalize(beta * log_joint)
        _, log_norm = log_normalize(log_joint)
        return tempered, log_norm, {}


#: The names of the ``algorithm`` parameter and their strategies.
ALGORITHMS: dict[str, type[EStep]] = {
    cls.name: cls for cls in (Exact, Hard, Stochastic, MonteCarlo, Annealed)
}


def get_strategy(algorithm: str | EStep) -> EStep:
    """The strategy named ``algorithm`` (with its default options), or ``algorithm`` itself."""
    if isinstance(algorithm, EStep):
        return algorithm
    try:
        return ALGORITHMS[algorithm]()
    except KeyError:
        raise ValueError(
            f"unknown algorithm {algorithm!r}; expected one of {sorted(ALGORITHMS)} or an "
            "EStep instance"
        ) from None
