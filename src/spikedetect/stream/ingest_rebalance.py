"""Stage 1 and the ingest group's rebalances: giving input partitions up and taking them on.

aiokafka calls the rebalance listener from its coordinator task, so a revoke or an assignment
can come while the ingest loop (``IngestService._consume``) is between two awaits in the middle
of a batch - sending a closed window's partials, say. Two rules keep the outputs exact:

* **A rebalance waits for the batch in hand** (``IngestService.batch_lock``). A revoke commits
  only once every window the batch closed has been sent, and the loop never goes on to feed the
  rest of a batch into the states an assignment created meanwhile. Those records were fetched
  before the rebalance; the new state re-reads from its checkpoint, and fed first they moved its
  watermark past windows it had not rebuilt yet: those windows' partials went out short, and the
  records, read again, were dead-lettered as late. (Seen as a different score, long after, when a
  second ingest process joined the group while reports flowed.)
* **A state starts where the consumer reads.** aiokafka may hand out records of a new assignment
  before :func:`assign` has created their state (the loop drops them: no state), so each assigned
  partition is sought to where its state starts: the committed offset, else the beginning.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import ConsumerRebalanceListener, TopicPartition

from spikedetect.core.counter import WindowCounter
from spikedetect.stream.source_state import SourceState

if TYPE_CHECKING:
    from spikedetect.stream.ingest import IngestService

log = logging.getLogger("spikedetect.ingest")


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """The ingest consumer's rebalance listener: :func:`revoke` and :func:`assign`."""

    def __init__(self, ingest: IngestService) -> None:
        self.ingest = ingest

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.ingest.on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.ingest.on_assigned(list(assigned))


async def revoke(svc: IngestService, revoked: list[TopicPartition]) -> None:
    """Once the batch in hand is done: checkpoint the revoked partitions, then forget them."""
    async with svc.batch_lock:
        try:
            await svc.commit(force=True, only={tp.partition for tp in revoked})
        except Exception:  # noqa: BLE001 - the next owner re-reads from the last checkpoint
            log.warning("commit on revoke failed; the next owner replays a little more")
        for tp in revoked:
            svc.sources.pop(tp.partition, None)
            with contextlib.suppress(KeyError):  # its lag is now another worker's to report
                svc.metrics.lag.remove(str(tp.partition))


async def assign(svc: IngestService, assigned: list[TopicPartition]) -> None:
    """A state per assigned partition, restored from its checkpoint, and the consumer sought to
    where that state starts (see the module docstring)."""
    assert svc.admin is not None and svc.consumer is not None
    s = svc.settings
    committed = await svc.admin.list_consumer_group_offsets(f"{s.app_id}-ingest", partitions=assigned)
    new = [tp for tp in assigned if (meta := committed.get(tp)) is None or meta.offset < 0]
    starts: dict[TopicPartition, int] = await svc.consumer.beginning_offsets(new) if new else {}
    async with svc.batch_lock:
        for tp in assigned:
            st = SourceState(tp.partition, WindowCounter(s.detector))
            meta = committed.get(tp)
            if meta is not None and meta.offset >= 0:
                starts[tp] = meta.offset
                try:
                    if meta.metadata:
                        st.restore(meta.offset, meta.metadata)
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    log.warning("ignoring unreadable checkpoint of partition %s", tp.partition)
            svc.sources[tp.partition] = st
            svc.consumer.seek(tp, starts[tp])
    log.info("ingest assigned partitions %s", sorted(tp.partition for tp in assigned))
