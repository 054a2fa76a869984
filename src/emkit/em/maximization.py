r"""M-steps: the closed form, generalized EM and expectation–conditional maximisation.

The M-step maximises :math:`Q(\theta \mid \theta_{old}) = E_q[\log p(X, Z \mid \theta)]`,
which depends on the data only through the statistics. EM's monotonicity needs less: any
:math:`\theta_{new}` with :math:`Q(\theta_{new}) \ge Q(\theta_{old})` keeps the
log-likelihood from decreasing (Dempster, Laird and Rubin 1977, generalized EM), since

.. math::

    \ell(\theta_{new}) - \ell(\theta_{old})
      = \underbrace{Q(\theta_{new}) - Q(\theta_{old})}_{\ge 0}
      + \underbrace{\mathrm{KL}(q \,\|\, p(Z \mid X, \theta_{new}))}_{\ge 0}

for the exact posterior :math:`q` at :math:`\theta_{old}`. So a family without a closed-form
M-step may take a few steps uphill on Q instead (:class:`Generalized`), or maximise Q over
one block of parameters at a time given the others (:class:`ConditionalMaximization`, ECM:
Meng and Rubin 1993). Both report Q after each sub-step, and the loop checks that none
decreased it (:func:`emkit.em.loop.check_m_step`).

The weights' update :math:`\pi_k = N_k / \sum_j N_j` is always in closed form.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import optimize

__all__ = ["ClosedForm", "ConditionalMaximization", "Generalized", "MStepResult", "climb"]


@dataclasses.dataclass(frozen=True)
class MStepResult:
    """New parameters, and Q per sample after each sub-step.

    Attributes
    ----------
    params : object
        The parameters after the M-step.
    trail : tuple of (str, float)
        ``('start', Q(old))`` then ``(step name, Q)`` after each sub-step, per unit of
        total responsibility; empty for a closed-form M-step (nothing to check).
    """

    params: Any
    trail: tuple[tuple[str, float], ...] = ()


def _required(family, name: str):
    method = getattr(family, name, None)
    if method is None:
        raise TypeError(
            f"{type(family).__name__} does not provide {name}(), which this M-step needs; "
            "see the optional methods of emkit.distributions.ComponentFamily"
        )
    return method


@dataclasses.dataclass(frozen=True)
class ClosedForm:
    """The family's own ``maximize``: the exact maximiser of Q."""

    def update(self, model, params, stats) -> MStepResult:
        """``model.maximize(stats)``."""
        return MStepResult(model.maximize(stats))


@dataclasses.dataclass(frozen=True)
class Generalized:
    r"""Generalized EM: a partial M-step that increases Q from the current parameters.

    The weights take their closed form. The components take the family's ``improve`` if it
    has one (a few Newton steps, say); otherwise at most ``max_steps`` iterations of L-BFGS
    on :math:`-Q` in the family's unconstrained coordinates (``pack``/``unpack``), with a
    finite-difference gradient — Q is a function of the statistics, so each evaluation
    costs :math:`O(K)` small operations, not a pass over the data. L-BFGS only accepts
    steps that satisfy the Wolfe conditions; should rounding still leave Q lower, the
    components keep their current values (a null step is a valid GEM step).

    Parameters
    ----------
    max_steps : int
        Iterations of L-BFGS per M-step.
    """

    max_steps: int = 5

    def update(self, model, params, stats) -> MStepResult:
        total = float(np.sum(stats.resp_sum))
        family = model.family

        def q(candidate) -> float:
            return model.expected_log_likelihood(candidate, stats) / total

        trail = [("start", q(params))]
        params = dataclasses.replace(params, weights=model.maximize_weights(stats))
        trail.append(("weights", q(params)))
        improve = getattr(family, "improve", None)
        if improve is not None:
            components = improve(params.components, stats.components)
        else:
            components = climb(family, params.components, stats.components, self.max_steps)
        params = dataclasses.replace(params, components=components)
        trail.append(("components", q(params)))
        return MStepResult(params, tuple(trail))

def climb(family, components, stats, max_steps: int):
    """At most ``max_steps`` L-BFGS iterations on :math:`-Q` from ``components``, in the
    family's coordinates (``pack``/``unpack``); ``components`` unchanged unless Q rose."""
    expected = _required(family, "expected_log_likelihood")
    pack, unpack = _required(family, "pack"), _required(family, "unpack")
    start = pack(components)
    scale = max(1.0, abs(expected(components, stats)))

    def loss(vector: np.ndarray) -> float:
        try:
            value = expected(unpack(vector, components), stats)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return np.inf
        return -value / scale if np.isfinite(value) else np.inf

    with np.errstate(all="ignore"):
        found = optimize.minimize(loss, start, method="L-BFGS-B", options={"maxiter": max_steps})
        better = np.isfinite(found.fun) and found.fun < loss(start)
    return unpack(found.x, components) if better else components


@dataclasses.dataclass(frozen=True)
class ConditionalMaximization:
    """ECM (Meng and Rubin 1993): the weights, then each of the family's
    ``conditional_blocks`` in turn, maximised given the others by
    ``conditional_maximize``."""

    def update(self, model, params, stats) -> MStepResult:
        total = float(np.sum(stats.resp_sum))
        family = model.family
        blocks = _required(family, "conditional_blocks")
        maximize_block = _required(family, "conditional_maximize")

        def q(candidate) -> float:
            return model.expected_log_likelihood(candidate, stats) / total

        trail = [("start", q(params))]
        params = dataclasses.replace(params, weights=model.maximize_weights(stats))
        trail.append(("weights", q(params)))
        for block in blocks:
            components = maximize_block(params.components, stats.components, block)
            params = dataclasses.replace(params, components=components)
            trail.append((block, q(params)))
        return MStepResult(params, tuple(trail))
