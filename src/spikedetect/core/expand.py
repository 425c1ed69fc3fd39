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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

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
