"""Optional methods of a component family, and where the engine finds them.

The protocol of :mod:`emkit.distributions._base` is all that exact EM needs. A family may
offer more, and gets more of the engine for it:

``expected_log_likelihood(params, stats) -> float``
    :math:`Q(\\theta) = \\sum_n \\sum_k q_{nk} \\log p(x_n \\mid z_n = k, \\theta_k)`
    computed from the statistics alone. Needed by generalized and conditional M-steps (the
    engine checks that Q does not decrease), by incremental EM (its monotone free energy),
    by the ELBO diagnostics and by :func:`emkit.diagnostics.check_family`.
``pack(params) -> ndarray`` and ``unpack(vector, like) -> params``
    The parameters as one vector of unconstrained coordinates (log-variances, say) and
    back (``like`` gives shapes): the generic generalized M-step climbs Q in them.
``improve(params, stats) -> params``
    A partial M-step (a few Newton steps, say) that increases Q from ``params``: the
    generalized M-step uses it instead of the generic climb.
``conditional_blocks`` (tuple of str) and ``conditional_maximize(params, stats, block)``
    The blocks of an ECM step, each maximising Q over its parameters given the others.

A family provides them as methods, or, for a class one cannot edit, they are registered
here with :func:`register` as functions taking the family first. The Gaussian family's are
(:mod:`emkit.em.gaussian`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from emkit.distributions.gaussian import Gaussian
from emkit.em import gaussian as _gaussian

__all__ = ["OPTIONAL_METHODS", "family_method", "register"]

#: The names a family may provide beyond the protocol.
OPTIONAL_METHODS = (
    "expected_log_likelihood",
    "pack",
    "unpack",
    "improve",
    "conditional_blocks",
    "conditional_maximize",
)

_REGISTRY: dict[type, dict[str, Any]] = {
    Gaussian: {
        "expected_log_likelihood": _gaussian.expected_log_likelihood,
        "pack": _gaussian.pack,
        "unpack": _gaussian.unpack,
        "conditional_blocks": _gaussian.CONDITIONAL_BLOCKS,
        "conditional_maximize": _gaussian.conditional_maximize,
    }
}


def register(cls: type, **methods: Callable[..., Any] | tuple[str, ...]) -> None:
    """Give the families of class ``cls`` optional methods, as functions ``fn(family, ...)``
    (``conditional_blocks`` as a tuple)."""
    unknown = set(methods) - set(OPTIONAL_METHODS)
    if unknown:
        raise ValueError(f"unknown optional methods {sorted(unknown)}; expected some of "
                         f"{OPTIONAL_METHODS}")
    _REGISTRY.setdefault(cls, {}).update(methods)


def family_method(family, name: str) -> Any:
    """The family's own ``name``, else the one registered for its class (bound to it), else
    ``None``."""
    own = getattr(family, name, None)
    if own is not None:
        return own
    for cls in type(family).__mro__:
        entry = _REGISTRY.get(cls, {}).get(name)
        if entry is not None:
            return functools.partial(entry, family) if callable(entry) else entry
    return None
