"""The framework's floor: a Faust agent that only iterates raw events and counts them.

Environment: FLOOR_APP_ID, FLOOR_TOPIC, FLOOR_OUT (the count is written there), SPIKEDETECT_KAFKA.
"""

import os
from pathlib import Path

import faust

app = faust.App(
    os.environ["FLOOR_APP_ID"],
    broker=f"kafka://{os.environ['SPIKEDETECT_KAFKA']}",
    store="memory://",
    web_enabled=False,
    datadir=os.environ.get("FLOOR_DATADIR", "/tmp/spikedetect-floor"),
    consumer_auto_offset_reset="earliest",
)
topic = app.topic(os.environ["FLOOR_TOPIC"], value_serializer="raw", key_serializer="raw")
out = Path(os.environ["FLOOR_OUT"])
seen = 0


@app.agent(topic)
async def floor(stream):  # type: ignore[no-untyped-def]
    global seen
    async for batch in stream.take(10_000, within=0.5):  # still one Faust event per record
        seen += len(batch)
        out.write_text(str(seen))
