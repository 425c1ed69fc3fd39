"""Typed errors of the detection core.

Invalid *input* never raises: it becomes a :class:`~spikedetect.core.reports.Reject`
value. These exceptions are for programming and configuration mistakes, and for
state that cannot be trusted.
"""

from __future__ import annotations


class SpikedetectError(Exception):
    """Root of every error spikedetect raises on purpose."""


class ConfigError(SpikedetectError, ValueError):
    """A configuration value is missing, mistyped or out of range."""


class IllegalTransition(SpikedetectError):
    """An incident lifecycle move that the transition table does not allow.

    Raised before anything changes: the incident keeps its previous state.
    """


class StateError(SpikedetectError):
    """Serialised state is malformed, of another version or of another detector."""
