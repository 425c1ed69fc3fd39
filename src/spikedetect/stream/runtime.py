"""What the owner agent, the services and the web views of one worker share."""

from __future__ import annotations

from spikedetect.stream.api import KeyRouter
from spikedetect.stream.follow import IncidentFollower
from spikedetect.stream.ingest import IngestService
from spikedetect.stream.ingest_procs import IngestProcesses
from spikedetect.stream.live import LiveView
from spikedetect.stream.metrics import Metrics
from spikedetect.stream.owner import PartitionOwner
from spikedetect.stream.publisher import Publisher
from spikedetect.stream.settings import Settings


class Runtime:
    """The worker's settings, metrics, live view and owners; its services once Faust starts them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.live = LiveView(settings.detector.window_ms)
        self.owners: dict[int, PartitionOwner] = {}
        self.ingest: IngestService | IngestProcesses | None = None
        self.publisher: Publisher | None = None
        self.follower: IncidentFollower | None = None
        self.router: KeyRouter | None = None  # set when the views are registered

    def open_incidents(self) -> int:
        """Outage incidents (the main stream) open at this worker's owners."""
        return sum(len(o.grouper.open_outages()) for o in list(self.owners.values()))

    def update_gauges(self) -> None:
        """Keys and open incidents change only when an owner closes windows: set them then."""
        self.metrics.keys.set(sum(o.scorer.keyspace.size for o in list(self.owners.values())))
        self.metrics.open_incidents.set(self.open_incidents())
