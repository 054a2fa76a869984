"""The one place that tells NumPy from PyTorch.

Everything above this module manipulates arrays through the array-API namespace returned by
:func:`namespace` (``array_api_compat``), so one implementation serves NumPy and PyTorch on
the CPU or on CUDA. What the array API does not standardise lives here: conversion to and
from NumPy, device placement, and the normalisation at the heart of every E-step.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

Array = Any

__all__ = [
    "Array",
    "as_backend",
    "device_of",
    "is_torch",
    "log_normalize",
    "namespace",
    "to_numpy",
]


def namespace(*arrays: Array):
    """Array-API namespace shared by ``arrays`` (NumPy's when none is an array)."""
    arrays = tuple(a for a in arrays if a is not None and not np.isscalar(a))
    if not arrays:
        return array_api_compat.array_namespace(np.empty(0))
    return array_api_compat.array_namespace(*arrays)


def is_torch(x: Array) -> bool:
    """Whether ``x`` is a PyTorch tensor (without importing torch)."""
    return array_api_compat.is_torch_array(x)


def device_of(x: Array):
    """Device of ``x`` (``"cpu"`` for NumPy arrays)."""
    return array_api_compat.device(x)


def to_numpy(x: Array, dtype=None) -> np.ndarray:
    """Copy ``x`` to a NumPy array in host memory (no copy for a NumPy array of that dtype)."""
    if is_torch(x):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def as_backend(a: np.ndarray | Array, like: Array, dtype=None) -> Array:
    """Array ``a`` in the namespace, on the device and (by default) of the dtype of ``like``."""
    xp = namespace(like)
    dtype = like.dtype if dtype is None else dtype
    if is_torch(like):
        import torch

        if isinstance(a, np.ndarray):
            # NumPy deems an axis of length 1 contiguous whatever its stride, so
            # ascontiguousarray may keep a negative stride, which torch refuses: copy.
            a = a.copy() if any(s < 0 for s in a.strides) else np.ascontiguousarray(a)
            a = torch.from_numpy(a)
        return a.to(device=like.device, dtype=dtype)
    return xp.asarray(to_numpy(a), dtype=dtype)


def log_normalize(log_joint: Array) -> tuple[Array, Array]:
    r"""Normalise log joint probabilities row-wise, in log space.

    For each row :math:`n`,

    .. math::

        \log p(x_n) = \log \sum_k e^{a_{nk}} = m_n + \log \sum_k e^{a_{nk} - m_n},
        \qquad
        \gamma_{nk} = e^{a_{nk} - \log p(x_n)},

    with :math:`m_n = \max_k a_{nk}`: no exponential is taken of anything but a
    non-positive number, so nothing overflows and every row keeps at least one term of 1.

    Parameters
    ----------
    log_joint : array of shape (n, K)
        :math:`a_{nk} = \log \pi_k + \log p(x_n \mid z_n = k)`. A NumPy array is
        overwritten with the responsibilities.

    Returns
    -------
    resp : array of shape (n, K)
        The posterior :math:`\gamma_{nk} = p(z_n = k \mid x_n)`; rows sum to one.
    log_norm : array of shape (n,)
        :math:`\log p(x_n)`.
    """
    xp = namespace(log_joint)
    m = xp.max(log_joint, axis=1, keepdims=True)
    # A row with every entry -inf (impossible under every component) keeps -inf as its
    # log-likelihood; its shift is 0 so that no NaN appears.
    m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
    if isinstance(log_joint, np.ndarray):
        resp = np.subtract(log_joint, m, out=log_joint)
        np.exp(resp, out=resp)
        total = resp.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore"):
            log_norm = np.log(total) + m
        resp /= np.where(total > 0, total, 1.0)
        return resp, log_norm[:, 0]
    resp = xp.exp(log_joint - m)
    total = xp.sum(resp, axis=1, keepdims=True)
    log_norm = xp.log(total) + m
    resp = resp / xp.where(total > 0, total, xp.ones_like(total))
    return resp, log_norm[:, 0]
