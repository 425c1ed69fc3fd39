"""The live pipeline: Faust app, ingest service, owner agent, publisher, web views."""

from spikedetect.stream.settings import Settings

__all__ = ["Settings"]
