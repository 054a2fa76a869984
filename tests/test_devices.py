"""Every estimator that takes tensors gives the NumPy result on every device it finds.

On a machine with a CUDA device each case also runs there; elsewhere the CPU cases alone.
Same start, same number of iterations: the log-likelihood path and the fitted attributes
agree with NumPy's to the rounding of the data type, and come back on the data's device.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning

from conftest import COVARIANCE_TYPES, make_blobs, starting_values
from emkit import (
    BernoulliMixture,
    GaussianMixture,
    KMeans,
    MixtureModel,
    OnlineKMeans,
    VariationalGaussianMixture,
)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = {"float64": (torch.float64, 1e-9), "float32": (torch.float32, 2e-4)}


def _on(device, dtype, X):
    return torch.as_tensor(X, dtype=DTYPES[dtype][0], device=device)


def _assert_on_device(value, device):
    assert isinstance(value, torch.Tensor), type(value)
    assert value.device.type == device


def _gaussian(covariance_type):
    X, _ = make_blobs(n=2_000, d=4, k=3, seed=3)
    start = starting_values(X, 3, covariance_type)
    return X, lambda: GaussianMixture(3, covariance_type=covariance_type, max_iter=15,
                                      tol=0.0, chunk_size=512, **start)


def _variational(covariance_type):
    X, _ = make_blobs(n=2_000, d=3, k=3, seed=4)
    return X, lambda: VariationalGaussianMixture(
        n_components=5, covariance_type=covariance_type, max_iter=15, tol=0.0,
        random_state=0, chunk_size=512,
    )


def _bernoulli():
    rng = np.random.default_rng(5)
    prototypes = rng.uniform(0.05, 0.95, size=(3, 20))
    X = (rng.random((3_000, 20)) < prototypes[rng.integers(0, 3, 3_000)]).astype(float)
    return X, lambda: BernoulliMixture(3, max_iter=15, tol=0.0, random_state=0,
                                       chunk_size=700)


def _poisson_and_gaussian():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 2, 2_000)
    counts = rng.poisson(np.array([2.0, 9.0])[labels][:, None], size=(2_000, 2))
    values = rng.normal(np.array([-2.0, 3.0])[labels][:, None], 1.0, size=(2_000, 2))
    X = np.hstack([counts, values]).astype(float)
    families = {"poisson": [0, 1], "gaussian": [2, 3]}
    return X, lambda: MixtureModel(families=families, n_components=2, max_iter=15, tol=0.0,
                                   random_state=0, chunk_size=500)


MIXTURES = {
    **{f"gaussian-{kind}": (lambda kind=kind: _gaussian(kind)) for kind in COVARIANCE_TYPES},
    "variational-full": lambda: _variational("full"),
    "variational-diag": lambda: _variational("diag"),
    "bernoulli": _bernoulli,
    "poisson-and-gaussian": _poisson_and_gaussian,
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("case", list(MIXTURES))
def test_mixture_on_device_matches_numpy(case, dtype, device):
    X, make = MIXTURES[case]()
    X = X.astype(dtype)
    rtol = DTYPES[dtype][1]
    on_numpy = make().fit(X)
    tensor = _on(device, dtype, X)
    on_device = make().fit(tensor)
    assert on_device.n_iter_ == on_numpy.n_iter_
    assert_allclose(on_device.lower_bounds_, on_numpy.lower_bounds_, rtol=rtol)
    _assert_on_device(on_device.weights_, device)
    assert_allclose(on_device.weights_.cpu().numpy(), on_numpy.weights_, rtol=rtol * 100,
                    atol=rtol)
    proba = on_device.predict_proba(tensor)
    _assert_on_device(proba, device)
    assert proba.dtype == tensor.dtype
    assert_allclose(proba.cpu().numpy(), on_numpy.predict_proba(X), atol=rtol * 100)
    scores = on_device.score_samples(tensor)
    _assert_on_device(scores, device)
    assert_allclose(scores.cpu().numpy(), on_numpy.score_samples(X), rtol=rtol * 10)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_kmeans_on_device_matches_numpy(dtype, device):
    X, _ = make_blobs(n=5_000, d=6, k=4, seed=7)
    X = X.astype(dtype)
    centres = X[:4].copy()
    on_numpy = KMeans(4, init=centres, n_init=1, max_iter=20, tol=0.0).fit(X)
    tensor = _on(device, dtype, X)
    on_device = KMeans(4, init=_on(device, dtype, centres), n_init=1, max_iter=20,
                       tol=0.0).fit(tensor)
    _assert_on_device(on_device.cluster_centers_, device)
    _assert_on_device(on_device.labels_, device)
    assert np.array_equal(on_device.labels_.cpu().numpy(), on_numpy.labels_)
    assert_allclose(on_device.inertia_, on_numpy.inertia_, rtol=DTYPES[dtype][1])
    distances = on_device.transform(tensor)
    _assert_on_device(distances, device)
    assert_allclose(distances.cpu().numpy(), on_numpy.transform(X),
                    rtol=DTYPES[dtype][1] * 10, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_online_kmeans_partial_fit_on_device_matches_numpy(device):
    X, _ = make_blobs(n=3_000, d=5, k=3, seed=8)
    on_numpy, on_device = OnlineKMeans(3, random_state=0), OnlineKMeans(3, random_state=0)
    for start in range(0, X.shape[0], 500):
        on_numpy.partial_fit(X[start : start + 500])
        on_device.partial_fit(_on(device, "float64", X[start : start + 500]))
    _assert_on_device(on_device.cluster_centers_, device)
    assert_allclose(on_device.cluster_centers_.cpu().numpy(), on_numpy.cluster_centers_,
                    rtol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_gaussian_mixture_partial_fit_on_device_matches_numpy(device):
    X, _ = make_blobs(n=4_000, d=3, k=3, seed=9)
    start = starting_values(X, 3, "full")
    on_numpy = GaussianMixture(3, **start)
    on_device = GaussianMixture(3, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for begin in range(0, X.shape[0], 1_000):
            on_numpy.partial_fit(X[begin : begin + 1_000])
            on_device.partial_fit(_on(device, "float64", X[begin : begin + 1_000]))
    _assert_on_device(on_device.means_, device)
    assert_allclose(on_device.means_.cpu().numpy(), on_numpy.means_, rtol=1e-9)
    assert_allclose(on_device.covariances_.cpu().numpy(), on_numpy.covariances_, rtol=1e-9)
