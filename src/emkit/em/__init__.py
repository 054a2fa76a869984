"""The EM algorithm: E-step, M-step, the loop and its monitoring."""

from emkit.em.loop import EMIteration, EMResult, MonotonicityError, run_em
from emkit.em.mixture import Mixture, MixtureParams, MixtureStatistics

__all__ = [
    "EMIteration",
    "EMResult",
    "Mixture",
    "MixtureParams",
    "MixtureStatistics",
    "MonotonicityError",
    "run_em",
]
