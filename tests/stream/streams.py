"""Small deterministic report streams for the live tests (fast to produce and replay)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import orjson

from spikedetect.core.timefmt import format_ts_ms

T0_MS = 1_795_651_200_000  # 2026-11-26T00:00:00Z
WINDOW_MS = 60_000
REGIONS = {"US/CA/Los Angeles": 5.0, "US/NY/New York": 4.0, "IN/MH/Mumbai": 3.0,
           "US/IL/Chicago": 2.0, "GB/ENG/London": 2.0}


def outage_stream(path: Path, *, seed: int = 1, days: float = 2.0, spike_start_min: int = 2160,
                  spike_minutes: int = 40, factor: float = 40.0, services: tuple[str, ...] = ("instagram",),
                  web_gap_min: tuple[int, int] | None = None) -> int:
    """A daily-cycle stream with one outage on the US cities; returns the number of lines.
    ``web_gap_min``: minutes [start, end) in which the ``web`` producer sends nothing.

    Timestamps are jittered within their minute and lines are written minute by minute,
    so events are slightly out of order (well inside the allowed lateness).
    """
    rng = random.Random(seed)
    n = 0
    with path.open("wb") as out:
        for minute in range(int(days * 1440)):
            t = T0_MS + minute * WINDOW_MS
            hour = (t / 3_600_000) % 24
            lines = []
            for service in services:
                for region, base in REGIONS.items():
                    lam = base * (1 + 0.6 * math.sin((hour - 14) / 24 * 2 * math.pi))
                    if spike_start_min <= minute < spike_start_min + spike_minutes and region.startswith("US"):
                        lam *= factor
                    for _ in range(_poisson(rng, lam)):
                        n += 1
                        line = orjson.dumps({
                            "ts": format_ts_ms(t + rng.randint(0, WINDOW_MS - 1)), "service": service,
                            "region": region,
                            "category": rng.choice(["feed", "login", "direct_messages", "server_connection"]),
                            "source": rng.choice(["app", "app", "app", "web"]), "event_id": f"{seed}-{n}"})
                        if web_gap_min and web_gap_min[0] <= minute < web_gap_min[1] and b'"web"' in line:
                            n -= 1
                            continue
                        lines.append(line)
            rng.shuffle(lines)
            out.write(b"".join(line + b"\n" for line in lines))
    return n


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p < limit:
            return k
        k += 1
