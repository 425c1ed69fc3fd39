"""Moved to :mod:`spikedetect.files.sources` (shared by the live and offline shells); re-exported here."""

from spikedetect.files.sources import *  # noqa: F403
from spikedetect.files.sources import __all__ as __all__
