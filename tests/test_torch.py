"""PyTorch tensors in, tensors out, on the same device (CPU here; CUDA where present)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from conftest import make_blobs, starting_values
from emkit import GaussianMixture

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_results_come_back_on_the_device_of_the_data(device, dtype):
    X, _ = make_blobs(n=400, d=3, k=3)
    tensor = torch.as_tensor(X, dtype=dtype, device=device)
    model = GaussianMixture(3, random_state=0).fit(tensor)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        value = getattr(model, name)
        assert isinstance(value, torch.Tensor)
        assert value.device.type == device
        assert value.dtype == torch.float64
    proba = model.predict_proba(tensor)
    assert proba.device.type == device and proba.dtype == dtype
    labels = model.predict(tensor)
    assert labels.device.type == device
    assert torch.equal(labels, torch.argmax(proba, dim=1))
    assert isinstance(model.score(tensor), float)
    reference = GaussianMixture(3, random_state=0).fit(X)
    assert_allclose(model.lower_bound_, reference.lower_bound_, rtol=1e-5 if dtype ==
                    torch.float32 else 1e-10)


def test_tensor_sample_weight_and_fixed_start_match_numpy():
    X, _ = make_blobs(n=300, d=2, k=2, seed=1)
    weights = np.random.default_rng(0).integers(1, 4, size=300).astype(float)
    start = starting_values(X, 2, "diag")
    options = dict(covariance_type="diag", max_iter=20, tol=0.0, **start)
    on_numpy = GaussianMixture(2, **options).fit(X, sample_weight=weights)
    on_torch = GaussianMixture(2, **options).fit(
        torch.from_numpy(X), sample_weight=torch.from_numpy(weights)
    )
    assert_allclose(on_torch.lower_bounds_, on_numpy.lower_bounds_, rtol=1e-12)
    assert_allclose(on_torch.covariances_.numpy(), on_numpy.covariances_, rtol=1e-10)


def test_tensor_input_is_validated():
    X = torch.zeros((10, 2), dtype=torch.float64)
    X[3, 1] = float("inf")
    with pytest.raises(ValueError, match="inf at row 3, column 1"):
        GaussianMixture(1).fit(X)
    with pytest.raises(ValueError, match="Expected 2D X"):
        GaussianMixture(1).fit(torch.zeros(5))
    with pytest.raises(ValueError, match="Complex data not supported"):
        GaussianMixture(1).fit(torch.zeros((5, 2), dtype=torch.complex64))
    model = GaussianMixture(1).fit(torch.arange(20).reshape(10, 2))
    assert model.means_.dtype == torch.float64
    with pytest.raises(ValueError, match="X has 3 features"):
        model.predict(torch.zeros((2, 3)))
