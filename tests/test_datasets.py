"""Bundled and re-exported data sets."""

import sys

import numpy as np
import pytest

from emkit.datasets import load_digits, load_faithful, load_iris, load_wine


def test_faithful_array():
    faithful = load_faithful()
    assert faithful.data.shape == (272, 2)
    assert faithful.data.dtype == np.float64
    assert faithful.feature_names == ["eruptions", "waiting"]
    assert faithful.frame is None
    np.testing.assert_array_equal(faithful.data[0], [3.6, 79.0])
    np.testing.assert_array_equal(faithful.data[-1], [4.467, 74.0])
    assert faithful.data[:, 0].min() == 1.6 and faithful.data[:, 0].max() == 5.1
    assert faithful.data[:, 1].min() == 43 and faithful.data[:, 1].max() == 96


def test_faithful_cites_its_source():
    descr = load_faithful().DESCR
    assert "Azzalini, A. and Bowman, A. W. (1990)" in descr
    assert "Härdle" in descr
    assert "272" in descr


def test_faithful_frame():
    pd = pytest.importorskip("pandas")
    faithful = load_faithful(as_frame=True)
    assert isinstance(faithful.frame, pd.DataFrame)
    assert faithful.data is faithful.frame
    assert list(faithful.frame.columns) == ["eruptions", "waiting"]
    np.testing.assert_array_equal(faithful.frame.to_numpy(), load_faithful().data)


def test_faithful_frame_without_pandas(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="needs pandas"):
        load_faithful(as_frame=True)


@pytest.mark.parametrize(
    ("loader", "shape"), [(load_iris, (150, 4)), (load_wine, (178, 13)), (load_digits, (1797, 64))]
)
def test_scikit_learn_loaders(loader, shape):
    bunch = loader()
    assert bunch.data.shape == shape
    X, y = loader(return_X_y=True)
    assert X.shape == shape and y.shape == (shape[0],)
