"""GaussianMixture against scikit-learn in the same run.

Both start from the same parameters and run exactly ``--iterations`` EM iterations
(``tol=0``). For each case it prints the per-iteration time of each (median of
``--repeats`` runs), their ratio, the peak memory allocated above X during ``fit``
(tracemalloc, in a separate run) and the relative difference of the final log-likelihoods.

Usage::

    python benchmarks/bench_gaussian_mixture.py            # the full table
    python benchmarks/bench_gaussian_mixture.py --quick    # small sizes, a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SKLearnGaussianMixture

from emkit import GaussianMixture

CASES = [
    (50_000, 16, 16, "full"),
    (50_000, 16, 16, "tied"),
    (50_000, 16, 16, "diag"),
    (50_000, 16, 16, "spherical"),
    (500_000, 8, 8, "diag"),
]
QUICK_CASES = [(5_000, 8, 4, kind) for kind in ("full", "tied", "diag", "spherical")]


def make_problem(n: int, d: int, k: int, covariance_type: str, seed: int = 0):
    """Blobs, and starting parameters from a one-iteration scikit-learn fit."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    X = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))
    start = SKLearnGaussianMixture(
        k, covariance_type=covariance_type, max_iter=1, init_params="random_from_data",
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X[: min(n, 20_000)])
    init = {
        "weights_init": start.weights_,
        "means_init": start.means_,
        "precisions_init": start.precisions_,
    }
    return X, init


def fit_once(cls, X, init, covariance_type, iterations):
    model = cls(
        len(init["weights_init"]), covariance_type=covariance_type, max_iter=iterations,
        tol=0.0, init_params="random_from_data", random_state=0, **init,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X)
        elapsed = time.perf_counter() - start
    return model, elapsed


def peak_memory(cls, X, init, covariance_type, iterations) -> float:
    tracemalloc.start()
    fit_once(cls, X, init, covariance_type, iterations)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def final_log_likelihood(model, X) -> float:
    return float(model.score(X))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer iterations")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    cases = QUICK_CASES if args.quick else CASES
    iterations = 10 if args.quick else args.iterations
    header = (
        f"{'N':>8} {'D':>3} {'K':>3} {'covariance':>10} {'sklearn s/it':>13} "
        f"{'emkit s/it':>11} {'ratio':>6} {'mem ratio':>9} {'emkit MB':>9} {'sklearn MB':>10} "
        f"{'rel. diff ll':>12}"
    )
    print(header)
    print("-" * len(header))
    for n, d, k, kind in cases:
        X, init = make_problem(n, d, k, kind)
        times = {"sklearn": [], "emkit": []}
        models = {}
        for _ in range(args.repeats):
            for name, cls in (("sklearn", SKLearnGaussianMixture), ("emkit", GaussianMixture)):
                models[name], elapsed = fit_once(cls, X, init, kind, iterations)
                times[name].append(elapsed / iterations)
        sk_time = statistics.median(times["sklearn"])
        em_time = statistics.median(times["emkit"])
        sk_mem = peak_memory(SKLearnGaussianMixture, X, init, kind, 2)
        em_mem = peak_memory(GaussianMixture, X, init, kind, 2)
        sk_ll = final_log_likelihood(models["sklearn"], X)
        em_ll = final_log_likelihood(models["emkit"], X)
        print(
            f"{n:>8} {d:>3} {k:>3} {kind:>10} {sk_time:>13.4f} {em_time:>11.4f} "
            f"{em_time / sk_time:>6.3f} {em_mem / sk_mem:>9.3f} {em_mem / 2**20:>9.1f} "
            f"{sk_mem / 2**20:>10.1f} {abs(em_ll - sk_ll) / abs(sk_ll):>12.2e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
