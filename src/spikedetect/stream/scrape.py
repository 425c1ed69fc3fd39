"""Reading a running worker's Prometheus ``/metrics``: the demo, the tests and the benchmarks
wait on its counters (reports consumed, windows closed) instead of sleeping.

Parsing uses ``prometheus_client``'s own text parser, so label values, exponents and
``NaN`` are read the way Prometheus reads them.
"""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def sample_sum(text: str, name: str) -> float | None:
    """The sum over all label sets of the samples called ``name`` in an exposition text;
    None when there is none.

    >>> sample_sum('# TYPE x_total counter\\nx_total{p="0"} 2.0\\nx_total{p="1"} 3.0\\n', "x_total")
    5.0
    >>> sample_sum("", "x_total") is None
    True
    """
    values = [sample.value for family in text_string_to_metric_families(text)
              for sample in family.samples if sample.name == name]
    return sum(values) if values else None


def scrape(name: str, web_port: int, host: str = "127.0.0.1", timeout_s: float = 2.0) -> float | None:
    """``name`` summed over its labels on the worker serving ``host:web_port``; None while its
    web server is not up or does not report ``name`` yet."""
    try:
        with urllib.request.urlopen(f"http://{host}:{web_port}/metrics", timeout=timeout_s) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    return sample_sum(text, name)
