"""Liveness, readiness (database and Redis really answer) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from bot.app.appkeys import MINYI
from storage import keycheck, schema_compat
from storage.measures import measured
from storage.models import Case, Notification, OutboxEntry, SmsReplyWaiting, utcnow

log = logging.getLogger(__name__)
CHECK_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[MINYI]
    checks: dict[str, str] = {}
    schema: dict[str, str | None] = {}
    try:
        await asyncio.wait_for(runtime.db.ping(), CHECK_TIMEOUT)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"failed: {type(exc).__name__}"
    else:
        # Not ready while the database holds data under another key (a restore from a backup of
        # another installation, a key changed under a running process).
        try:
            same = await asyncio.wait_for(
                keycheck.matches(runtime.db, runtime.cipher), CHECK_TIMEOUT
            )
            checks["pii_key"] = "ok" if same else "failed: not the database's key"
        except Exception as exc:
            checks["pii_key"] = f"failed: {type(exc).__name__}"
        # Not ready once the database was migrated past what this code can work with (a
        # contract step applied under it): the balancer drains it, and a restart says why.
        try:
            state = await asyncio.wait_for(schema_compat.inspect_schema(runtime.db), CHECK_TIMEOUT)
            checks["schema"] = "ok" if state.works else f"failed: {state.problem}"
            schema = state.to_json()
        except Exception as exc:
            checks["schema"] = f"failed: {type(exc).__name__}"
    if runtime.redis is not None:
        try:
            await asyncio.wait_for(runtime.redis.ping(), CHECK_TIMEOUT)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"failed: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    body: dict[str, object] = {"ready": ready, "checks": checks, "schema": schema}
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[MINYI]
    m = runtime.metrics
    try:
        # Read at scrape time from the database, so the figures are right across all processes.
        async with runtime.db.session() as session:
            rows = (
                await session.execute(
                    select(Case.kind, Case.status, func.count()).group_by(Case.kind, Case.status)
                )
            ).all()
            pending = await session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.status == "pending")
            )
            backlog = await session.scalar(
                select(func.count())
                .select_from(OutboxEntry)
                .where(OutboxEntry.published_at.is_(None))
            )
            waiting = await session.scalar(select(func.count()).select_from(SmsReplyWaiting))
        m.cases.clear()
        for kind, status, count in rows:
            m.cases.labels(kind, status).set(count)
        m.cases_submitted.set(sum(count for _, _, count in rows))
        m.outbox_backlog.set(backlog or 0)
        m.sms_replies_waiting.set(waiting or 0)
        m.notifications_pending.set(pending or 0)
        now = utcnow()
        async with runtime.db.session() as session:
            recent = await measured(
                session,
                now - timedelta(days=30),
                now,
                now=now,
                repeat_days=runtime.office.repeats.window_days,
            )
        for measure, value in recent.total.rates().items():
            m.rates.labels(measure.removesuffix("_rate")).set(
                value if value is not None else float("nan")
            )
    except Exception:
        log.warning("metrics: database figures unavailable", exc_info=True)
    return web.Response(body=m.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
