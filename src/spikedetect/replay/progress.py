"""Moved to :mod:`spikedetect.files.progress` (shared by the live and offline shells); re-exported here."""

from spikedetect.files.progress import *  # noqa: F403
from spikedetect.files.progress import __all__ as __all__
