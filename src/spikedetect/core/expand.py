"""From leaf counts of a closed window to counts at every region level.

Sources (input partitions) send leaf-level counts ``(region, category, source) -> n``
per service; they are summed, then every report is credited to each level of its
region path and to ``"*"``.

>>> leaf = {("US/CA/LA", "feed", "app"): 3, ("US/NY", "login", "web"): 2}
>>> totals(leaf)["US"], totals(leaf)["*"], totals(leaf)["US/CA"]
(5, 5, 3)
>>> breakdown(leaf, {"US"})["US"].children
{'US/CA': 3, 'US/NY': 2}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from spikedetect.core.regions import region_keys
from spikedetect.kernel import closing as _kernel

LeafCounts = Mapping[tuple[str, str, str], float]

_keys_cache: dict[str, tuple[str, ...]] = {}


def keys_of(region: str) -> tuple[str, ...]:
    """Cached :func:`~spikedetect.core.regions.region_keys` (leaf first, ``"*"`` last)."""
    got = _keys_cache.get(region)
    if got is None:
        if len(_keys_cache) > 500_000:
            _keys_cache.clear()
        got = _keys_cache[region] = region_keys(region)
    return got


def merge(parts: Iterable[LeafCounts]) -> dict[tuple[str, str, str], float]:
    """Sum leaf counts from several sources."""
    out: dict[tuple[str, str, str], float] = {}
    for part in parts:
        for key, n in part.items():
            out[key] = out.get(key, 0) + n
    return out


def totals(leaf: LeafCounts) -> dict[str, float]:
    """Reports per key (every level of every region, and ``"*"``)."""
    by_region: dict[str, float] = {}
    for (region, _, _), n in leaf.items():
        by_region[region] = by_region.get(region, 0) + n
    out: dict[str, float] = {}
    for region, n in by_region.items():
        for key in keys_of(region):
            out[key] = out.get(key, 0) + n
    return out


@dataclass
class Breakdown:
    categories: dict[str, float] = field(default_factory=dict)
    sources: dict[str, float] = field(default_factory=dict)
    children: dict[str, float] = field(default_factory=dict)


# Incidents' sums a window's breakdown may be added into directly (LeafWindow.breakdown_into):
# (key -> its incident's categories, sources, children; service; keyspace index; expectations;
# value scale; cap on children), as Tracker.accumulate adds a view's
Sums = tuple[dict[str, float], dict[str, float], dict[str, list[float]]]
Into = tuple[dict[str, Sums], str, dict[tuple[str, str], int], npt.NDArray[np.float64], float, int]


def breakdown(leaf: LeafCounts, wanted: set[str]) -> dict[str, Breakdown]:
    """Category, source and child-region counts for the keys in ``wanted`` only (in the
    compiled closing loops when they are built: the same sums, added in the same order)."""
    if _kernel is not None:
        compiled: dict[str, Breakdown] = _kernel.breakdown_sums(leaf, wanted, keys_of, Breakdown)
        return compiled
    out: dict[str, Breakdown] = {}
    # per region (once per call): its wanted keys, leaf first, each with its child on the path
    paths: dict[str, tuple[tuple[str, str | None], ...]] = {}
    for (region, category, source), n in leaf.items():
        path = paths.get(region)
        if path is None:
            chain = keys_of(region)
            path = paths[region] = tuple((key, chain[i - 1] if i > 0 else None)
                                         for i, key in enumerate(chain) if key in wanted)
        for key, child in path:
            b = out.get(key)
            if b is None:
                b = out[key] = Breakdown()
            b.categories[category] = b.categories.get(category, 0) + n
            b.sources[source] = b.sources.get(source, 0) + n
            if child is not None:
                b.children[child] = b.children.get(child, 0) + n
    return out


def add_breakdown_py(categories: dict[str, float], sources: dict[str, float], children: dict[str, list[float]],
                     add_categories: Mapping[str, float], add_sources: Mapping[str, float],
                     add_children: Mapping[str, tuple[float, float]], cap: int) -> None:
    """Add one window's breakdown into an incident's sums: each category and source count (a
    name new to them from 0.0) and each child's (reports, expected), a new child only while there
    are fewer than ``cap``; :data:`add_breakdown` is the compiled loop's when built (the same
    additions in the same order).

    >>> cats, kids = {"feed": 1.0}, {}
    >>> add_breakdown_py(cats, {}, kids, {"feed": 2, "login": 1}, {}, {"US/CA": (3.0, 1.5)}, 8)
    >>> cats, kids
    ({'feed': 3.0, 'login': 1.0}, {'US/CA': [3.0, 1.5]})
    """
    for into, add in ((categories, add_categories), (sources, add_sources)):
        get = into.get
        for name, n in add.items():
            into[name] = get(name, 0.0) + n
    for child, (n, e) in add_children.items():
        acc = children.get(child)
        if acc is None:
            if len(children) >= cap:
                continue
            acc = children[child] = [0.0, 0.0]
        acc[0] += n
        acc[1] += e


def children_cap(max_breakdown: int) -> int:
    """How many child regions an incident's sums keep (:func:`add_breakdown`'s ``cap``, on both
    the view's path and :meth:`LeafWindow.breakdown_into
    <spikedetect.core.leaf_window.LeafWindow.breakdown_into>`'s) when events show ``max_breakdown``."""
    return max_breakdown * 8


AddBreakdown = Callable[[dict[str, float], dict[str, float], dict[str, list[float]], Mapping[str, float],
                         Mapping[str, float], Mapping[str, tuple[float, float]], int], None]
add_breakdown: AddBreakdown = add_breakdown_py if _kernel is None else _kernel.add_breakdown


def fold(counts: dict[str, float], limit: int, other: str = "other") -> dict[str, float]:
    """Keep the ``limit`` largest entries and add the rest into ``other``.

    >>> fold({"a": 5, "b": 1, "c": 1}, 2)
    {'a': 5, 'other': 2}
    """
    if len(counts) <= limit:
        return counts
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = dict(ranked[: limit - 1])
    kept[other] = kept.get(other, 0) + sum(n for _, n in ranked[limit - 1:])
    return kept
