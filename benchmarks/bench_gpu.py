"""Estimators on a CUDA device against the same estimators on NumPy and scikit-learn.

All runs of a case start from the same parameters and do exactly ``--iterations``
iterations (``tol=0``); the table gives the per-iteration time (median of ``--repeats``),
each one's ratio to scikit-learn's time in the same run, and the relative difference of
the final log-likelihood (inertia for k-means) from the NumPy float64 run. A warm-up fit
on the device precedes the timed ones (CUDA context, kernels), and the device is
synchronised before each clock reading.

Usage::

    python benchmarks/bench_gpu.py            # needs PyTorch with a CUDA device
    python benchmarks/bench_gpu.py --quick    # small sizes, a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from bench_gaussian_mixture import make_problem
from sklearn.cluster import KMeans as SKLearnKMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SKLearnGaussianMixture

from emkit import GaussianMixture, KMeans

MIXTURE_CASES = [(1_000_000, 16, 16, "full"), (1_000_000, 16, 16, "diag")]
KMEANS_CASES = [(1_000_000, 16, 16)]
QUICK_MIXTURE_CASES = [(20_000, 8, 4, "full"), (20_000, 8, 4, "diag")]
QUICK_KMEANS_CASES = [(20_000, 8, 4)]


def timed(fit):
    """Seconds taken by ``fit()`` (device synchronised on both sides), and its result."""
    torch.cuda.synchronize()
    start = time.perf_counter()
    result = fit()
    torch.cuda.synchronize()
    return time.perf_counter() - start, result


def mixture_runs(n, d, k, kind, iterations):
    """name -> a function fitting the model and returning it with its data."""
    X, init = make_problem(n, d, k, kind)

    def make(cls, data, dtype):
        options = dict(covariance_type=kind, max_iter=iterations, tol=0.0)
        start = {name: value.astype(dtype) for name, value in init.items()}
        return lambda: (cls(k, **options, **start).fit(data), data)

    on_device = {dtype: torch.as_tensor(X, dtype=getattr(torch, dtype), device="cuda")
                 for dtype in ("float64", "float32")}
    return {
        "scikit-learn": make(SKLearnGaussianMixture, X, "float64"),
        "emkit numpy float64": make(GaussianMixture, X, "float64"),
        "emkit cuda float64": make(GaussianMixture, on_device["float64"], "float64"),
        "emkit cuda float32": make(GaussianMixture, on_device["float32"], "float32"),
    }


def kmeans_runs(n, d, k, iterations):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    init = X[rng.choice(n, k, replace=False)]

    def make(cls, data, centres, **extra):
        return lambda: (cls(k, init=centres, n_init=1, max_iter=iterations, tol=0.0,
                            **extra).fit(data), data)

    runs = {
        "scikit-learn": make(SKLearnKMeans, X, init, algorithm="lloyd"),
        "emkit numpy float64": make(KMeans, X, init),
    }
    for dtype in ("float64", "float32"):
        torch_dtype = getattr(torch, dtype)
        runs[f"emkit cuda {dtype}"] = make(
            KMeans, torch.as_tensor(X, dtype=torch_dtype, device="cuda"),
            torch.as_tensor(init, dtype=torch_dtype, device="cuda"),
        )
    return runs


def objective(fitted) -> float:
    """Inertia of k-means; mean log-likelihood of a mixture's final parameters."""
    model, data = fitted
    if hasattr(model, "inertia_"):
        return float(model.inertia_)
    return float(model.score(data))


def report(title, runs, iterations, repeats):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, fit in runs.items():
            if "cuda" in name:
                fit()
        times = {name: [] for name in runs}
        results = {}
        for _ in range(repeats):
            for name, fit in runs.items():
                elapsed, results[name] = timed(fit)
                times[name].append(elapsed / iterations)
    anchor = statistics.median(times["scikit-learn"])
    reference = objective(results["emkit numpy float64"])
    print(f"\n{title}")
    print("| run | s/iteration | ratio to scikit-learn | rel. diff. of objective |")
    print("|---|---|---|---|")
    for name in runs:
        median = statistics.median(times[name])
        difference = abs(objective(results[name]) - reference) / abs(reference)
        print(f"| {name} | {median:.5f} | {median / anchor:.3f} | {difference:.1e} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=10)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs PyTorch with a CUDA device.")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    iterations = 5 if args.quick else args.iterations
    for n, d, k, kind in QUICK_MIXTURE_CASES if args.quick else MIXTURE_CASES:
        runs = mixture_runs(n, d, k, kind, iterations)
        report(f"GaussianMixture N={n:,} D={d} K={k} {kind}, {iterations} iterations",
               runs, iterations, args.repeats)
    for n, d, k in QUICK_KMEANS_CASES if args.quick else KMEANS_CASES:
        runs = kmeans_runs(n, d, k, iterations)
        report(f"KMeans (Lloyd) N={n:,} D={d} K={k}, {iterations} iterations",
               runs, iterations, args.repeats)


if __name__ == "__main__":
    main()
