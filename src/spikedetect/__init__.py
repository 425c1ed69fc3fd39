"""spikedetect: turn streams of user problem reports into outage incidents."""

__version__ = "0.1.0"

__all__ = ["__version__"]
