"""Prometheus metrics read from Redis at scrape time, so they cover every process."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from habitus.jobs import ANALYZE_QUEUE, DELIVER_QUEUE, JobStore
from service.queue import queue_depth
from service.retention import AGE, DISK, deleted_counts

PROMETHEUS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class JobMetrics(Collector):
    def __init__(self, store: JobStore, broker_url: str) -> None:
        self.store = store
        self.broker_url = broker_url

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("habitus_jobs", "Jobs by state", labels=["state"])
        for state, count in self.store.count_by_state().items():
            jobs.add_metric([state.value], count)
        yield jobs

        depth = GaugeMetricFamily(
            "habitus_queue_depth", "Tasks waiting in a queue (not yet taken)", labels=["queue"]
        )
        for queue in (ANALYZE_QUEUE, DELIVER_QUEUE):
            depth.add_metric([queue], queue_depth(self.broker_url, queue))
        yield depth

        yield CounterMetricFamily(
            "habitus_dicom_instances_received",
            "DICOM instances received by the listener",
            value=self.store.instances_received(),
        )

        deleted = CounterMetricFamily(
            "habitus_retention_jobs_deleted",
            "Jobs (inputs, outputs and records) deleted by the retention sweeper",
            labels=["reason"],
        )
        counts = deleted_counts(self.store)
        for reason in (AGE, DISK):
            deleted.add_metric([reason], counts.get(reason, 0))
        yield deleted

        stages = HistogramMetricFamily(
            "habitus_stage_duration_seconds",
            "Duration of each analysis stage",
            labels=["stage"],
        )
        for stage, histogram in self.store.stage_seconds().items():
            buckets = [(f"{bound:g}", float(count)) for bound, count in histogram.buckets]
            buckets.append(("+Inf", float(histogram.count)))
            stages.add_metric([stage], buckets, histogram.sum)
        yield stages


def render_metrics(store: JobStore, broker_url: str) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobMetrics(store, broker_url))
    return generate_latest(registry)
