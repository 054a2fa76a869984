"""The structured model of seed 000: p(X, C, F, ID) = p(X | C, F) p(C | ID) p(ID) p(F).

Simulated data: several sites (the IDs), each with its own mixture of three hidden classes
C, p(C | ID); a feature F drawn uniformly; an observation X (``y`` below) that depends on the
class and the feature through one straight line per class. ``MixtureOfRegressions`` with
``groups=`` fits the model by EM — the E-step is the notes' gamma(c), proportional to
p(X | c, F) p(c | ID); the M-step is gamma-weighted least squares for each line and the
per-site class shares for p(C | ID) — and the figure compares what it recovered with what
was planted: p(C | ID) per site (left) and the regression lines (right).

Usage::

    python examples/structured_model.py structured_model.png
    python examples/structured_model.py structured_model.png --n-samples 6000 --force
"""

from __future__ import annotations

import argparse
from itertools import permutations
from pathlib import Path

import numpy as np

from emkit import MixtureOfRegressions

#: Planted lines, one per class: slope and intercept of X against F, and the noise.
SLOPES = np.array([1.5, -1.0, 0.0])
INTERCEPTS = np.array([0.0, 4.0, -3.0])
NOISE = np.array([0.6, 0.8, 0.5])
COLOURS = ("tab:blue", "tab:orange", "tab:green")


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; an existing output file is refused without ``--force``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="where to save the figure (PNG, PDF, ...)")
    parser.add_argument(
        "--n-samples", type=int, default=3000, help="number of rows (default: 3000)"
    )
    parser.add_argument("--n-ids", type=int, default=6, help="number of sites (default: 6)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    arguments = parser.parse_args(argv)
    if arguments.output.exists() and not arguments.force:
        parser.error(f"{arguments.output} exists; pass --force to overwrite it")
    if arguments.n_ids < 1 or arguments.n_samples < 10 * arguments.n_ids:
        parser.error("--n-ids must be positive and --n-samples at least 10 per site")
    return arguments


def simulate(n_samples: int, n_ids: int, rng: np.random.Generator):
    """The site of every row, the class shares p(C | ID) of every site (by name), the
    features F, the classes C and the observations X."""
    shares = rng.dirichlet(np.full(len(SLOPES), 0.6), size=n_ids)
    ids = rng.integers(0, n_ids, n_samples)
    classes = np.array([rng.choice(len(SLOPES), p=shares[site]) for site in ids])
    features = rng.uniform(-3.0, 3.0, n_samples)
    observations = (
        SLOPES[classes] * features + INTERCEPTS[classes]
        + NOISE[classes] * rng.standard_normal(n_samples)
    )
    names = np.array([f"site {site:02d}" for site in range(n_ids)])
    return names[ids], dict(zip(names, shares, strict=True)), features, classes, observations


def match_classes(model: MixtureOfRegressions) -> list[int]:
    """The fitted class that corresponds to each planted class (EM's labels are arbitrary)."""
    fitted = np.column_stack([model.coef_[:, 0], model.intercept_])
    planted = np.column_stack([SLOPES, INTERCEPTS])
    return list(
        min(permutations(range(len(SLOPES))), key=lambda p: np.abs(fitted[list(p)] - planted).sum())
    )


def main(argv: list[str] | None = None) -> None:
    """Simulate, fit, print the recovered parameters and save the figure."""
    arguments = parse_arguments(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(arguments.random_state)
    ids, shares, features, _, observations = simulate(arguments.n_samples, arguments.n_ids, rng)
    model = MixtureOfRegressions(
        n_components=len(SLOPES), n_init=5, tol=1e-8, max_iter=500,
        random_state=arguments.random_state,
    ).fit(features[:, None], observations, groups=ids)
    order = match_classes(model)
    recovered = model.group_weights_[:, order]
    print(f"converged: {model.converged_} after {model.n_iter_} iterations")
    print(f"mean log-likelihood per row: {model.lower_bound_:.4f}")
    print("class  slope (planted)  intercept (planted)  noise (planted)")
    for c, k in enumerate(order):
        print(
            f"  {c}    {model.coef_[k, 0]:6.3f} ({SLOPES[c]:5.2f})    "
            f"{model.intercept_[k]:6.3f} ({INTERCEPTS[c]:5.2f})        "
            f"{model.scale_[k]:5.3f} ({NOISE[c]:4.2f})"
        )
    print("p(C | ID), recovered (planted):")
    for g, site in enumerate(model.groups_):
        planted = shares[site]
        cells = "  ".join(
            f"{recovered[g, c]:.2f} ({planted[c]:.2f})" for c in range(len(SLOPES))
        )
        print(f"  {site}: {cells}")

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    positions = np.arange(len(model.groups_))
    width = 0.8 / len(SLOPES)
    for c in range(len(SLOPES)):
        planted = [shares[site][c] for site in model.groups_]
        offset = positions + (c - 1) * width
        left.bar(offset, recovered[:, c], width, color=COLOURS[c], label=f"class {c}")
        left.scatter(offset, planted, marker="_", s=200, color="black", zorder=3)
    left.scatter([], [], marker="_", s=200, color="black", label="planted")
    left.set_xticks(positions, model.groups_)
    left.set_ylabel("p(C | ID)")
    left.set_title("Class shares per site: recovered (bars) and planted")
    left.legend(fontsize="small")

    posterior = model.predict_proba(features[:, None], observations, groups=ids)
    labels = np.array(order).argsort()[posterior.argmax(axis=1)]
    right.scatter(
        features, observations, s=4, alpha=0.4, c=[COLOURS[c] for c in labels],
        rasterized=True,
    )
    grid = np.linspace(-3.0, 3.0, 2)
    for c, k in enumerate(order):
        right.plot(grid, model.coef_[k, 0] * grid + model.intercept_[k], color=COLOURS[c], lw=2)
        right.plot(grid, SLOPES[c] * grid + INTERCEPTS[c], color="black", lw=1, ls="--")
    right.plot([], [], color="black", ls="--", label="planted lines")
    right.plot([], [], color="grey", lw=2, label="fitted lines")
    right.set_xlabel("feature F")
    right.set_ylabel("observation X")
    right.set_title("Rows coloured by their most probable class")
    right.legend(fontsize="small")
    figure.savefig(arguments.output, dpi=120)
    print(f"figure written to {arguments.output}")


if __name__ == "__main__":
    main()
