"""The EM algorithm: E-step strategies, M-steps, the loop, online and incremental updates."""

from emkit.em.loop import EMIteration, EMResult, MonotonicityError, MonotonicityWarning, run_em
from emkit.em.maximization import ClosedForm, ConditionalMaximization, Generalized
from emkit.em.mixture import Mixture, MixtureParams, MixtureStatistics
from emkit.em.online import OnlineEM, run_incremental
from emkit.em.strategies import Annealed, EStep, Exact, Hard, MonteCarlo, Stochastic

__all__ = [
    "Annealed",
    "ClosedForm",
    "ConditionalMaximization",
    "EMIteration",
    "EMResult",
    "EStep",
    "Exact",
    "Generalized",
    "Hard",
    "Mixture",
    "MixtureParams",
    "MixtureStatistics",
    "MonotonicityError",
    "MonotonicityWarning",
    "MonteCarlo",
    "OnlineEM",
    "Stochastic",
    "run_em",
    "run_incremental",
]
