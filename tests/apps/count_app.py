"""A minimal Faust app used by the foundation test: count the events of one topic.

Configured by environment: COUNT_APP_ID, COUNT_TOPIC, COUNT_TARGET, COUNT_OUT, SPIKEDETECT_KAFKA.
When it has seen COUNT_TARGET events it writes the count to COUNT_OUT and keeps running,
so the test can also see that no extra event arrives.
"""

import os
from pathlib import Path

import faust

app = faust.App(
    os.environ["COUNT_APP_ID"],
    broker=f"kafka://{os.environ['SPIKEDETECT_KAFKA']}",
    store="memory://",
    web_enabled=False,
    datadir=os.environ.get("COUNT_DATADIR", "/tmp/spikedetect-count-app"),
)
topic = app.topic(os.environ["COUNT_TOPIC"], value_serializer="raw")
out = Path(os.environ["COUNT_OUT"])
seen = 0


@app.agent(topic)
async def count(stream):  # type: ignore[no-untyped-def]
    global seen
    async for batch in stream.take(1000, within=0.5):
        seen += len(batch)
        out.write_text(str(seen))
