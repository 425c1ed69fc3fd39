"""The one place that reaches into River's private state.

River's ``stats.EWMean`` and ``stats.EWVar`` keep their state in a compiled inner object
(``_ewmean`` / ``_ewvar``) that pickles to a fixed-size byte string. Exporting a key's EWMA
baseline as checked JSON (never pickle) needs those bytes, so this module reads and writes
them, and nothing else in spikedetect touches River internals. The River versions this was
tested with are declared in pyproject.toml, ``[tool.spikedetect.tested-versions]``;
``tests/core/test_river_compat.py`` fails when the installed one is outside that range.

>>> from river import stats
>>> m = stats.EWMean(fading_factor=0.5)
>>> m.update(4.0)
>>> n = stats.EWMean(fading_factor=0.5)
>>> set_state(n, get_state(m))
>>> n.get()
4.0
"""

from __future__ import annotations

from typing import Any

_INNER = {"EWMean": "_ewmean", "EWVar": "_ewvar"}


def _inner(stat: Any) -> Any:
    try:
        return getattr(stat, _INNER[type(stat).__name__])
    except (KeyError, AttributeError) as exc:
        raise TypeError(f"no known private state in {type(stat).__name__} of this River version") from exc


def get_state(stat: Any) -> bytes:
    """The raw state of a River ``EWMean`` or ``EWVar``."""
    return bytes(_inner(stat).__getstate__())


def state_size(stat: Any) -> int:
    """How many bytes :func:`get_state` gives for this kind of statistic."""
    return len(get_state(stat))


def set_state(stat: Any, blob: bytes) -> None:
    """Overwrite a River ``EWMean`` or ``EWVar`` with raw state from :func:`get_state`."""
    _inner(stat).__setstate__(blob)
