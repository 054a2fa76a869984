r"""Diagnostics: the notes' decomposition made visible, and a checker for new families.

**The decomposition.** For any distribution :math:`q` over the classes,

.. math::

    \ell(\theta) = \log p(X \mid \theta)
      = \underbrace{Q(\theta \mid q) + H(q)}_{\mathcal L(q, \theta)\ \text{(ELBO)}}
      + \mathrm{KL}\big(q \,\|\, p(Z \mid X, \theta)\big),

with :math:`Q(\theta \mid q) = \sum_{nk} q_{nk} \log p(x_n, z_n = k \mid \theta)` (from the
statistics) and the entropy :math:`H(q) = -\sum_{nk} q_{nk} \log q_{nk}` (accumulated chunk by
chunk in the E-step). At iteration :math:`t` the M-step has moved :math:`\theta` with
:math:`q_{t-1}` fixed, so :math:`\mathcal L(q_{t-1}, \theta_t) \le \ell(\theta_t)`; the exact
E-step then sets :math:`q_t = p(Z \mid X, \theta_t)`, the KL to 0 and the ELBO to
:math:`\ell(\theta_t)`. Hard, stochastic and annealed E-steps leave a gap, which
:class:`Trace` shows. Pass a :class:`Trace` as a ``callbacks`` entry of any mixture
estimator; :func:`plot_trace` draws the three curves.

**The checker.** :func:`check_family` tells the author of a component family whether its
statistics add up and scale, whether its ``maximize`` maximises Q, and whether its optional
methods (see :class:`emkit.distributions.ComponentFamily`) are consistent, on random data.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from emkit._backend import to_numpy
from emkit.em.loop import EMIteration
from emkit.em.maximization import climb

__all__ = ["Check", "FamilyReport", "Trace", "check_family", "plot_trace"]


class Trace:
    """A callback that records the ELBO decomposition at every iteration.

    Its ``tracks_elbo = True`` asks the estimator to accumulate the entropy of :math:`q`
    (a little more work per E-step). Needs the family's ``expected_log_likelihood``.

    Attributes
    ----------
    iterations : list of EMIteration
        Everything the loop reported, in order.

    Examples
    --------
    >>> from emkit import GaussianMixture
    >>> from emkit.datasets import load_faithful
    >>> from emkit.diagnostics import Trace
    >>> trace = Trace()
    >>> model = GaussianMixture(2, random_state=0, callbacks=trace).fit(load_faithful().data)
    >>> bool(abs(trace.kl_after).max() < 1e-9)
    True
    """

    tracks_elbo = True

    def __init__(self) -> None:
        self.iterations: list[EMIteration] = []

    def __call__(self, info: EMIteration) -> None:
        self.iterations.append(info)

    def _column(self, name: str) -> np.ndarray:
        return np.array([getattr(info, name) for info in self.iterations], dtype=float)

    @property
    def log_likelihood(self) -> np.ndarray:
        r""":math:`\ell(\theta_t)` per sample."""
        return self._column("log_likelihood")

    @property
    def elbo(self) -> np.ndarray:
        r""":math:`\mathcal L(q_{t-1}, \theta_t)` per sample, after the M-step (NaN at 0)."""
        return self._column("elbo")

    @property
    def kl(self) -> np.ndarray:
        r""":math:`\mathrm{KL}(q_{t-1} \,\|\, p(Z \mid X, \theta_t))` per sample (NaN at 0)."""
        return self._column("kl")

    @property
    def elbo_after(self) -> np.ndarray:
        r""":math:`\mathcal L(q_t, \theta_t)` per sample, after the E-step."""
        return self._column("elbo_after")

    @property
    def kl_after(self) -> np.ndarray:
        r""":math:`\mathrm{KL}(q_t \,\|\, p(Z \mid X, \theta_t))` per sample (0 for exact EM)."""
        return self._column("kl_after")

    def plot(self, ax=None):
        """:func:`plot_trace` of this trace."""
        return plot_trace(self, ax)


def plot_trace(trace: Trace, ax=None):
    r"""The log-likelihood, the ELBO and the KL divergence along the iterations.

    The ELBO is drawn at every half step: after the E-step of iteration :math:`t` (at
    :math:`t`, :math:`\mathcal L(q_t, \theta_t)`) and after the M-step of iteration
    :math:`t+1` (at :math:`t + \tfrac12`, :math:`\mathcal L(q_t, \theta_{t+1})`), so the
    M-step's rise and the E-step's closing of the gap show as a staircase under the
    log-likelihood. The KL divergence, the gap, is on the right axis.

    Parameters
    ----------
    trace : Trace
        A trace filled by a fit.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure when ``None``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from emkit.plot import _new_axes

    ax = _new_axes(ax)
    iterations = np.array([info.iteration for info in trace.iterations], dtype=float)
    steps = np.column_stack([iterations - 0.5, iterations]).ravel()
    elbo = np.column_stack([trace.elbo, trace.elbo_after]).ravel()
    kl = np.column_stack([trace.kl, trace.kl_after]).ravel()
    ax.plot(iterations, trace.log_likelihood, "o-", color="C0", label="log-likelihood")
    ax.plot(steps, elbo, ".--", color="C1", label="ELBO")
    ax.set_xlabel("iteration (half steps: after the M-step)")
    ax.set_ylabel("per sample")
    right = ax.twinx()
    right.plot(steps, kl, ":", color="C3", label="KL(q ‖ p(z | x, θ))")
    right.set_ylabel("KL divergence per sample")
    lines = ax.get_lines() + right.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="lower right")
    return ax


# ---------------------------------------------------------------------- the checker
@dataclasses.dataclass(frozen=True)
class Check:
    """One check of :func:`check_family`: ``passed`` is ``None`` when it could not run."""

    name: str
    passed: bool | None
    detail: str


@dataclasses.dataclass(frozen=True)
class FamilyReport:
    """What :func:`check_family` found."""

    family: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """Whether no check failed (skipped ones do not count)."""
        return all(check.passed is not False for check in self.checks)

    def __str__(self) -> str:
        marks = {True: "PASS", False: "FAIL", None: "SKIP"}
        lines = [f"{self.family}:"]
        lines += [f"  {marks[c.passed]}  {c.name}: {c.detail}" for c in self.checks]
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        """Raise an AssertionError that lists the failed checks, if any."""
        if not self.ok:
            raise AssertionError(str(self))


def _leaves(value: Any) -> list[np.ndarray]:
    """Every array of a (nested) statistics or parameters object, references included."""
    if isinstance(value, np.ndarray | float | int):
        return [np.asarray(value, dtype=float)]
    if dataclasses.is_dataclass(value):
        return [leaf for f in dataclasses.fields(value) for leaf in _leaves(getattr(value, f.name))]
    if isinstance(value, tuple | list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [to_numpy(value, np.float64)]


def _summed(stats) -> list[np.ndarray]:
    """The added (non-reference) arrays of a statistics object."""
    found: list[np.ndarray] = []

    def keep(array):
        found.append(np.asarray(array, dtype=float))
        return array

    stats._map(keep, references=False)
    return found


def _close(a: list[np.ndarray], b: list[np.ndarray], rtol: float) -> tuple[bool, float]:
    """Whether two lists of arrays agree; the largest relative difference."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        scale = max(1.0, float(np.abs(y).max(initial=0.0)))
        worst = max(worst, float(np.abs(x - y).max(initial=0.0)) / scale)
    return worst <= rtol, worst


def check_family(
    family,
    X,
    *,
    n_components: int = 3,
    random_state: int = 0,
    n_trials: int = 5,
    rtol: float = 1e-9,
) -> FamilyReport:
    r"""Check a component family on data ``X`` with random responsibilities.

    Checks, each reported as passed, failed or skipped (an optional method missing):

    * **statistics add up**: :math:`S(A) + S(B) = S(A \cup B)` for a split of the rows
      (after moving reference points), and ``c * S`` scales the sums;
    * **weights are repetitions**: integer sample weights give the statistics of repeated
      rows;
    * **Q matches log_prob**: ``expected_log_likelihood(params, S)`` equals
      :math:`\sum_{nk} r_{nk} \log p(x_n \mid k)` computed with ``log_prob``;
    * **maximize maximises Q**: :math:`Q(M(S)) \ge Q(\theta')` for parameters
      :math:`\theta'` fitted to other random responsibilities and, with ``pack``/
      ``unpack``, random perturbations of :math:`M(S)` and the end of an L-BFGS climb on Q
      from it (allowing the family's ``regularization_gap``);
    * **pack/unpack round trip**, **improve increases Q**, **each conditional
      maximisation increases Q**, when the family offers them.

    Parameters
    ----------
    family : ComponentFamily
        The family under test.
    X : array of shape (n_samples, n_features)
        Data in the family's support (as the engine would see them), at least 6 rows.
    n_components : int
        K of the random responsibilities.
    random_state : int
        Seed of the responsibilities, splits, weights and perturbations.
    n_trials : int
        Alternative parameter sets tried against ``maximize``.
    rtol : float
        Relative tolerance of the equalities.

    Returns
    -------
    FamilyReport
        ``report.ok``, ``print(report)``, ``report.raise_for_failures()``.
    """
    rng = np.random.default_rng(random_state)
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n < 6:
        raise ValueError(f"check_family needs at least 6 rows, got {n}")

    def stats_of(rows, resp):
        return family.statistics(family.features(rows, None), resp).to_numpy()

    def random_resp(size):
        return rng.dirichlet(np.ones(n_components), size=size)

    resp = random_resp(n)
    whole = stats_of(X, resp)
    checks: list[Check] = []

    cut = int(rng.integers(1, n - 1))
    split = stats_of(X[:cut], resp[:cut]) + stats_of(X[cut:], resp[cut:])
    passed, worst = _close(_summed(split), _summed(split.aligned(whole)), rtol)
    scaled = 2.5 * whole
    scale_ok, scale_worst = _close(_summed(scaled), [2.5 * a for a in _summed(whole)], rtol)
    checks.append(Check(
        "statistics add up", passed and scale_ok,
        f"S(A) + S(B) vs S(A ∪ B): {worst:.2g}; 2.5 * S: {scale_worst:.2g} (relative)",
    ))

    repeats = rng.integers(0, 3, size=n)
    weighted = stats_of(X, resp * repeats[:, None])
    repeated = stats_of(np.repeat(X, repeats, axis=0), np.repeat(resp, repeats, axis=0))
    passed, worst = _close(_summed(weighted), _summed(weighted.aligned(repeated)), rtol)
    checks.append(Check("weights are repetitions", passed, f"difference {worst:.2g}"))

    params = family.maximize(whole)
    expected = getattr(family, "expected_log_likelihood", None)
    if expected is None:
        checks.append(Check(
            "expected_log_likelihood", None,
            "not provided: generalized and conditional M-steps, incremental EM and the ELBO "
            "diagnostics need it",
        ))
        return FamilyReport(type(family).__name__, tuple(checks))

    def q(candidate) -> float:
        return float(expected(candidate, whole))

    prepared = family.prepare(params, X)
    log_prob = to_numpy(family.log_prob(family.features(X, prepared), prepared), np.float64)
    direct = math.fsum((resp * log_prob).ravel())
    difference = abs(q(params) - direct) / max(1.0, abs(direct))
    checks.append(Check(
        "Q matches log_prob", difference <= 1e-8,
        f"Q = {q(params):.12g}, sum r log p = {direct:.12g}",
    ))

    allowed = family.regularization_gap(params, whole) * n + 1e-9 * max(1.0, abs(q(params)))
    others = [family.maximize(stats_of(X, random_resp(n))) for _ in range(n_trials)]
    pack, unpack = getattr(family, "pack", None), getattr(family, "unpack", None)
    if pack is not None and unpack is not None:
        centre = pack(params)
        others += [
            unpack(centre + 0.1 * rng.standard_normal(centre.shape), params)
            for _ in range(n_trials)
        ]
        others.append(climb(family, params, whole, max_steps=50))
        round_trip = unpack(pack(params), params)
        passed, worst = _close(_leaves(round_trip), _leaves(params), 1e-8)
        checks.append(Check("pack/unpack round trip", passed, f"difference {worst:.2g}"))
    else:
        checks.append(Check("pack/unpack round trip", None, "pack/unpack not provided"))
    shortfall = max(q(other) - q(params) for other in others)
    checks.append(Check(
        "maximize maximises Q", shortfall <= allowed,
        f"best alternative exceeds Q(M(S)) by {shortfall:.3g} (allowed {allowed:.3g}) over "
        f"{len(others)} alternatives",
    ))

    checks.append(_increases(
        "improve increases Q", getattr(family, "improve", None), others, whole, q,
        lambda improve, start: improve(start, whole),
    ))
    blocks = getattr(family, "conditional_blocks", None)
    maximize_block = getattr(family, "conditional_maximize", None)
    if blocks is None or maximize_block is None:
        checks.append(Check("conditional maximisation increases Q", None, "not provided"))
    else:
        def cycle(_, start):
            for block in blocks:
                start = maximize_block(start, whole, block)
            return start

        checks.append(_increases(
            "conditional maximisation increases Q", cycle, others, whole, q, cycle,
        ))
    return FamilyReport(type(family).__name__, tuple(checks))


def _increases(
    name: str, method, starts, stats, q: Callable[[Any], float], apply
) -> Check:
    """Whether ``apply(method, start)`` never lowers Q from any of ``starts``."""
    if method is None:
        return Check(name, None, "not provided")
    worst = max(q(start) - q(apply(method, start)) for start in starts)
    tolerance = 1e-9 * max(1.0, max(abs(q(start)) for start in starts))
    return Check(name, worst <= tolerance, f"largest decrease {worst:.3g} over {len(starts)} "
                 "starts")
