"""BernoulliMixture against pomegranate 1.x and a direct NumPy implementation, in one run.

N = 70,000 binary rows of D = 784 pixels (MNIST's size), K = 10 components. The data are
drawn from 10 random prototypes with pixel probabilities in [0.03, 0.97] (MNIST itself
cannot be downloaded here; a synthetic set of the same shape costs the same). Every
implementation starts from the same weights and means and runs a fixed number of EM
iterations: ``--iterations`` (50) for emkit and NumPy, ``--pomegranate-iterations`` (5) for
pomegranate, whose time per iteration is constant (it is far slower: 50 iterations would take
half an hour). Reported: the median time per iteration over ``--repeats`` fits, the ratio to
emkit, the mean log-likelihood reached, and emkit's after as many iterations (they must
agree: same algorithm, same start).

* emkit: ``BernoulliMixture(weights_init=..., means_init=..., tol=0, max_iter=50)``; the E-step
  is one matrix product for the log-densities of all components and one for the statistics,
  chunk by chunk on a thread pool.
* NumPy: Bishop's updates written out on the whole matrix (eqs. 9.56, 9.58–9.60), with the
  same two matrix products per iteration and an (N, K) responsibility matrix.
* pomegranate: ``GeneralMixtureModel`` of ``Bernoulli`` distributions with ``tol=-inf``
  (so that it runs every iteration) and ``check_data=False``; skipped if not installed.

Usage::

    python benchmarks/bench_bernoulli_mixture.py             # the full size, 50 iterations
    python benchmarks/bench_bernoulli_mixture.py --quick     # 7,000 rows, a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning

from emkit import BernoulliMixture


def make_problem(n: int, d: int, k: int, dtype, seed: int = 0):
    """Binary rows from ``k`` prototypes, and starting weights and means."""
    rng = np.random.default_rng(seed)
    prototypes = np.clip(rng.beta(0.5, 2.0, size=(k, d)), 0.03, 0.97)
    X = (rng.random((n, d)) < prototypes[rng.integers(0, k, n)]).astype(dtype)
    chosen = rng.choice(n, size=k, replace=False)
    means = 0.5 * X[chosen].astype(np.float64) + 0.25
    return X, np.full(k, 1.0 / k), means


def run_emkit(X, weights, means, iterations):
    model = BernoulliMixture(
        len(weights), alpha=1e-10, weights_init=weights, means_init=means, tol=0.0,
        max_iter=iterations,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X)
        elapsed = time.perf_counter() - start
    return elapsed, model.lower_bounds_[-1]


def run_numpy(X, weights, means, iterations):
    """Bishop's EM on the whole matrix; the log-likelihood of the final parameters."""
    start = time.perf_counter()
    X = np.asarray(X, dtype=np.float64)
    for _ in range(iterations):
        log_joint = np.log(weights) + X @ (np.log(means) - np.log1p(-means)).T
        log_joint += np.log1p(-means).sum(axis=1)
        log_norm = logsumexp(log_joint, axis=1, keepdims=True)
        resp = np.exp(log_joint - log_norm)
        nk = resp.sum(axis=0)
        weights = nk / nk.sum()
        means = np.clip(resp.T @ X / nk[:, None], 1e-10, 1 - 1e-10)
    elapsed = time.perf_counter() - start
    log_joint = np.log(weights) + X @ np.log(means).T + (1 - X) @ np.log1p(-means).T
    return elapsed, float(logsumexp(log_joint, axis=1).mean())


def run_pomegranate(X, weights, means, iterations):
    import torch
    from pomegranate.distributions import Bernoulli
    from pomegranate.gmm import GeneralMixtureModel

    tensor = torch.from_numpy(np.ascontiguousarray(X))
    dtype = tensor.dtype
    model = GeneralMixtureModel(
        [Bernoulli(probs=torch.tensor(m, dtype=dtype), check_data=False) for m in means],
        priors=torch.tensor(weights, dtype=dtype), max_iter=iterations, tol=-np.inf,
        check_data=False,
    )
    start = time.perf_counter()
    model.fit(tensor)
    elapsed = time.perf_counter() - start
    return elapsed, float(model.log_probability(tensor).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="7,000 rows, 10 iterations")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--pomegranate-iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    arguments = parser.parse_args()
    n, iterations = (7_000, 10) if arguments.quick else (70_000, arguments.iterations)
    d, k = 784, 10
    X, weights, means = make_problem(n, d, k, getattr(np, arguments.dtype))
    runners = {"emkit": (run_emkit, iterations, arguments.repeats),
               "numpy": (run_numpy, iterations, arguments.repeats)}
    try:
        import pomegranate

        runners[f"pomegranate {pomegranate.__version__}"] = (
            run_pomegranate, min(iterations, arguments.pomegranate_iterations), 1
        )
    except ImportError:
        print("pomegranate is not installed: compared with NumPy only")
    print(f"N={n} D={d} K={k} {arguments.dtype}, median of {arguments.repeats} fits "
          "(pomegranate: 1)")
    print(f"{'implementation':<18} {'iterations':>10} {'ms/iteration':>12} {'x emkit':>8} "
          f"{'log-likelihood':>15} {'emkit, same':>15}")
    reference = None
    for name, (runner, count, repeats) in runners.items():
        times, bound = [], None
        for _ in range(repeats):
            elapsed, bound = runner(X, weights, means, count)
            times.append(elapsed)
        per_iteration = statistics.median(times) / count
        reference = per_iteration if reference is None else reference
        emkit_bound = run_emkit(X, weights, means, count)[1]
        print(f"{name:<18} {count:10d} {1e3 * per_iteration:12.2f} "
              f"{per_iteration / reference:8.2f} {bound:15.6f} {emkit_bound:15.6f}")


if __name__ == "__main__":
    main()
