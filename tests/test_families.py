"""Component families: statistics that add up, Q from the statistics, M-steps that maximise,
missing cells marginalised, NumPy and PyTorch alike, values outside the support refused."""

import dataclasses
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

from emkit.distributions import (
    Bernoulli,
    Categorical,
    Exponential,
    Gamma,
    Gaussian,
    GaussianParams,
    LogNormal,
    Multinomial,
    Poisson,
    Product,
    StudentT,
)
from emkit.distributions.bernoulli import BernoulliParams
from emkit.distributions.categorical import (
    CategoricalParams,
    decode_categories,
    encode_categories,
    learn_categories,
)
from emkit.distributions.exponential import ExponentialParams
from emkit.distributions.gamma import GammaParams, gamma_shape
from emkit.distributions.multinomial import MultinomialParams
from emkit.distributions.poisson import PoissonParams
from emkit.distributions.student_t import StudentTParams
from emkit.em import Mixture, run_em
from emkit.executors import InMemory

LEVELS = (3, 2, 4)


def make_data(name, rng, n=240):
    """Rows in the support of family ``name``."""
    if name == "bernoulli":
        return (rng.random((n, 4)) < rng.uniform(0.2, 0.8, 4)).astype(float)
    if name == "poisson":
        return rng.poisson([0.5, 3.0, 9.0], (n, 3)).astype(float)
    if name == "exponential":
        return rng.exponential([0.5, 2.0, 5.0], (n, 3))
    if name == "gamma":
        return rng.gamma([0.7, 2.5, 9.0], 1.5, (n, 3))
    if name == "lognormal":
        return np.exp(rng.normal([0.0, 1.0, -2.0], [0.5, 1.0, 0.3], (n, 3)))
    if name == "categorical":
        return np.stack([rng.integers(0, c, n) for c in LEVELS], axis=1).astype(float)
    if name == "multinomial":
        return rng.multinomial(12, [0.2, 0.3, 0.5], n).astype(float)
    return rng.standard_t(4, (n, 3)) * [1.0, 2.0, 0.5] + [1.0, -1.0, 0.0]


def exact_family(name):
    """The family with its regulariser (practically) off: the M-step is then the ML one."""
    return {
        "bernoulli": Bernoulli(alpha=1e-12),
        "poisson": Poisson(alpha=1e-12, beta=1e-12),
        "exponential": Exponential(alpha=1e-12, beta=1e-12),
        "gamma": Gamma(reg_shape=0.0),
        "lognormal": LogNormal("diag", reg_covar=0.0),
        "categorical": Categorical(LEVELS, alpha=1e-12),
        "multinomial": Multinomial(alpha=1e-12),
        "student_t": StudentT("diag", reg_covar=0.0, reg_dof=0.0),
    }[name]


NAMES = [
    "bernoulli", "poisson", "exponential", "gamma", "lognormal", "categorical", "multinomial",
    "student_t",
]


def statistics_of(family, X, resp, params=None):
    prepared = None if params is None else family.prepare(params, X)
    return family.statistics(family.features(X, prepared), resp)


def log_prob_of(family, X, params):
    prepared = family.prepare(params, X)
    return family.log_prob(family.features(X, prepared), prepared)


def setup(name, seed=0, n=240, k=3):
    """Data, responsibilities, the family, and parameters after one M-step (for Student-t,
    statistics taken at those parameters, so the latent scales have been through an E-step)."""
    rng = np.random.default_rng(seed)
    X = make_data(name, rng, n)
    resp = rng.dirichlet(np.ones(k), size=n)
    family = exact_family(name)
    params = family.maximize(statistics_of(family, X, resp))
    return X, resp, family, params


def fields(stats):
    """Every array of a statistics bundle, flattened, nested bundles included."""
    out = []
    for field in dataclasses.fields(stats):
        value = getattr(stats, field.name)
        if dataclasses.is_dataclass(value):
            out.extend(fields(value))
        else:
            out.append(np.asarray(value, dtype=float))
    return out


# ---------------------------------------------------------------------- statistics
@pytest.mark.parametrize("name", NAMES)
def test_statistics_add_up_across_chunks(name):
    X, resp, family, params = setup(name)
    given = params if name == "student_t" else None
    whole = statistics_of(family, X, resp, given)
    halves = [statistics_of(family, X[s], resp[s], given) for s in (slice(0, 97), slice(97, None))]
    for summed, single in zip(fields(halves[0] + halves[1]), fields(whole), strict=True):
        assert_allclose(summed, single, rtol=1e-12, atol=1e-10)
    for scaled, single in zip(fields(0.5 * whole), fields(whole), strict=True):
        assert scaled.shape == single.shape


@pytest.mark.parametrize("name", [n for n in NAMES if n != "student_t"])
def test_expected_log_likelihood_is_that_of_the_log_densities(name):
    """Q computed from the statistics equals sum_nk resp_nk log p(x_n | k) row by row."""
    X, resp, family, params = setup(name, seed=1)
    stats = statistics_of(family, X, resp)
    log_prob = log_prob_of(family, X, params)
    assert_allclose(
        family.expected_log_likelihood(params, stats), (resp * log_prob).sum(), rtol=1e-11
    )


@pytest.mark.parametrize("name", NAMES)
def test_log_densities_are_normalised_densities(name):
    """log p(x | k) against SciPy's distributions, component by component."""
    from scipy import stats as sp

    X, _, family, params = setup(name, seed=2, k=2)
    log_prob = log_prob_of(family, X, params)
    for k in range(2):
        if name == "bernoulli":
            expected = sp.bernoulli.logpmf(X, params.means[k]).sum(axis=1)
        elif name == "poisson":
            expected = sp.poisson.logpmf(X, params.rates[k]).sum(axis=1)
        elif name == "exponential":
            expected = sp.expon.logpdf(X, scale=1 / params.rates[k]).sum(axis=1)
        elif name == "gamma":
            expected = sp.gamma.logpdf(X, params.shapes[k], scale=1 / params.rates[k]).sum(axis=1)
        elif name == "lognormal":
            expected = sp.lognorm.logpdf(
                X, np.sqrt(params.covariances[k]), scale=np.exp(params.means[k])
            ).sum(axis=1)
        elif name == "categorical":
            expected = sum(
                np.log(params.probabilities[k, j, X[:, j].astype(int)]) for j in range(3)
            )
        elif name == "multinomial":
            expected = sp.multinomial.logpmf(X, 12, params.probabilities[k])
        else:
            expected = sp.multivariate_t.logpdf(
                X, params.means[k], np.diag(params.covariances[k]), df=params.dofs[k]
            )
        assert_allclose(log_prob[:, k], expected, rtol=1e-10)


# ---------------------------------------------------------------------- the M-step maximises
def coordinates(name, params):
    """Unconstrained coordinates of ``params`` and the inverse map."""
    if name == "bernoulli":
        return params.means.ravel(), lambda v: BernoulliParams(v.reshape(params.means.shape))
    if name in ("poisson", "exponential"):
        cls = PoissonParams if name == "poisson" else ExponentialParams
        return np.log(params.rates).ravel(), lambda v: cls(np.exp(v).reshape(params.rates.shape))
    if name == "gamma":
        shape = params.shapes.shape
        vector = np.log(np.concatenate([params.shapes.ravel(), params.rates.ravel()]))
        return vector, lambda v: GammaParams(
            np.exp(v[: v.size // 2]).reshape(shape), np.exp(v[v.size // 2 :]).reshape(shape)
        )
    if name == "lognormal":
        shape = params.means.shape

        def lognormal(v):
            variances = np.exp(v[v.size // 2 :]).reshape(shape)
            return GaussianParams(v[: v.size // 2].reshape(shape), variances,
                                  1 / np.sqrt(variances))

        return np.concatenate([params.means.ravel(), np.log(params.covariances).ravel()]), lognormal
    if name == "categorical":
        valid = np.arange(4)[None, :] < np.array(LEVELS)[:, None]

        def categorical(v):
            logits = np.full(params.probabilities.shape, -np.inf)
            logits[:, valid] = v.reshape(len(logits), -1)
            theta = np.exp(logits - logits.max(axis=2, keepdims=True))
            return CategoricalParams(theta / theta.sum(axis=2, keepdims=True))

        return np.log(params.probabilities[:, valid]).ravel(), categorical
    if name == "multinomial":
        shape = params.probabilities.shape

        def multinomial(v):
            theta = np.exp(v.reshape(shape))
            return MultinomialParams(theta / theta.sum(axis=1, keepdims=True), params.trials)

        return np.log(params.probabilities).ravel(), multinomial
    shape = params.means.shape

    def student(v):
        size = params.means.size
        variances = np.exp(v[size : 2 * size]).reshape(shape)
        return StudentTParams(v[:size].reshape(shape), variances, 1 / np.sqrt(variances),
                              np.exp(v[2 * size :]))

    vector = np.concatenate(
        [params.means.ravel(), np.log(params.covariances).ravel(), np.log(params.dofs)]
    )
    return vector, student


def central_gradient(f, x, step=1e-5):
    gradient = np.empty_like(x)
    for i in range(x.size):
        h = step * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        gradient[i] = (f(up) - f(down)) / (2 * h)
    return gradient


@pytest.mark.parametrize("name", NAMES)
def test_m_step_is_the_maximiser_of_q(name):
    """The numerical gradient of Q at the update vanishes (relative to Q's gradient a small
    step away), and no random perturbation increases Q."""
    X, resp, family, start = setup(name, seed=3)
    stats = statistics_of(family, X, resp, start if name == "student_t" else None)
    best = family.maximize(stats)
    vector, rebuild = coordinates(name, best)

    def q(v):
        return family.expected_log_likelihood(rebuild(v), stats)

    gradient = central_gradient(q, vector)
    rng = np.random.default_rng(0)
    away = central_gradient(q, vector + 0.05 * rng.standard_normal(vector.size))
    assert np.abs(gradient).max() <= 1e-5 * np.abs(away).max()
    for _ in range(20):
        assert q(vector + 0.01 * rng.standard_normal(vector.size)) <= q(vector)


@pytest.mark.parametrize(
    "family, name",
    [
        (Bernoulli(alpha=0.5), "bernoulli"),
        (Poisson(alpha=2.0, beta=1.0), "poisson"),
        (Exponential(alpha=2.0, beta=3.0), "exponential"),
        (Gamma(reg_shape=0.5), "gamma"),
        (Categorical(LEVELS, alpha=3.0), "categorical"),
        (Multinomial(alpha=2.0), "multinomial"),
        (StudentT("diag", reg_covar=0.0, reg_dof=0.2), "student_t"),
    ],
)
def test_regularization_gap_is_the_loss_of_q(family, name):
    """The reported gap is exactly Q(unregularised maximiser) − Q(regularised update)."""
    X, resp, _, start = setup(name, seed=4)
    stats = statistics_of(family, X, resp, start if name == "student_t" else None)
    regularised = family.maximize(stats)
    exact = exact_family(name).maximize(stats)
    loss = family.expected_log_likelihood(exact, stats) - family.expected_log_likelihood(
        regularised, stats
    )
    assert loss > 0
    assert_allclose(family.regularization_gap(regularised, stats) * len(X), loss, rtol=1e-6)


def test_gamma_shape_solves_its_equation_at_every_scale():
    from scipy.special import digamma

    s = np.logspace(-4, 12, 60)
    a = gamma_shape(s)
    assert_allclose(np.log(a) - digamma(a), s, rtol=1e-9)


# ---------------------------------------------------------------------- EM with each family
@pytest.mark.parametrize("name", NAMES)
def test_em_through_the_engine_is_monotone(name):
    X, resp, family, _ = setup(name, seed=5, n=400, k=2)
    model = Mixture(family, 2)
    data = InMemory(X, chunk_size=64)
    stats = data.statistics(model, lambda start, rows: resp[start : start + len(rows)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = run_em(model, data, model.maximize(stats), max_iter=30, tol=0.0,
                        monotonic="raise")
    assert np.all(np.diff(result.lower_bounds) >= -1e-12 * np.abs(result.lower_bounds[1:]))


# ---------------------------------------------------------------------- missing cells
MISSING = ["bernoulli", "poisson", "exponential", "gamma", "categorical"]


def restricted(name, family, params, column):
    """The family and parameters without ``column``."""
    if name == "categorical":
        keep = [j for j in range(len(LEVELS)) if j != column]
        return (
            Categorical(tuple(LEVELS[j] for j in keep), family.alpha),
            CategoricalParams(params.probabilities[:, keep]),
        )
    values = {
        field.name: np.delete(getattr(params, field.name), column, axis=1)
        for field in dataclasses.fields(params)
    }
    return family, type(params)(**values)


@pytest.mark.parametrize("name", MISSING)
def test_missing_cells_are_marginalised(name):
    X, resp, family, params = setup(name, seed=6)
    column = 1
    rows = np.arange(0, len(X), 3)
    holes = X.copy()
    holes[rows, column] = np.nan
    log_prob = log_prob_of(family, holes, params)
    small_family, small_params = restricted(name, family, params, column)
    expected = log_prob_of(small_family, np.delete(X, column, axis=1), small_params)
    full = log_prob_of(family, X, params)
    kept = np.setdiff1d(np.arange(len(X)), rows)
    assert_allclose(log_prob[rows], expected[rows], rtol=1e-12)
    assert_allclose(log_prob[kept], full[kept], rtol=1e-12)

    stats = statistics_of(family, holes, resp)
    observed = statistics_of(family, X[kept], resp[kept])
    complete = statistics_of(family, X, resp)
    if name == "categorical":
        offset = LEVELS[0]
        block = slice(offset, offset + LEVELS[1])
        assert_allclose(stats.counts[:, block], observed.counts[:, block], rtol=1e-12)
        assert_allclose(stats.counts[:, :offset], complete.counts[:, :offset], rtol=1e-12)
    else:
        assert_allclose(stats.counts[:, column], observed.counts[:, column], rtol=1e-12)
        assert_allclose(stats.sums[:, :, column], observed.sums[:, :, column], rtol=1e-12)
        assert_allclose(stats.counts[:, 0], complete.counts[:, 0], rtol=1e-12)
        assert_allclose(stats.resp_sum, complete.resp_sum, rtol=1e-12)


def two_components(name, rng, n):
    """Rows of family ``name`` from two well-separated components, and their labels."""
    truth = rng.integers(0, 2, n)
    if name == "bernoulli":
        X = (rng.random((n, 4)) < np.where(truth[:, None] == 0, 0.15, 0.8)).astype(float)
    elif name == "poisson":
        X = rng.poisson(np.where(truth[:, None] == 0, 1.0, 9.0), (n, 3)).astype(float)
    elif name == "exponential":
        X = rng.exponential(np.where(truth[:, None] == 0, 1.0, 12.0), (n, 3))
    elif name == "gamma":
        X = rng.gamma(np.where(truth[:, None] == 0, 2.0, 20.0), 1.0, (n, 3))
    else:
        favoured = np.where(truth[:, None] == 0, 0, np.array(LEVELS) - 1)
        uniform = np.stack([rng.integers(0, c, n) for c in LEVELS], axis=1)
        X = np.where(rng.random((n, 3)) < 0.6, favoured, uniform).astype(float)
    return X, truth


@pytest.mark.parametrize("name", MISSING)
def test_em_with_missing_cells_is_monotone_and_recovers(name):
    """EM through the engine on data with a quarter of the cells missing finds what it
    finds on the complete data."""
    rng = np.random.default_rng(7)
    n = 3000
    complete_X, truth = two_components(name, rng, n)
    X = complete_X.copy()
    X[rng.random(X.shape) < 0.25] = np.nan
    model = Mixture(exact_family(name), 2)
    start = np.eye(2)[np.where(rng.random(n) < 0.8, truth, 1 - truth)]

    def fit(data_matrix):
        data = InMemory(data_matrix, chunk_size=500)
        stats = data.statistics(model, lambda first, rows: start[first : first + len(rows)])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return run_em(model, data, model.maximize(stats), max_iter=300, tol=1e-8,
                          monotonic="raise")

    holes, complete = fit(X), fit(complete_X)
    assert holes.converged
    assert_allclose(holes.params.weights, complete.params.weights, atol=0.03)
    for field in dataclasses.fields(holes.params.components):
        assert_allclose(
            getattr(holes.params.components, field.name),
            getattr(complete.params.components, field.name), rtol=0.1, atol=0.03,
        )


# ---------------------------------------------------------------------- NumPy and PyTorch
@pytest.mark.parametrize("name", NAMES)
def test_torch_and_numpy_agree(name):
    torch = pytest.importorskip("torch")
    X, resp, family, params = setup(name, seed=8)
    tensor, tensor_resp = torch.from_numpy(X), torch.from_numpy(resp)
    if name in MISSING:
        X = X.copy()
        X[::5, 0] = np.nan
        tensor = torch.from_numpy(X)
    on_numpy = log_prob_of(family, X, params)
    on_torch = log_prob_of(family, tensor, params)
    assert isinstance(on_torch, torch.Tensor)
    assert_allclose(on_torch.numpy(), on_numpy, rtol=1e-12)
    given = params if name == "student_t" else None
    numpy_stats = statistics_of(family, X, resp, given)
    torch_stats = statistics_of(family, tensor, tensor_resp, given).to_numpy()
    for a, b in zip(fields(torch_stats), fields(numpy_stats), strict=True):
        assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- products
def test_product_adds_log_densities_and_splits_statistics():
    rng = np.random.default_rng(9)
    n = 200
    X = np.column_stack([
        make_data("poisson", rng, n)[:, :2], rng.normal(size=(n, 2)),
        make_data("bernoulli", rng, n)[:, :1],
    ])
    resp = rng.dirichlet(np.ones(2), size=n)
    product = Product([([0, 1], Poisson()), ([4], Bernoulli()), ([2, 3], Gaussian("diag"))])
    params = product.maximize(statistics_of(product, X, resp))
    log_prob = log_prob_of(product, X, params)
    expected = 0
    for (columns, family), part in zip(product.groups, params.parts, strict=True):
        expected = expected + log_prob_of(family, X[:, list(columns)], part)
    assert_allclose(log_prob, expected, rtol=1e-12)
    assert product.n_parameters(params) == 2 * 2 + 2 * 1 + 2 * 4
    draws = product.sample(params, np.array([3, 4]), np.random.RandomState(0))
    assert draws.shape == (7, 5)
    assert set(np.unique(draws[:, 4])) <= {0.0, 1.0}


def test_product_groups_must_partition_the_columns():
    with pytest.raises(ValueError, match="partition the columns"):
        Product([([0, 1], Poisson()), ([1, 2], Bernoulli())])
    with pytest.raises(ValueError, match="partition the columns"):
        Product([([0, 2], Poisson())])


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "family, value, message",
    [
        (Bernoulli(), 0.5, "Bernoulli column 'c' must hold 0 or 1, but row 3 holds 0.5"),
        (Poisson(), 2.5, "Poisson column 'c' must hold non-negative integers, but row 3"),
        (Poisson(), -1.0, "Negative values in data: Poisson column 'c'"),
        (Exponential(), -0.1, "Negative values in data: Exponential column 'c'"),
        (Gamma(), 0.0, "Gamma column 'c' must hold positive numbers, but row 3 holds 0.0"),
        (LogNormal(), 0.0, "LogNormal column 'c' must hold positive numbers"),
        (Multinomial(), 1.5, "Multinomial column 'c' must hold non-negative integer counts"),
        (Categorical((2, 2)), 2.0, "Categorical column 'c' must hold integer codes 0 to 1"),
        (Multinomial(), np.nan, "Multinomial column 'c' holds NaN at row 3"),
    ],
)
def test_values_outside_the_support_are_refused_by_column_and_row(family, value, message):
    X = np.ones((6, 2))
    X[3, 1] = value
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        family.validate(X, ["'a'", "'c'"])


def test_missing_cells_pass_validation_where_they_are_marginalised():
    X = np.ones((4, 2))
    X[2, 0] = np.nan
    for family in (
        Bernoulli(), Poisson(), Exponential(), Gamma(), Categorical((2, 2)), LogNormal()
    ):
        family.validate(X, ["0", "1"])


# ---------------------------------------------------------------------- levels
def test_levels_round_trip_and_unknown_levels_are_named():
    columns = [np.array(["red", "blue", None, "red"], dtype=object), np.array([3, 1, 3, 2])]
    categories, counts = learn_categories(columns, [None, None], ["'colour'", "'size'"])
    assert categories.dtype.kind == "U"
    assert categories[0, :2].tolist() == ["blue", "red"] and counts.tolist() == [2, 3]
    codes = encode_categories(columns, categories, counts, ["'colour'", "'size'"],
                              allow_missing=True)
    assert np.isnan(codes[2, 0]) and codes[1, 1] == 0.0
    assert decode_categories(codes[[0, 1, 3]], categories).tolist() == [
        ["red", "3"], ["blue", "1"], ["red", "2"]
    ]
    with pytest.raises(ValueError, match=r"column 'colour' holds 'green' at row 1, a level"):
        encode_categories([np.array(["red", "green"], dtype=object), np.array([1, 2])],
                          categories, counts, ["'colour'", "'size'"], allow_missing=True)
    with pytest.raises(ValueError, match=r"holds NaN \(a missing value\) at row 2"):
        encode_categories(columns, categories, counts, ["'colour'", "'size'"],
                          allow_missing=False)


def test_numeric_levels_stay_numbers_and_refuse_infinity():
    categories, counts = learn_categories([np.array([2.0, 1.0, 2.0])], [None], ["0"])
    assert categories.dtype == np.float64 and categories[0].tolist() == [1.0, 2.0]
    codes = encode_categories([np.array([2, 1])], categories, counts, ["0"], allow_missing=False)
    assert codes.ravel().tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="inf"):
        learn_categories([np.array([1.0, np.inf])], [None], ["0"])
