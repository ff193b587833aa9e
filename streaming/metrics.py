"""Prometheus metrics of the long-running services: ``ingest watch``, ``store run`` and ``mirror run``.

Each process serves ``/metrics`` (prometheus_client's exposition) on ``[metrics] <service>_port`` at
``[metrics] address`` when the port is set (0, the default, serves none). Every series carries the label
``service`` (ingest, store, mirror), so one scrape config covers a fleet. The series (docs/deploy.md):

- ``meterlake_reads_total``: reads processed (ingest: published; store: rows written to Cassandra; mirror: reads
  written to the lake);
- ``meterlake_files_total{outcome}``: files processed (ingest: accepted, rejected, duplicate; mirror: written);
- ``meterlake_quarantined_total{reason}``: reads (and rejected files) quarantined, by reason;
- ``meterlake_consumer_lag{topic,partition}``: the broker's end offset minus the consumer's position, read every
  ``[metrics] lag_interval_s``;
- ``meterlake_batch_seconds``: a batch from poll to commit (store, mirror), a file from claim to done (ingest);
- ``meterlake_cassandra_write_retries_total``, ``meterlake_cassandra_write_timeouts_total``: the store's writes;
- ``meterlake_watchdog_rejoins_total``: fresh consumers made by the stall watchdog (:mod:`streaming.offsets`);
- ``meterlake_last_success_timestamp_seconds``: the last commit of a batch (store, mirror) or file (ingest);
- ``meterlake_settlement_due_runs{run}``: ``schedule run``'s settlement runs past their cut-off and not done.
"""
from __future__ import annotations

import logging
import threading
import time

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from meterlake.config import Settings

log = logging.getLogger(__name__)

READS = Counter("meterlake_reads", "Reads processed", ["service"])
FILES = Counter("meterlake_files", "Files processed, by outcome", ["service", "outcome"])
QUARANTINED = Counter("meterlake_quarantined", "Reads and files quarantined, by reason", ["service", "reason"])
LAG = Gauge("meterlake_consumer_lag", "Messages behind the broker's end offset", ["service", "topic", "partition"])
BATCH = Histogram("meterlake_batch_seconds", "A batch from poll to commit (ingest: a file)", ["service"],
                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
WRITE_RETRIES = Counter("meterlake_cassandra_write_retries", "Cassandra writes retried after a failure", ["service"])
WRITE_TIMEOUTS = Counter("meterlake_cassandra_write_timeouts", "Cassandra writes that timed out", ["service"])
REJOINS = Counter("meterlake_watchdog_rejoins", "Fresh consumers made by the stall watchdog", ["service"])
DUE_RUNS = Gauge("meterlake_settlement_due_runs", "Settlement runs past their cut-off and not done (schedule run)",
                 ["service", "run"])
LAST_SUCCESS = Gauge("meterlake_last_success_timestamp_seconds", "Unix time of the last committed batch or file",
                     ["service"])

_served: dict[int, object] = {}
_lock = threading.Lock()


def serve(settings: Settings, service: str) -> int | None:
    """Start this process's endpoint for ``service`` if ``[metrics] <service>_port`` is set (once per port);
    the port, or None."""
    port = getattr(settings.metrics, f"{service}_port")
    if not port:
        return None
    store_only = (WRITE_RETRIES, WRITE_TIMEOUTS) if service == "store" else ()
    for metric in (READS, BATCH, REJOINS, LAST_SUCCESS, *store_only):
        metric.labels(service)  # every series of the service from the first scrape, at 0
    with _lock:
        if port not in _served:
            _served[port] = start_http_server(port, addr=settings.metrics.address)
            log.info("metrics of %s on http://%s:%d/metrics", service, settings.metrics.address, port)
    return port


def succeeded(service: str, started: float | None = None) -> None:
    """A batch (or file) committed: its latency since ``started`` (monotonic), and the time of the success."""
    if started is not None:
        BATCH.labels(service).observe(time.monotonic() - started)
    LAST_SUCCESS.labels(service).set(time.time())


def quarantined(service: str, reasons) -> None:
    """Count quarantined reads: ``reasons`` a mapping reason -> count, or an iterable of reasons."""
    items = reasons.items() if hasattr(reasons, "items") else ((r, 1) for r in reasons)
    for reason, n in items:
        if n:
            QUARANTINED.labels(service, reason or "unknown").inc(n)


class LagProbe:
    """The lag gauges of a consumer's partitions, refreshed at most every ``[metrics] lag_interval_s`` (a request
    for the end offsets each time; off when the service serves no metrics)."""

    def __init__(self, settings: Settings, service: str):
        self.service = service
        self.on = bool(getattr(settings.metrics, f"{service}_port"))
        self.interval = settings.metrics.lag_interval_s
        self.timeout_ms = int(settings.kafka.wait_timeout_s * 1000)
        self.next = 0.0

    def __call__(self, consumer, tps) -> None:
        if not self.on or time.monotonic() < self.next:
            return
        self.next = time.monotonic() + self.interval
        try:
            ends = consumer.end_offsets(list(tps), timeout_ms=self.timeout_ms)
            for tp in tps:
                LAG.labels(self.service, tp.topic, str(tp.partition)).set(
                    max(0, ends[tp] - consumer.position(tp, timeout_ms=self.timeout_ms)))
        except Exception as exc:  # noqa: BLE001 - a gauge left as it was; the next probe tries again
            log.debug("lag probe of %s failed: %s", self.service, exc)
