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
    """Category, source and child-region counts for the keys in ``wanted`` only."""
    out: dict[str, Breakdown] = {}
    # per region (once per call): the count dicts of its wanted keys, leaf first, each with its
    # child on the path - so each report adds straight into the dicts it feeds
    paths: dict[str, _Path] = {}
    for (region, category, source), n in leaf.items():
        path = paths.get(region)
        if path is None:
            path = paths[region] = _path(region, wanted, out)
        for cats, srcs, kids, child in path:
            cats[category] = cats.get(category, 0) + n
            srcs[source] = srcs.get(source, 0) + n
            if kids is not None:
                kids[child] = kids.get(child, 0) + n
    return out


# per wanted key on a region's path: its categories, sources and children dicts (None for the
# region itself), and the child on the path
_Path = tuple[tuple[dict[str, float], dict[str, float], dict[str, float] | None, str], ...]


def _path(region: str, wanted: set[str], out: dict[str, Breakdown]) -> _Path:
    """The count dicts a report of ``region`` adds to, leaf first (its wanted keys' breakdowns,
    created in ``out`` on first use, and the child on the path: none for the region itself)."""
    chain = keys_of(region)
    path = []
    for i, key in enumerate(chain):
        if key in wanted:
            b = out.get(key)
            if b is None:
                b = out[key] = Breakdown()
            path.append((b.categories, b.sources, b.children if i > 0 else None, chain[i - 1] if i > 0 else ""))
    return tuple(path)


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
