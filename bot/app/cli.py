"""The `minyi` command: serve, worker, db upgrade, audit verify, backup, restore, citizen
export, archive, backoffice tail, chat, wechat menu, telegram webhook/poll."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import signal
import socket
import sys
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from telegram import WebhookInfo
from telegram.constants import SUPPORTED_WEBHOOK_PORTS
from telegram.error import TelegramError

from bot.app import archive_cli, audit, backup_cli, citizen_cli, key_rotation, logs, staff_cli
from bot.app.heap import freeze_startup_heap, freeze_when_started
from bot.app.loop import new_event_loop
from bot.app.processes import serve_processes
from bot.app.settings import Settings, SettingsError, load_settings
from bot.app.web import KEEPALIVE_SECONDS, create_app
from bot.app.wiring import HTTP_TIMEOUT, open_minyi
from bot.backoffice.stream_consumer import StreamConsumer
from bot.backoffice.workers import Workers
from channels.base import DeliveryFailed
from channels.console import chat
from channels.telegram import (
    PollingRefused,
    TelegramChannel,
    TelegramConfig,
    build_application,
    delete_webhook,
    set_webhook,
)
from channels.wechat import WeChatChannel
from channels.wechat.menu import MenuError, check_menu, load_menu
from storage import migrate, redis_connect, schema_compat
from storage.db import Database

log = logging.getLogger("minyi")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="minyi", description="Minyi (民意): intake for petition offices and 12345 hotlines."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web server, channels, API and workers")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--no-workers", action="store_true", help="leave background jobs to `minyi worker`"
    )
    serve.add_argument(
        "--processes",
        type=int,
        default=1,
        help="server processes sharing the port (SO_REUSEPORT; PostgreSQL only); one per core",
    )
    commands.add_parser("worker", help="run only the background workers")
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply migrations")
    backoffice = commands.add_parser("backoffice", help="the back-office stream")
    backoffice_commands = backoffice.add_subparsers(dest="backoffice_command", required=True)
    tail = backoffice_commands.add_parser(
        "tail", help="read the stream as a consumer group and print each event as one JSON line"
    )
    tail.add_argument("--group", required=True, help="consumer group (one per receiving system)")
    tail.add_argument(
        "--consumer", default=socket.gethostname(), help="this consumer's name in the group"
    )
    tail.add_argument(
        "--claim-idle",
        type=float,
        default=60.0,
        help="seconds before a dead consumer's entries are taken over",
    )
    tail.add_argument(
        "--max-deliveries",
        type=int,
        default=5,
        help="deliveries before an entry goes to <stream>:dead",
    )
    audit = commands.add_parser("audit", help="件件可倒查: check the cases' timelines")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify", help="check each case's hash chain (all cases unless codes are given)"
    )
    verify.add_argument(
        "codes", nargs="*", metavar="CODE", help="case codes, e.g. XF20261122-7K3M9Q"
    )
    chat_parser = commands.add_parser(
        "chat", help="talk to the engine in the terminal, as a citizen"
    )
    chat_parser.add_argument(
        "--user", default=getpass.getuser(), help="who you are (one conversation per user)"
    )
    wechat = commands.add_parser("wechat", help="WeChat official-account maintenance")
    wechat_commands = wechat.add_subparsers(dest="wechat_command", required=True)
    menu = wechat_commands.add_parser(
        "menu", help="push the custom menu (MINYI_WECHAT_MENU, or the bundled one) to WeChat"
    )
    menu.add_argument("--file", help="a menu JSON file in WeChat's format, instead")
    telegram = commands.add_parser("telegram", help="the Telegram bot: its webhook, or polling")
    telegram_commands = telegram.add_subparsers(dest="telegram_command", required=True)
    webhook = telegram_commands.add_parser(
        "webhook", help="tell Telegram where to deliver updates (setWebhook) and show its answer"
    )
    where = webhook.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--url",
        type=_webhook_url,
        help="public HTTPS address of POST /telegram, e.g. https://minyi.example.org/telegram",
    )
    where.add_argument(
        "--delete", action="store_true", help="stop webhook delivery (before `telegram poll`)"
    )
    webhook.add_argument(
        "--drop-pending", action="store_true", help="discard updates Telegram is still holding"
    )
    telegram_commands.add_parser(
        "poll", help="run the bot by long polling, without a public address (Ctrl-C stops)"
    )
    staff_cli.add_commands(commands)
    backup_cli.add_commands(commands)
    key_rotation.add_commands(commands)
    citizen_cli.add_commands(commands)
    archive_cli.add_commands(commands)
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"minyi: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    try:
        if args.command == "serve" and args.processes != 1:
            serve_processes(
                settings, args.host, args.port, args.processes, workers=not args.no_workers
            )
        elif args.command == "serve":
            run_server(settings, args.host, args.port, workers=not args.no_workers)
        elif args.command == "worker":
            asyncio.run(run_workers(settings))
        elif args.command == "db":
            asyncio.run(upgrade(settings))
        elif args.command == "chat":
            asyncio.run(run_chat(settings, args.user))
        elif args.command == "audit":
            return asyncio.run(run_audit(settings, args.codes))
        elif args.command == "wechat":
            return asyncio.run(push_wechat_menu(settings, args.file))
        elif args.command == "backoffice":
            asyncio.run(run_tail(settings, args))
        elif args.command == "telegram" and args.telegram_command == "webhook":
            return asyncio.run(telegram_webhook(settings, args.url, drop_pending=args.drop_pending))
        elif args.command == "telegram":
            return asyncio.run(telegram_poll(settings))
        elif args.command == "staff":
            return staff_cli.run(settings, args)
        elif args.command in ("backup", "restore"):
            return backup_cli.run(settings, args)
        elif args.command == "keys":
            return asyncio.run(key_rotation.run(settings, args))
        elif args.command == "citizen":
            return citizen_cli.run(settings, args)
        elif args.command == "archive":
            return archive_cli.run(settings, args)
    except SettingsError as exc:
        print(f"minyi: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def run_server(settings: Settings, host: str, port: int, *, workers: bool) -> None:
    app = create_app(settings, workers=workers)
    app.on_startup.append(freeze_when_started)
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    log.info(
        "Minyi on http://%s:%d (database %s, redis %s)",
        host,
        port,
        where,
        "on" if settings.redis_url else "off",
    )
    web.run_app(
        app,
        host=host,
        port=port,
        print=None,
        access_log=None,
        keepalive_timeout=KEEPALIVE_SECONDS,
        loop=new_event_loop(),
    )


async def run_workers(settings: Settings) -> None:
    async with open_minyi(settings) as minyi:
        freeze_startup_heap()
        workers = Workers(minyi.jobs, minyi.wakeups, minyi.metrics.job_failures)
        workers.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("minyi worker running %d jobs", len(workers.jobs))
        await stop.wait()
        await workers.stop()


async def upgrade(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        await migrate.upgrade(db)
        print(f"database at revision {await migrate.current_revision(db)}")
        minimum = await schema_compat.recorded_minimum(db)
        if minimum is not None:
            # What the operator needs for the rolling order (docs/deploying.md, "Upgrading").
            print(f"processes of code revision {minimum} or later can work with it")
    finally:
        await db.dispose()


async def run_tail(settings: Settings, args: argparse.Namespace) -> None:
    if not settings.redis_url:
        raise SettingsError(
            "MINYI_REDIS_URL: `backoffice tail` reads the Redis stream; without Redis, poll GET /api/v1/events"
        )
    # The socket must outlast a blocking read (5 s) or every quiet moment looks like a failure.
    redis = redis_connect.connect(settings.redis_url, socket_timeout=30, socket_connect_timeout=5)
    consumer = StreamConsumer(
        redis,
        settings.stream,
        args.group,
        args.consumer,
        claim_idle_ms=int(args.claim_idle * 1000),
        max_deliveries=args.max_deliveries,
    )

    async def print_line(event: dict[str, object]) -> None:
        sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
        sys.stdout.flush()  # printed is handled: only then is the entry acknowledged

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    failures = 0
    try:
        while not stop.is_set():
            try:
                await consumer.ensure_group()
                while not stop.is_set():
                    await consumer.poll(print_line)
            except RedisError as exc:
                # Redis restarting or unreachable: wait and carry on; unacknowledged entries
                # are still pending and come back on the next read.
                failures += 1
                wait = min(2.0**failures, 60.0)
                log.warning("stream unavailable (%s); retrying in %.0f s", exc, wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
            else:
                failures = 0
    finally:
        await redis.aclose()


async def run_audit(settings: Settings, codes: list[str]) -> int:
    async with open_minyi(settings) as minyi:
        return await audit.verify(minyi.units, codes)


async def run_chat(settings: Settings, user: str) -> None:
    async with open_minyi(settings) as minyi:
        await chat(minyi.handle, user)


async def push_wechat_menu(settings: Settings, path: str | None) -> int:
    """`menu/create` with the configured menu; prints WeChat's answer as it came."""
    config = settings.channel("wechat")
    if config is None:
        raise SettingsError(
            "MINYI_WECHAT_TOKEN: set the official account first "
            "(MINYI_WECHAT_TOKEN, MINYI_WECHAT_APP_ID, MINYI_WECHAT_APP_SECRET)"
        )
    if not config.app_secret:
        raise SettingsError("MINYI_WECHAT_APP_SECRET: required to push the menu")
    try:
        menu = load_menu(path or config.menu)
    except MenuError as exc:
        print(f"minyi: {exc}", file=sys.stderr)
        return 2
    # Through the running services, so the access token is the one the servers share.
    async with open_minyi(settings) as minyi:
        events = frozenset(entry.event for entry, _ in minyi.engine.flows.entries)
        try:
            check_menu(menu, path or config.menu or "bundled menu.json", events)
        except MenuError as exc:
            print(f"minyi: {exc}", file=sys.stderr)
            return 2
        channel = minyi.channels["wechat"]
        assert isinstance(channel, WeChatChannel)
        try:
            answer = await channel.push_menu(menu)
        except DeliveryFailed as exc:
            print(f"minyi: WeChat was not reached: {exc.reason}", file=sys.stderr)
            return 1
    print(json.dumps(answer, ensure_ascii=False))
    if answer.get("errcode") not in (0, None):
        print(
            f"minyi: WeChat refused the menu ({answer.get('errcode')}); "
            "fix the menu file and run this again",
            file=sys.stderr,
        )
        return 1
    return 0


# -- telegram ------------------------------------------------------------------------------------


def _webhook_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{value!r}: Telegram delivers only to https:// addresses")
    if (parts.port or 443) not in SUPPORTED_WEBHOOK_PORTS:
        ports = ", ".join(map(str, SUPPORTED_WEBHOOK_PORTS))
        raise argparse.ArgumentTypeError(f"{value!r}: Telegram delivers only to ports {ports}")
    return value


def _require_telegram(settings: Settings) -> TelegramConfig:
    config = settings.channel("telegram")
    if config is None:
        raise SettingsError(
            "MINYI_TELEGRAM_TOKEN: required for `minyi telegram` (the token BotFather gave you)"
        )
    return config


async def telegram_webhook(settings: Settings, url: str | None, *, drop_pending: bool) -> int:
    """setWebhook (or deleteWebhook with no url) and print what Telegram then reports."""
    config = _require_telegram(settings)
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
        bot = build_application(config.token, config.api_base, http).bot
        try:
            if url is None:
                info = await delete_webhook(bot, drop_pending=drop_pending)
            else:
                info = await set_webhook(bot, url, config.secret, drop_pending=drop_pending)
        except TelegramError as exc:
            print(f"minyi: Telegram refused: {exc.message}", file=sys.stderr)
            return 1
    print(_describe(info, deleted=url is None))
    return 0


def _describe(info: WebhookInfo, *, deleted: bool) -> str:
    if deleted:
        head = "Telegram: no webhook is set; updates wait for `minyi telegram poll`."
    else:
        head = f"Telegram: webhook set to {info.url}"
    lines = [head, f"  pending updates: {info.pending_update_count}"]
    if info.allowed_updates:
        lines.append(f"  allowed updates: {', '.join(info.allowed_updates)}")
    if info.last_error_message:
        lines.append(f"  last delivery error: {info.last_error_message}")
    return "\n".join(lines)


async def telegram_poll(settings: Settings) -> int:
    """The same channel and engine as the webhook, fed by getUpdates until Ctrl-C."""
    _require_telegram(settings)
    async with open_minyi(settings) as minyi:
        channel = minyi.channels.get("telegram")
        assert isinstance(channel, TelegramChannel)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print("Polling Telegram for updates; Ctrl-C stops.", flush=True)
        try:
            handled = await channel.poll(stop)
        except PollingRefused as exc:
            print(f"minyi: {exc}", file=sys.stderr)
            return 1
    print(f"Stopped after {handled} updates.", flush=True)
    return 0
