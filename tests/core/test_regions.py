"""Region hierarchy helpers and the expansion of leaf counts to every region level."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikedetect.core.expand import breakdown, fold, merge, totals
from spikedetect.core.regions import GLOBAL, depth, level_name, parent_key, region_keys


@pytest.mark.parametrize(
    ("region", "keys"),
    [
        ("US", ("US", "*")),
        ("US/CA", ("US/CA", "US", "*")),
        ("US/CA/Los Angeles", ("US/CA/Los Angeles", "US/CA", "US", "*")),
        ("US/CA/Los Angeles/Venice", ("US/CA/Los Angeles/Venice", "US/CA/Los Angeles", "US/CA", "US", "*")),
        ("GB/England/St. Albans", ("GB/England/St. Albans", "GB/England", "GB", "*")),
    ],
)
def test_region_keys_leaf_first(region: str, keys: tuple[str, ...]) -> None:
    assert region_keys(region) == keys
    # each key's parent is the next key in the chain, ending at "*"
    for child, parent in itertools.pairwise(keys):
        assert parent_key(child) == parent
        assert depth(child) == depth(parent) + 1
    assert parent_key(keys[-1]) is None


@pytest.mark.parametrize(
    ("key", "depth_", "level", "parent"),
    [
        (GLOBAL, 0, "global", None),
        ("US", 1, "country", "*"),
        ("US/CA", 2, "state", "US"),
        ("US/CA/Los Angeles", 3, "city", "US/CA"),
        ("US/CA/Los Angeles/Venice", 4, "locality", "US/CA/Los Angeles"),
        ("A/B/C/D/E", 5, "locality", "A/B/C/D"),  # deeper than the names: clipped to the last one
    ],
)
def test_depth_level_parent(key: str, depth_: int, level: str, parent: str | None) -> None:
    assert depth(key) == depth_
    assert level_name(key) == level
    assert parent_key(key) == parent


def test_totals_credit_every_level_once() -> None:
    leaf = {
        ("US/CA/Los Angeles", "login", "app"): 3,
        ("US/CA/Los Angeles", "feed", "web"): 2,
        ("US/CA/San Francisco", "login", "app"): 4,
        ("US/NY", "login", "app"): 1,
        ("GB", "feed", "app"): 7,
    }
    got = totals(leaf)
    assert got == {
        "US/CA/Los Angeles": 5,
        "US/CA/San Francisco": 4,
        "US/CA": 9,
        "US/NY": 1,
        "US": 10,
        "GB": 7,
        "*": 17,
    }
    # "*" is every report exactly once
    assert got["*"] == sum(leaf.values())


def test_breakdown_only_wanted_keys() -> None:
    leaf = {
        ("US/CA/Los Angeles", "login", "app"): 3,
        ("US/CA/Los Angeles", "feed", "web"): 1,
        ("US/NY", "login", "web"): 2,
    }
    got = breakdown(leaf, {"US", "US/CA/Los Angeles"})
    assert set(got) == {"US", "US/CA/Los Angeles"}
    assert got["US"].categories == {"login": 5, "feed": 1}
    assert got["US"].sources == {"app": 3, "web": 3}
    assert got["US"].children == {"US/CA": 4, "US/NY": 2}
    assert got["US/CA/Los Angeles"].children == {}  # a leaf has no children
    assert got["US/CA/Los Angeles"].categories == {"login": 3, "feed": 1}


REGIONS = ["US", "US/CA", "US/CA/LA", "US/CA/LA/Venice", "US/NY", "GB/ENG/London", "GB", "*"]
LEAVES = st.dictionaries(
    st.tuples(st.sampled_from(REGIONS), st.sampled_from(["login", "feed", "dm"]), st.sampled_from(["app", "web"])),
    st.one_of(st.integers(0, 10**6), st.floats(-1e3, 1e6, allow_nan=False)), max_size=40)


@settings(max_examples=300, deadline=None)
@given(LEAVES, st.sets(st.sampled_from(["*", "US", "US/CA", "US/CA/LA", "US/NY", "GB", "GB/ENG", "FR"])))
def test_breakdown_adds_each_report_to_every_wanted_key_on_its_path_in_order(
        leaf: dict[tuple[str, str, str], float], wanted: set[str]) -> None:
    """Sums, number types and key order are those of adding the reports one by one, in the
    order of the leaf counts, to each wanted key above them (incident state keeps that order)."""
    want: dict[str, tuple[dict[str, float], dict[str, float], dict[str, float]]] = {}
    for (region, category, source), n in leaf.items():
        chain = region_keys(region)
        for i, key in enumerate(chain):
            if key in wanted:
                cats, srcs, kids = want.setdefault(key, ({}, {}, {}))
                cats[category] = cats.get(category, 0) + n
                srcs[source] = srcs.get(source, 0) + n
                if i > 0:
                    kids[chain[i - 1]] = kids.get(chain[i - 1], 0) + n
    got = breakdown(leaf, wanted)
    assert list(got) == list(want)
    for key, (cats, srcs, kids) in want.items():
        for have, expected in ((got[key].categories, cats), (got[key].sources, srcs), (got[key].children, kids)):
            assert [(k, v, type(v)) for k, v in have.items()] == [(k, v, type(v)) for k, v in expected.items()]


def test_merge_sums_sources() -> None:
    a = {("US", "x", "app"): 2, ("GB", "x", "app"): 1}
    b = {("US", "x", "app"): 5}
    assert merge([a, b]) == {("US", "x", "app"): 7, ("GB", "x", "app"): 1}
    assert a == {("US", "x", "app"): 2, ("GB", "x", "app"): 1}  # inputs untouched


@pytest.mark.parametrize(
    ("counts", "limit", "expected"),
    [
        ({"a": 5, "b": 1}, 2, {"a": 5, "b": 1}),  # within the limit: unchanged
        ({"a": 5, "b": 1, "c": 1}, 2, {"a": 5, "other": 2}),
        ({"a": 1, "b": 1, "c": 1, "d": 4}, 3, {"d": 4, "a": 1, "other": 2}),  # ties: by name
        ({"a": 2, "other": 1, "b": 1}, 2, {"a": 2, "other": 2}),
    ],
)
def test_fold(counts: dict[str, float], limit: int, expected: dict[str, float]) -> None:
    got = fold(dict(counts), limit)
    assert got == expected
    assert sum(got.values()) == sum(counts.values())
    assert len(got) <= limit
