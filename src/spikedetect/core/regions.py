"""Region paths and their hierarchy.

A region is a '/'-separated path, country code first, one to four levels. Every
report counts toward every prefix of its path and the global key ``"*"``.

>>> region_keys("US/CA/Los Angeles")
('US/CA/Los Angeles', 'US/CA', 'US', '*')
>>> parent_key("US/CA")
'US'
>>> level_name("US/CA/Los Angeles")
'city'
"""

from __future__ import annotations

GLOBAL = "*"
LEVEL_NAMES = ("global", "country", "state", "city", "locality")


def region_keys(region: str) -> tuple[str, ...]:
    """The region itself, each ancestor, then ``"*"``: leaf first (``"*"`` alone for ``"*"``)."""
    if region == GLOBAL:
        return (GLOBAL,)
    keys = [region]
    cut = region.rfind("/")
    while cut > 0:
        region = region[:cut]
        keys.append(region)
        cut = region.rfind("/")
    keys.append(GLOBAL)
    return tuple(keys)


def depth(key: str) -> int:
    """0 for ``"*"``, 1 for a country, 2 for a state, ..."""
    return 0 if key == GLOBAL else key.count("/") + 1


def parent_key(key: str) -> str | None:
    """The key one level up; None for ``"*"``."""
    if key == GLOBAL:
        return None
    cut = key.rfind("/")
    return GLOBAL if cut < 0 else key[:cut]


def level_name(key: str) -> str:
    return LEVEL_NAMES[min(depth(key), len(LEVEL_NAMES) - 1)]
