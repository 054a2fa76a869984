r"""A component family written from scratch: von Mises distributions for angles.

Wind directions, times of day, dihedral angles: data on the circle. For component :math:`k`
and coordinate :math:`d` the von Mises density is

.. math::

    p(x \mid \mu, \kappa) = \frac{e^{\kappa \cos(x - \mu)}}{2\pi I_0(\kappa)},

with mean direction :math:`\mu`, concentration :math:`\kappa \ge 0` and :math:`I_0` the
modified Bessel function; the D coordinates of a row are independent given the component.
Since :math:`\kappa\cos(x - \mu) = \kappa\cos\mu \cos x + \kappa\sin\mu \sin x`, the
log-density is linear in the features :math:`[\cos x, \sin x]`, and the sufficient
statistics are :math:`N_k`, :math:`C_{kd} = \sum_n q_{nk}\cos x_{nd}` and
:math:`S_{kd} = \sum_n q_{nk}\sin x_{nd}`. The M-step has a closed form for the direction,
:math:`\mu = \operatorname{atan2}(S, C)`, but not for the concentration, which solves
:math:`A(\kappa) = I_1(\kappa)/I_0(\kappa) = \bar R = \sqrt{C^2 + S^2}/N` (Newton's method).

Implementing the protocol of :mod:`emkit.distributions._base` — ``prepare``, ``features``,
``log_prob``, ``statistics``, ``maximize`` and a few small methods — is all it takes; the
engine then gives the family every E-step strategy, generalized and conditional M-steps,
online and incremental EM, chunks, threads and PyTorch tensors. The optional methods of
:class:`emkit.distributions.ComponentFamily` (Q, coordinates, a partial M-step, ECM blocks)
open the rest,
and :func:`emkit.diagnostics.check_family` checks them all.

Run ``python examples/custom_family.py``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import special

from emkit._backend import Array, as_backend, namespace
from emkit.diagnostics import Trace, check_family
from emkit.distributions._base import Statistics
from emkit.em import Mixture, MixtureParams, run_em
from emkit.em.maximization import ConditionalMaximization, Generalized
from emkit.em.online import OnlineEM, run_incremental
from emkit.em.strategies import get_strategy
from emkit.executors import InMemory

#: Concentrations are kept in [MIN_CONCENTRATION, MAX_CONCENTRATION]: Q is concave in
#: :math:`\kappa`, so the constrained maximiser is the clipped root and EM stays monotone.
MIN_CONCENTRATION = 1e-8
MAX_CONCENTRATION = 1e5


@dataclasses.dataclass(frozen=True)
class VonMisesParams:
    """Mean directions and concentrations, each (K, D)."""

    mean_direction: np.ndarray
    concentration: np.ndarray


@dataclasses.dataclass(frozen=True)
class VonMisesStatistics(Statistics):
    r""":math:`N_k`, :math:`C_{kd} = \sum_n q_{nk} \cos x_{nd}`, :math:`S_{kd} = \sum_n q_{nk}
    \sin x_{nd}`: plain sums, so ``+`` and scaling come from :class:`Statistics`."""

    resp_sum: Array
    sum_cos: Array
    sum_sin: Array


@dataclasses.dataclass(frozen=True)
class VonMisesCoefficients:
    """``log_prob = features @ coef.T + constant``."""

    coef: Array
    constant: Array


def mean_resultant_inverse(r_bar: np.ndarray, start: np.ndarray | None = None,
                           n_steps: int = 25) -> np.ndarray:
    r""":math:`\kappa` with :math:`A(\kappa) = \bar R`, by Newton's method from Banerjee et
    al. (2005)'s approximation :math:`\bar R(2 - \bar R^2)/(1 - \bar R^2)` (or ``start``),
    with :math:`A'(\kappa) = 1 - A^2 - A/\kappa`; clipped to the allowed range."""
    r_bar = np.clip(r_bar, 0.0, 1.0 - 1e-12)
    kappa = r_bar * (2.0 - r_bar**2) / (1.0 - r_bar**2) if start is None else start
    kappa = np.clip(kappa, MIN_CONCENTRATION, MAX_CONCENTRATION)
    for _ in range(n_steps):
        a = special.i1e(kappa) / special.i0e(kappa)
        slope = np.maximum(1.0 - a * a - a / kappa, 1e-300)
        kappa = np.clip(kappa - (a - r_bar) / slope, MIN_CONCENTRATION, MAX_CONCENTRATION)
    return kappa


def log_bessel_i0(kappa: np.ndarray) -> np.ndarray:
    r""":math:`\log I_0(\kappa)`, without overflow: :math:`\log(I_0(\kappa) e^{-\kappa}) +
    \kappa`."""
    return np.log(special.i0e(kappa)) + kappa


@dataclasses.dataclass(frozen=True)
class VonMises:
    """K components, each a product of D independent von Mises distributions.

    Parameters
    ----------
    newton_steps : int
        Newton steps on the concentrations in :meth:`improve`, the partial M-step.
    """

    newton_steps: int = 1

    # ------------------------------------------------------------------ the protocol
    def prepare(self, params: VonMisesParams, like: Array, bias: np.ndarray | None = None):
        """Coefficients :math:`[\\kappa\\cos\\mu, \\kappa\\sin\\mu]` and the normalisers."""
        mu, kappa = params.mean_direction, params.concentration
        coef = np.concatenate([kappa * np.cos(mu), kappa * np.sin(mu)], axis=1)
        constant = -(np.log(2 * np.pi) + log_bessel_i0(kappa)).sum(axis=1)
        if bias is not None:
            constant = constant + bias
        return VonMisesCoefficients(as_backend(coef, like), as_backend(constant, like))

    def features(self, X: Array, prepared) -> Array:
        """:math:`[\\cos x, \\sin x]`, (n, 2D)."""
        xp = namespace(X)
        return xp.concat([xp.cos(X), xp.sin(X)], axis=1)

    def log_prob(self, features: Array, prepared: VonMisesCoefficients) -> Array:
        """:math:`\\sum_d \\kappa_{kd}\\cos(x_{nd} - \\mu_{kd}) - \\log 2\\pi I_0(\\kappa_{kd})`."""
        return features @ prepared.coef.T + prepared.constant

    def statistics(self, features: Array, resp: Array) -> VonMisesStatistics:
        """:math:`N_k, C_{kd}, S_{kd}` of a chunk (``resp`` carries the sample weights)."""
        xp = namespace(resp)
        sums = resp.T @ features
        half = features.shape[1] // 2
        return VonMisesStatistics(xp.sum(resp, axis=0), sums[:, :half], sums[:, half:])

    def maximize(self, stats: VonMisesStatistics) -> VonMisesParams:
        """:math:`\\mu = \\operatorname{atan2}(S, C)`, :math:`\\kappa = A^{-1}(\\bar R)`."""
        n = stats.resp_sum[:, None] + 10 * np.finfo(np.float64).eps
        r_bar = np.hypot(stats.sum_cos, stats.sum_sin) / n
        return VonMisesParams(np.arctan2(stats.sum_sin, stats.sum_cos),
                              mean_resultant_inverse(r_bar))

    def regularization_gap(self, params, stats) -> float:
        """0: clipping a concave Q's maximiser is the constrained maximum."""
        return 0.0

    def reseed(self, params: VonMisesParams, stats, component: int, point: np.ndarray):
        """A component centred on ``point`` with unit concentration."""
        mu, kappa = params.mean_direction.copy(), params.concentration.copy()
        mu[component], kappa[component] = point, 1.0
        return VonMisesParams(mu, kappa)

    def n_parameters(self, params: VonMisesParams) -> int:
        """A direction and a concentration per component and coordinate."""
        return 2 * params.mean_direction.size

    def sample(self, params: VonMisesParams, counts: np.ndarray, rng) -> np.ndarray:
        """``counts[k]`` rows from component k, in component order."""
        return np.vstack([
            rng.vonmises(mu, kappa, size=(int(count), len(mu)))
            for mu, kappa, count in zip(
                params.mean_direction, params.concentration, counts, strict=True
            )
        ])

    # ------------------------------------------------------------------ optional methods
    def expected_log_likelihood(self, params: VonMisesParams, stats) -> float:
        r""":math:`Q = \sum_{kd} \kappa(C\cos\mu + S\sin\mu) - N(\log 2\pi + \log I_0(\kappa))`."""
        mu, kappa = params.mean_direction, params.concentration
        projected = stats.sum_cos * np.cos(mu) + stats.sum_sin * np.sin(mu)
        normaliser = stats.resp_sum[:, None] * (np.log(2 * np.pi) + log_bessel_i0(kappa))
        return float((kappa * projected - normaliser).sum())

    def pack(self, params: VonMisesParams) -> np.ndarray:
        """Directions, then log-concentrations."""
        return np.concatenate([params.mean_direction.ravel(),
                               np.log(params.concentration).ravel()])

    def unpack(self, vector: np.ndarray, like: VonMisesParams) -> VonMisesParams:
        """The inverse of :meth:`pack`."""
        size = like.mean_direction.size
        shape = like.mean_direction.shape
        return VonMisesParams(vector[:size].reshape(shape),
                              np.exp(vector[size:]).reshape(shape))

    def improve(self, params: VonMisesParams, stats) -> VonMisesParams:
        """A partial M-step: the directions in closed form, then ``newton_steps`` Newton
        steps on the concentrations from their current values."""
        directions = self.conditional_maximize(params, stats, "mean_direction")
        r_bar = self._projected_resultant(directions, stats)
        kappa = mean_resultant_inverse(r_bar, start=params.concentration,
                                       n_steps=self.newton_steps)
        return VonMisesParams(directions.mean_direction, kappa)

    conditional_blocks = ("mean_direction", "concentration")

    def conditional_maximize(self, params: VonMisesParams, stats, block: str):
        r"""``'mean_direction'``: :math:`\mu = \operatorname{atan2}(S, C)` whatever
        :math:`\kappa`; ``'concentration'``: :math:`A(\kappa) = (C\cos\mu + S\sin\mu)/N`
        about the current directions."""
        if block == "mean_direction":
            return VonMisesParams(np.arctan2(stats.sum_sin, stats.sum_cos), params.concentration)
        r_bar = self._projected_resultant(params, stats)
        return VonMisesParams(params.mean_direction, mean_resultant_inverse(r_bar))

    @staticmethod
    def _projected_resultant(params: VonMisesParams, stats) -> np.ndarray:
        mu = params.mean_direction
        n = stats.resp_sum[:, None] + 10 * np.finfo(np.float64).eps
        return (stats.sum_cos * np.cos(mu) + stats.sum_sin * np.sin(mu)) / n


# ---------------------------------------------------------------------- the demonstration
def planted_data(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, VonMisesParams]:
    """Angles from three components in two coordinates, in random order, and the true
    parameters."""
    rng = np.random.default_rng(seed)
    truth = VonMisesParams(
        np.array([[-2.5, 0.5], [0.0, 2.5], [2.0, -1.5]]),
        np.array([[8.0, 4.0], [3.0, 12.0], [6.0, 6.0]]),
    )
    counts = rng.multinomial(n, [0.5, 0.3, 0.2])
    return rng.permutation(VonMises().sample(truth, counts, rng)), truth


def starting_params(X: np.ndarray, n_components: int, seed: int = 0) -> MixtureParams:
    """Equal weights, directions at random rows, unit concentrations."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(X), size=n_components, replace=False)
    components = VonMisesParams(X[chosen], np.ones((n_components, X.shape[1])))
    return MixtureParams(np.full(n_components, 1.0 / n_components), components)


def main() -> None:
    X, _ = planted_data()
    print(check_family(VonMises(), X))
    check_family(VonMises(), X).raise_for_failures()

    model = Mixture(VonMises(), 3)
    data = InMemory(X)
    start = starting_params(X, 3)
    options = dict(max_iter=500, tol=1e-8, monotonic="raise")
    exact = run_em(model, data, start, **options)
    print(f"\nexact EM: {exact.lower_bounds[-1]:.6f} per sample after {exact.n_iter} iterations")
    order = np.argsort(exact.params.weights)[::-1]
    print("weights", exact.params.weights[order].round(3), "(truth 0.5, 0.3, 0.2)")
    print("concentrations\n", exact.params.components.concentration[order].round(2))

    for name in ("hard", "stochastic", "monte-carlo", "annealed"):
        strategy = get_strategy(name)
        result = run_em(model, data, start, max_iter=300, tol=1e-6, strategy=strategy,
                        seed=7)
        log_likelihood = data.expectation(model, result.params).log_likelihood
        print(f"{name:>12}: {log_likelihood:.6f} after {result.n_iter} iterations")

    for label, maximization in (("GEM (improve)", Generalized()),
                                ("ECM", ConditionalMaximization())):
        variant = Mixture(VonMises(), 3, maximization=maximization)
        result = run_em(variant, data, start, **options)
        print(f"{label:>13}: {result.lower_bounds[-1]:.6f} after {result.n_iter} iterations, "
              "Q and the log-likelihood checked at every step")

    threaded = run_em(model, InMemory(X, chunk_size=97, n_jobs=2), start, **options)
    print(f"\nchunks of 97 rows on 2 threads: {threaded.lower_bounds[-1]:.12f}")
    print(f"one chunk, one thread:          {exact.lower_bounds[-1]:.12f}")
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        on_torch = run_em(model, InMemory(torch.from_numpy(X)), start, **options)
        print(f"PyTorch tensor:                 {on_torch.lower_bounds[-1]:.12f}")

    stream = InMemory(planted_data(100_000, seed=1)[0], chunk_size=1000)
    batch = run_em(model, stream, start, **options)
    params = OnlineEM(model, decay=0.6, offset=1.0).run(stream, start)
    print(f"\n100,000 rows: batch EM {batch.lower_bounds[-1]:.6f} after {batch.n_iter} passes, "
          f"online EM {stream.expectation(model, params).log_likelihood:.6f} after one pass")
    chunks = InMemory(X, chunk_size=300)
    incremental = run_incremental(model, chunks, start, n_passes=30, tol=1e-8,
                                  monotonic="raise")
    print(f"incremental EM, {incremental.n_iter} passes: free energy "
          f"{incremental.lower_bounds[-1]:.6f} (a lower bound of the log-likelihood)")

    trace = Trace()
    run_em(model, data, start, max_iter=5, tol=0.0, callbacks=[trace], track_elbo=True)
    print("\niteration  log-likelihood  ELBO before E-step  KL before  KL after")
    for info in trace.iterations[1:]:
        print(f"{info.iteration:>9}  {info.log_likelihood:14.6f}  {info.elbo:18.6f}  "
              f"{info.kl:9.2e}  {info.kl_after:8.1e}")


if __name__ == "__main__":
    main()
