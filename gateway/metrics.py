"""Prometheus metrics. Queue depth is read from Redis when scraped."""

from __future__ import annotations

import os

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

ACCEPTED = Counter("gateway_visits_accepted_total", "Visits durably accepted", ["org"])
REJECTED = Counter("gateway_visits_rejected_total", "Visits rejected", ["reason"])
DELIVERED = Counter("gateway_deliveries_total", "Delivery outcomes", ["destination", "outcome"])
V2_DUPLICATES = Counter("gateway_v2_duplicates_total",
                        "HL7 v2 messages acknowledged again without processing (same MSH-10)")
RETRIES = Counter("gateway_delivery_retries_total", "Delivery attempts that will be retried",
                  ["destination"])
INGEST_LATENCY = Histogram(
    "gateway_ingest_seconds", "Time from request to durable acceptance",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
INGEST_BATCH = Histogram(
    "gateway_ingest_batch_size", "Submissions run and committed together (one batch)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128))
DELIVERY_LATENCY = Histogram(
    "gateway_delivery_seconds", "Time from acceptance to delivery", ["destination"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600))


class QueueDepthCollector:
    """``gateway_queue_depth{destination}``: entries waiting or in flight, summed over shards."""

    def __init__(self, redis_client, settings):
        self.r = redis_client
        self.settings = settings

    def collect(self):
        from gateway import store

        gauge = GaugeMetricFamily("gateway_queue_depth", "Entries queued per destination",
                                  labels=["destination"])
        dead = GaugeMetricFamily("gateway_dead_letters", "Dead letters per destination",
                                 labels=["destination"])
        try:
            for dest in self.settings.destinations():
                pipe = self.r.pipeline(transaction=False)
                for shard in range(self.settings.delivery_shards):
                    pipe.xlen(store.stream_key(dest, shard))
                pipe.xlen(store.dlq_key(dest))
                lengths = pipe.execute()
                gauge.add_metric([dest], sum(lengths[:-1]))
                dead.add_metric([dest], lengths[-1])
        except Exception:  # noqa: BLE001 - a scrape must not fail because Redis is away
            pass
        yield gauge
        yield dead


def register_queue_depth(redis_client, settings) -> QueueDepthCollector:
    collector = QueueDepthCollector(redis_client, settings)
    REGISTRY.register(collector)
    _EXTRA.add(collector)
    return collector


def unregister(collector: QueueDepthCollector) -> None:
    REGISTRY.unregister(collector)
    _EXTRA.discard(collector)


_EXTRA: set[QueueDepthCollector] = set()


def exposition() -> bytes:
    """The metrics text. With several API processes (PROMETHEUS_MULTIPROC_DIR set) the
    counters and histograms of all of them are merged; queue depth is read from Redis."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    for collector in _EXTRA:
        registry.register(collector)
    return generate_latest(registry)
