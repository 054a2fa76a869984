"""Shared fixtures: small well-separated blobs and scikit-learn's starting parameters."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SKLearnGaussianMixture

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def make_blobs(n=600, d=3, k=3, seed=0, spread=4.0):
    """Rows drawn around k random centres, with their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(k, d))
    labels = rng.integers(0, k, n)
    scales = rng.uniform(0.5, 1.5, size=(k, d))
    return centres[labels] + rng.normal(size=(n, d)) * scales[labels], labels


def starting_values(X, k, covariance_type, seed=0):
    """Weights, means and precisions after one scikit-learn iteration from random rows."""
    model = SKLearnGaussianMixture(
        k, covariance_type=covariance_type, max_iter=1, init_params="random_from_data",
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    return {
        "weights_init": model.weights_,
        "means_init": model.means_,
        "precisions_init": model.precisions_,
    }


@pytest.fixture
def blobs():
    return make_blobs()
