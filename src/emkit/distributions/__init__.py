"""Component families: the distributions a latent class can choose between."""

from emkit.distributions._base import ComponentFamily, Statistics
from emkit.distributions.bernoulli import Bernoulli, BernoulliParams
from emkit.distributions.categorical import Categorical, CategoricalParams
from emkit.distributions.exponential import Exponential, ExponentialParams
from emkit.distributions.gamma import Gamma, GammaParams
from emkit.distributions.gaussian import Gaussian, GaussianParams, GaussianStatistics
from emkit.distributions.lognormal import LogNormal
from emkit.distributions.multinomial import Multinomial, MultinomialParams
from emkit.distributions.poisson import Poisson, PoissonParams
from emkit.distributions.product import Product, ProductParams
from emkit.distributions.student_t import StudentT, StudentTParams

__all__ = [
    "Bernoulli",
    "BernoulliParams",
    "Categorical",
    "CategoricalParams",
    "ComponentFamily",
    "Exponential",
    "ExponentialParams",
    "Gamma",
    "GammaParams",
    "Gaussian",
    "GaussianParams",
    "GaussianStatistics",
    "LogNormal",
    "Multinomial",
    "MultinomialParams",
    "Poisson",
    "PoissonParams",
    "Product",
    "ProductParams",
    "Statistics",
    "StudentT",
    "StudentTParams",
]
