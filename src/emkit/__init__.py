"""emkit: latent-variable models fitted by Expectation-Maximization.

The estimators follow scikit-learn's conventions. Public names are imported lazily, so that
``import emkit`` stays light (no PyTorch, Dask or matplotlib until they are used).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "GaussianMixture": "emkit.models.gaussian_mixture",
    "BernoulliMixture": "emkit.models.bernoulli_mixture",
    "CategoricalMixture": "emkit.models.categorical_mixture",
    "MixtureModel": "emkit.models.mixture_model",
    "VariationalGaussianMixture": "emkit.models.variational_gaussian_mixture",
    "VariationalMixtureModel": "emkit.models.variational_mixture_model",
    "BayesianLinearRegression": "emkit.models.bayesian_linear_regression",
    "KMeans": "emkit.models.kmeans",
    "OnlineKMeans": "emkit.models.kmeans",
    "KMedoids": "emkit.models.kmedoids",
    "MixtureOfRegressions": "emkit.models.mixture_of_regressions",
    "load": "emkit.io",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'emkit' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
