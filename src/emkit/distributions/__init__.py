"""Component families: the distributions a latent class can choose between."""

from emkit.distributions._base import ComponentFamily, Statistics
from emkit.distributions.gaussian import Gaussian, GaussianParams, GaussianStatistics

__all__ = ["ComponentFamily", "Gaussian", "GaussianParams", "GaussianStatistics", "Statistics"]
