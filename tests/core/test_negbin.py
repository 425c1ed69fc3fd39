"""Negative-binomial tail surprise against a slow exact reference (math.lgamma, explicit pmf sums)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from spikedetect.core.config import DetectorConfig
from spikedetect.core.negbin import MAX_SCORE, FloatArray, lgamma, log_sf, surprise
from spikedetect.core.policy import ANOMALOUS, CALM, IncidentPolicy


def ref_logpmf(k: int, mu: float, phi: float) -> float:
    if phi <= 1.0001:  # Poisson
        return k * math.log(mu) - mu - math.lgamma(k + 1)
    r = mu / (phi - 1.0)  # NB with mean mu, variance phi * mu
    q = mu / (mu + r)
    return math.lgamma(k + r) - math.lgamma(k + 1) - math.lgamma(r) + r * math.log1p(-q) + k * math.log(q)


def ref_log_sf(observed: float, mu: float, phi: float) -> float:
    """ln P(X >= ceil(observed)) by summing the pmf upward until the terms vanish."""
    x = math.ceil(observed)
    if x <= mu:
        return 0.0
    lp0 = ref_logpmf(x, mu, phi)
    total, k = 0.0, x
    while True:
        term = math.exp(ref_logpmf(k, mu, phi) - lp0)
        total += term
        if term < 1e-17 * total and k > x + 5:
            break
        k += 1
    return min(lp0 + math.log(total), 0.0)


def one(
    fn: Callable[[FloatArray, FloatArray, FloatArray], FloatArray], x: float, mu: float, phi: float
) -> float:
    return float(fn(np.array([x], dtype=float), np.array([mu], dtype=float), np.array([phi], dtype=float))[0])


CASES = [
    # Poisson (phi = 1): small and large counts
    (2, 1, 1.0),
    (3, 1, 1.0),
    (5, 1, 1.0),
    (10, 1, 1.0),
    (11, 10, 1.0),
    (30, 10, 1.0),
    (300, 10, 1.0),
    (12_000, 50, 1.0),
    (20, 5, 1.00005),  # within the Poisson tolerance
    (2.2, 1, 1.0),  # rates are rounded up: same as 3
    # overdispersed
    (3, 1, 2.0),
    (10, 1, 4.0),
    (30, 10, 2.0),
    (40, 10, 1.2),
    (100, 10, 5.0),
    (51, 50, 1.5),
    (60, 50, 10.0),
    (51, 50, 30.0),
    (200, 50, 50.0),
    (1_000, 50, 50.0),
    (12_000, 50, 3.0),
    (7, 0.5, 4.0),  # the floor mean of a cold key
    (1, 0.5, 2.0),
]


@pytest.mark.parametrize(("x", "mu", "phi"), CASES)
def test_log_sf_matches_exact_reference(x: float, mu: float, phi: float) -> None:
    got, ref = one(log_sf, x, mu, phi), ref_log_sf(x, mu, phi)
    assert ref < 0
    if ref < -math.log(10) * 3:  # where alarms are decided (score >= 3): relative 1e-5
        assert got == pytest.approx(ref, rel=1e-5)
    else:  # small surprises: the geometric remainder may be off by ~2 % of the probability
        assert abs(got - ref) <= 0.02
    s = one(surprise, x, mu, phi)
    assert s == pytest.approx(min(-ref / math.log(10), MAX_SCORE), rel=1e-5, abs=0.01)


def test_huge_surprise_is_capped() -> None:
    assert one(surprise, 12_000, 50, 1.0) == MAX_SCORE
    assert ref_log_sf(12_000, 50, 1.0) / math.log(10) < -MAX_SCORE


@pytest.mark.parametrize(
    ("x", "mu", "phi"), [(1, 1, 1.0), (0, 5, 2.0), (4.5, 5, 1.0), (5, 5.0, 3.0), (49, 50, 10.0)]
)
def test_observed_at_or_below_mean_is_no_surprise(x: float, mu: float, phi: float) -> None:
    assert one(log_sf, x, mu, phi) == 0.0
    assert one(surprise, x, mu, phi) == 0.0


def test_vectorised_equals_one_at_a_time() -> None:
    xs, mus, phis = (np.array([c[i] for c in CASES], dtype=float) for i in range(3))
    together = surprise(xs, mus, phis)
    apart = np.array([one(surprise, x, m, p) for x, m, p in zip(xs, mus, phis, strict=True)])
    np.testing.assert_allclose(together, apart, rtol=1e-12)


@pytest.mark.parametrize(("mu", "phi"), [(1.0, 1.0), (10.0, 1.0), (10.0, 3.0), (50.0, 20.0), (0.5, 4.0)])
def test_monotonic_in_observed(mu: float, phi: float) -> None:
    xs = np.arange(0, 600, dtype=float)
    s = surprise(xs, np.full_like(xs, mu), np.full_like(xs, phi))
    assert np.all(np.diff(s) >= 0)
    above = (xs[:-1] > mu) & (s[1:] < MAX_SCORE)
    assert np.all(np.diff(s)[above] > 0)  # strictly, above the mean and below the cap


@pytest.mark.parametrize("phi", [1.0, 2.0, 8.0])
def test_a_higher_expectation_is_less_surprised(phi: float) -> None:
    mus = np.linspace(1, 60, 60)
    s = surprise(np.full_like(mus, 80.0), mus, np.full_like(mus, phi))
    assert np.all(np.diff(s) < 0)


@pytest.mark.parametrize("phi", [1.0, 2.0, 4.0])
def test_three_where_one_is_usual_is_no_alarm_three_hundred_where_ten_is(phi: float) -> None:
    cfg = DetectorConfig()
    low = one(surprise, 3, 1, phi)
    high = one(surprise, 300, 10, phi)
    assert low < cfg.close_threshold < cfg.open_threshold
    assert high >= cfg.open_threshold
    sig = IncidentPolicy(cfg).signals(np.array([3.0, 300.0]), np.array([1.0, 10.0]), np.array([low, high]))
    assert sig[0] == CALM and sig[1] >= ANOMALOUS


def test_lgamma_matches_math() -> None:
    xs = np.concatenate([np.linspace(0.01, 10, 200), np.geomspace(10, 1e7, 50)])
    ref = np.array([math.lgamma(x) for x in xs])
    np.testing.assert_allclose(lgamma(xs), ref, rtol=1e-10, atol=1e-10)


def test_poisson_only_calls_give_the_same_bits_as_mixed_ones() -> None:
    """An all-Poisson call (composition tails) takes a shorter path; its values must be those
    the general path gives the same elements (there, one NB element forces the general path)."""
    rng = np.random.default_rng(17)
    mu = np.concatenate([rng.uniform(0.01, 5.0, 400), rng.uniform(5.0, 5e4, 400), [1e-12, 0.5, 7.5, 2e6]])
    x = np.ceil(mu * rng.choice([0.5, 1.1, 1.5, 3.0, 10.0, 200.0], len(mu))) + rng.integers(0, 4, len(mu))
    alone = log_sf(x, mu, np.ones(len(mu)))
    mixed = log_sf(np.append(x, 50.0), np.append(mu, 5.0), np.append(np.ones(len(mu)), 3.0))
    assert alone.tobytes() == mixed[:-1].tobytes()
    assert (alone < 0).sum() > 400  # the tails were computed, not only the zeros
