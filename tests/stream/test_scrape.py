"""stream/scrape.py: what the demo, the tests and the benchmarks read from a worker's /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from spikedetect.stream.scrape import sample_sum, scrape
from tests.stream.harness import free_port


def test_scrape_sums_a_counter_over_its_labels_and_reads_unlabelled_gauges() -> None:
    registry = CollectorRegistry()
    consumed = Counter("spikedetect_events_consumed", "reports read", ["partition"], registry=registry)
    consumed.labels("0").inc(3)
    consumed.labels("1").inc(4.5)
    Gauge("spikedetect_keys", "keys", registry=registry).set(1e6)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        assert scrape("spikedetect_events_consumed_total", port) == 7.5
        assert scrape("spikedetect_keys", port) == 1e6
        # a name the worker does not report (yet) is None, not 0: callers decide
        assert scrape("spikedetect_windows_closed_total", port) is None
    finally:
        server.shutdown()
        thread.join()
    # the worker's web server is not up (any more)
    assert scrape("spikedetect_keys", port) is None


def test_sample_sum_matches_sample_names_exactly() -> None:
    text = ("spikedetect_late_total 2\n"
            "spikedetect_late_partial_reports_total 5\n"
            'spikedetect_late_total{reason="x"} 1\n')
    assert sample_sum(text, "spikedetect_late_total") == 3.0
    assert sample_sum(text, "spikedetect_late_partial_reports_total") == 5.0
