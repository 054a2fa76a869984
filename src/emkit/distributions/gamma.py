r"""Gamma components: D independent positive columns.

For component :math:`k` with shapes :math:`a_{kd}` and rates :math:`b_{kd}`,

.. math::

    \log p(x \mid z = k) = \sum_d (a_{kd} - 1)\log x_d - b_{kd} x_d + a_{kd}\log b_{kd}
      - \log\Gamma(a_{kd}),

one matrix product of the features :math:`[x, \log x]` with :math:`[-b, a - 1]` plus a
constant per component. The statistics are :math:`N_{kd} = \sum_n \gamma_{nk}` (over the
rows where column :math:`d` is observed), :math:`S_{kd} = \sum_n \gamma_{nk} x_{nd}` and
:math:`L_{kd} = \sum_n \gamma_{nk} \log x_{nd}`.

The M-step maximises :math:`Q = N (a \log b - \log\Gamma(a) + (a - 1)\bar\ell - b \bar x)`
with :math:`\bar x = S / N`, :math:`\bar\ell = L / N`. For a given shape the best rate is
:math:`b = a / \bar x`; the profile :math:`Q(a) / N = h(a) - \bar\ell` with
:math:`h(a) = a\log a - a - \log\Gamma(a) - a s` and :math:`s = \log\bar x - \bar\ell \ge 0`
(Jensen) is strictly concave, maximal where

.. math::

    \log a - \psi(a) = s.

:func:`gamma_shape` solves this by Newton's method from Minka's (2002) closed-form start,
to full precision: the M-step is exact, not a generalised-EM step. When :math:`s = 0` (a
component whose values are all equal) the likelihood is unbounded (:math:`a \to \infty`);
``reg_shape`` (:math:`\epsilon`) replaces :math:`s` by :math:`s + \epsilon`, which caps the
shape near :math:`1 / (2\epsilon)`, and :meth:`Gamma.regularization_gap` reports the exact
loss of Q this costs. Missing cells (NaN) are marginalised.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from emkit._backend import Array, namespace
from emkit.distributions.product import ColumnStatistics, IndependentColumns

__all__ = ["Gamma", "GammaParams", "gamma_shape", "shape_gap"]

#: Shapes above which :math:`\log a - \psi(a)` and its derivative are taken from their
#: asymptotic series, which keep full relative precision where the difference cancels.
_SERIES_FROM = 20.0


def _log_minus_digamma(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`f(a) = \log a - \psi(a)` and :math:`f'(a) = 1/a - \psi'(a)`."""
    large = a >= _SERIES_FROM
    safe = np.where(large, a, _SERIES_FROM)
    inverse = 1.0 / safe
    square = inverse * inverse
    series = inverse * (
        0.5 + inverse * (1 / 12 - square * (1 / 120 - square * (1 / 252 - square / 240)))
    )
    series_slope = -square * (
        0.5 + inverse * (1 / 6 - square * (1 / 30 - square * (1 / 42 - square / 30)))
    )
    small = np.where(large, 1.0, a)
    direct = np.log(small) - digamma(small)
    direct_slope = 1.0 / small - polygamma(1, small)
    return np.where(large, series, direct), np.where(large, series_slope, direct_slope)


def gamma_shape(s: np.ndarray, max_iter: int = 100) -> np.ndarray:
    r"""The shape :math:`a > 0` with :math:`\log a - \psi(a) = s`, element-wise, for
    :math:`s > 0`.

    :math:`f(a) = \log a - \psi(a)` decreases from :math:`+\infty` to 0 and is convex, so
    Newton's method converges monotonically from below once an iterate undershoots the root;
    it starts at Minka's approximation :math:`a_0 = (3 - s + \sqrt{(s - 3)^2 + 24 s}) /
    (12 s) = 2 / (\sqrt{(s - 3)^2 + 24 s} + s - 3)` (within 1.5 %; the second form for
    :math:`s > 3`, where the first cancels) and stops when a step changes :math:`a` by less than
    :math:`10^{-12} a`: convergence is quadratic, so the error is then at rounding level
    (a few iterations).

    Raises
    ------
    FloatingPointError
        If the iteration has not converged after ``max_iter`` steps.
    """
    s = np.asarray(s, dtype=np.float64)
    large = s > 3.0
    d = np.where(large, s - 3.0, 1.0)
    below = np.where(large, 1.0, s)
    a = np.where(
        large,
        2.0 / (d * np.sqrt(1.0 + 24.0 * (s / d) / d) + d),
        (3.0 - below + np.sqrt((below - 3.0) ** 2 + 24.0 * below)) / (12.0 * below),
    )
    for _ in range(max_iter):
        value, slope = _log_minus_digamma(a)
        updated = np.maximum(a - (value - s) / slope, a / 10.0)
        done = np.abs(updated - a) <= 1e-12 * updated
        a = updated
        if done.all():
            return a
    raise FloatingPointError("Newton's method for the gamma shape did not converge.")


def shape_gap(shape: np.ndarray, s: np.ndarray) -> np.ndarray:
    r""":math:`h(a^*) - h(a)` per unit of responsibility, with
    :math:`h(a) = a\log a - a - \log\Gamma(a) - a s` and :math:`a^*` its maximiser: how much
    the profile log-likelihood of a shape ``shape`` falls short of the best one
    (``inf`` where :math:`s \le 0`)."""
    s = np.asarray(s, dtype=np.float64)
    positive = s > 0
    best = gamma_shape(np.where(positive, s, 1.0))

    def h(a):
        return a * np.log(a) - a - gammaln(a) - a * s

    return np.where(positive, np.maximum(h(best) - h(shape), 0.0), np.inf)


@dataclasses.dataclass(frozen=True)
class GammaParams:
    """Shapes :math:`a_{kd}` and rates :math:`b_{kd}`, (K, D) each, float64."""

    shapes: np.ndarray
    rates: np.ndarray


@dataclasses.dataclass(frozen=True)
class Gamma(IndependentColumns):
    """Family of products of D gamma distributions.

    Parameters
    ----------
    reg_shape : float
        Non-negative :math:`\\epsilon` added to :math:`s = \\log\\bar x - \\bar\\ell`, which
        caps every shape near :math:`1 / (2\\epsilon)` (a component whose values are all
        equal otherwise has an infinite shape).
    """

    reg_shape: float = 1e-6
    n_statistics: ClassVar[int] = 2
    fill_value: ClassVar[float] = 1.0
    support_description: ClassVar[str] = "positive numbers"

    def support(self, xp, X: Array) -> Array:
        return X > 0

    def transform(self, X: Array) -> Array:
        """Features :math:`[x, \\log x]`, (n, 2D)."""
        xp = namespace(X)
        return xp.concat([X, xp.log(X)], axis=1)

    def natural(self, params: GammaParams) -> np.ndarray:
        """:math:`[-b, a - 1]`, (K, 2, D)."""
        return np.stack([-params.rates, params.shapes - 1.0], axis=1)

    def log_partition(self, params: GammaParams) -> np.ndarray:
        r""":math:`A = \log\Gamma(a) - a \log b`, (K, D)."""
        return gammaln(params.shapes) - params.shapes * np.log(params.rates)

    def _moments(self, stats: ColumnStatistics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weighted mean, :math:`s = \\log\\bar x - \\bar\\ell` and which cells have data;
        cells without responsibility take the pooled moments of their column."""
        counts, sums, logs = stats.counts, stats.sums[:, 0, :], stats.sums[:, 1, :]
        used = counts > 1e-12 * stats.resp_sum.sum()
        pooled = counts.sum(axis=0)
        mean = np.where(used, sums, sums.sum(axis=0)) / np.where(used, counts, pooled)
        mean_log = np.where(used, logs, logs.sum(axis=0)) / np.where(used, counts, pooled)
        return mean, np.maximum(np.log(mean) - mean_log, 0.0), used

    def mean(self, params: GammaParams) -> np.ndarray:
        """:math:`a / b`, (K, D)."""
        return params.shapes / params.rates

    def maximize(self, stats: ColumnStatistics) -> GammaParams:
        r"""Shape from :math:`\log a - \psi(a) = s + \epsilon`, rate :math:`b = a / \bar x`."""
        mean, s, _ = self._moments(stats)
        shapes = gamma_shape(s + self.reg_shape)
        return GammaParams(shapes, shapes / mean)

    def regularization_gap(self, params: GammaParams, stats: ColumnStatistics) -> float:
        r"""Loss of Q per sample from ``reg_shape``: :math:`\sum_{kd} N_{kd}
        (h(a^*_{kd}) - h(a_{kd})) / \sum_k N_k` (0 when ``reg_shape`` is 0, infinite for a
        component whose values are all equal)."""
        if self.reg_shape == 0.0:
            return 0.0
        _, s, used = self._moments(stats)
        loss = stats.counts[used] * shape_gap(params.shapes[used], s[used])
        return float(loss.sum() / stats.resp_sum.sum())

    def n_parameters(self, params: GammaParams) -> int:
        """2·K·D shapes and rates."""
        return int(2 * params.shapes.size)

    def sample(
        self, params: GammaParams, counts: np.ndarray, rng: np.random.RandomState
    ) -> np.ndarray:
        """``counts[k]`` rows from each component, in component order."""
        repeats = np.asarray(counts, dtype=int)
        shapes = np.repeat(params.shapes, repeats, axis=0)
        rates = np.repeat(params.rates, repeats, axis=0)
        return rng.gamma(shapes) / rates
