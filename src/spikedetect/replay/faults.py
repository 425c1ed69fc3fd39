"""Moved to :mod:`spikedetect.files.faults` (shared by the live and offline shells); re-exported here."""

from spikedetect.files.faults import *  # noqa: F403
from spikedetect.files.faults import __all__ as __all__
