"""Prometheus metrics, one registry per app so tests and several apps never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "minyi_messages",
            "Citizen messages handled, by channel",
            ["channel"],
            registry=self.registry,
        )
        self.turn_seconds = Histogram(
            "minyi_turn_seconds",
            "Time to answer one citizen message",
            ["channel"],
            buckets=TURN_BUCKETS,
            registry=self.registry,
        )
        self.turn_errors = Counter(
            "minyi_turn_errors",
            "Turns that failed and were answered with an apology",
            ["channel"],
            registry=self.registry,
        )
        self.webhook_rejected = Counter(
            "minyi_webhook_rejected",
            "Webhook requests refused before anything was stored",
            ["channel", "reason"],
            registry=self.registry,
        )
        self.channel_events = Counter(
            "minyi_channel_events",
            "Pushes recorded without a reply (WeChat VIEW, LOCATION, template receipts)",
            ["channel", "event"],
            registry=self.registry,
        )
        self.cases = Gauge(
            "minyi_cases",
            "Cases in the database, by kind and status (read at scrape time)",
            ["kind", "status"],
            registry=self.registry,
        )
        self.cases_submitted = Gauge(
            "minyi_cases_submitted",
            "Cases ever submitted (read at scrape time)",
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "minyi_outbox_backlog",
            "Outbox events not yet published to the stream",
            registry=self.registry,
        )
        self.sms_replies_waiting = Gauge(
            "minyi_sms_replies_waiting",
            "SMS replies acknowledged to the provider and not yet worked through",
            registry=self.registry,
        )

        self.job_failures = Counter(
            "minyi_job_failures",
            "Background job runs that failed (they retry with back-off)",
            ["job"],
            registry=self.registry,
        )
        self.notifications_pending = Gauge(
            "minyi_notifications_pending",
            "Citizen and staff notifications not yet sent (read at scrape time)",
            registry=self.registry,
        )

        self.rates = Gauge(
            "minyi_rate",
            "The office's measures over cases filed in the last 30 days (read at scrape time): "
            "satisfaction (满意率), participation (参评率), on_time_acceptance (及时受理率), "
            "on_time_reply (按期答复率), first_time_resolution (一次性化解率), repeat (重复信访率)",
            ["measure"],
            registry=self.registry,
        )

    def reject(self, channel: str, reason: str) -> None:
        self.webhook_rejected.labels(channel, reason).inc()

    def observe(self, channel: str, what: str) -> None:
        self.channel_events.labels(channel, what).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
