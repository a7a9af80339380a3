"""One Redis client from `MINYI_REDIS_URL`: a single server, a Redis Cluster or a Sentinel-watched
primary.

- `redis://host:6379/0`, `rediss://…`, `unix:///run/redis.sock`: one server (redis-py's own URLs).
- `redis+cluster://[user:password@]host1:6379,host2:6379`: Redis Cluster; the nodes listed are
  where discovery starts, the client follows the cluster's slots from there. Every key that a
  script or transaction touches together carries one hash tag (storage/keys.py).
- `redis+sentinel://[user:password@]host1:26379,host2:26379/service[/db]`: the primary that the
  Sentinels name for `service`, found again after a failover; the password is the primary's,
  `?sentinel_password=` the Sentinels' own if they have one.
  (`rediss+cluster://`, `rediss+sentinel://`: the same over TLS.)

Each returns an object with the `redis.asyncio.Redis` commands Minyi uses (strings, scripts,
same-slot pipelines, locks, streams, pub/sub), so the services take it without knowing which.
A single server's connections come from `QueueingPool`; Cluster and Sentinel use redis-py's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from redis._parsers.base import BaseParser
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:  # the `speed` extra
    import hiredis
except ImportError:  # pragma: no cover - hiredis is optional
    hiredis = None  # type: ignore[assignment]

# hiredis's "no whole reply yet" (a RESP3 boolean can be False); its push type (3.2 on).
_MORE = object()
_PUSH = getattr(hiredis, "PushNotification", None)

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SCHEMES = ("redis", "rediss", "unix", *CLUSTER_SCHEMES, *SENTINEL_SCHEMES)


@dataclass(frozen=True)
class Nodes:
    """What a cluster or Sentinel URL says: where to start, as whom, and (Sentinel) the service."""

    scheme: str
    hosts: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    service: str = ""
    db: int = 0
    query: dict[str, str] = field(default_factory=dict)

    @property
    def tls(self) -> bool:
        return self.scheme.startswith("rediss")


def parse(url: str) -> Nodes | None:
    """A cluster or Sentinel URL taken apart (None for a plain redis-py URL); ValueError with a
    sentence saying what is wrong."""
    scheme = url.split("://", 1)[0]
    if scheme not in SCHEMES:
        raise ValueError(f"use one of {', '.join(s + '://' for s in SCHEMES)}")
    if scheme not in CLUSTER_SCHEMES + SENTINEL_SCHEMES:
        if not urlsplit(url).netloc and scheme != "unix":
            raise ValueError("the URL names no host")
        return None
    parts = urlsplit(url)
    # urlsplit reads `a:1,b:2` as one host; the host list is taken apart by hand.
    credentials, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    hosts = []
    default_port = 26379 if scheme in SENTINEL_SCHEMES else 6379
    for item in filter(None, hostlist.split(",")):
        host, _, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "")
        try:
            hosts.append((host or item, int(port) if port else default_port))
        except ValueError:
            raise ValueError(f"{item!r} is not host:port") from None
    if not hosts:
        raise ValueError("the URL names no host")
    path = [unquote(p) for p in parts.path.split("/") if p]
    service, db = "", 0
    if scheme in SENTINEL_SCHEMES:
        if not path:
            raise ValueError("name the Sentinel service after the hosts: …:26379/mymaster")
        service = path[0]
        if len(path) > 1:
            if not path[1].isdigit():
                raise ValueError(f"{path[1]!r} is not a database number")
            db = int(path[1])
    elif path:
        raise ValueError("a Redis Cluster has only database 0: leave the path out")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return Nodes(
        scheme,
        tuple(hosts),
        unquote(username) or None,
        unquote(password) or None,
        service,
        db,
        query,
    )


# Connections one process may hold to a single server. A burst of turns beyond it queues for a
# connection (up to 5 s) instead of failing with "Too many connections" as redis-py's default
# pool does past 100, which a citizen would meet as "busy, send again".
CONNECTIONS = 64
WAIT = 5.0
# What one read of the shared connection takes at most (a turn's reply is a few hundred bytes).
READ_SIZE = 65536


class QueueingPool(ConnectionPool):
    """redis-py's pool, bounded by a semaphore: past `max_connections` a caller waits up to
    `timeout` for a connection instead of being refused.

    redis-py's `BlockingConnectionPool` does the same behind an `asyncio.Condition`, a timeout
    context and a second lock on every command, 15 µs of CPU a call more than the plain pool
    (benchmarks/redis_calls.py); here the bound costs nothing while a connection is free.

    Taking and giving back a connection is done here without the plain pool's lock (nothing
    between its steps awaits, so it guards nothing in one event loop), its observability
    counters and its released-connection event (they serve OpenTelemetry and streaming
    credential providers, which Minyi does not configure): on a turn's two scripts they were
    a tenth of the call."""

    def __init__(self, *args: Any, timeout: float = WAIT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = timeout
        self._free = asyncio.Semaphore(self.max_connections)
        # The connections handed out, each holding a place (a connection given back twice
        # frees one place, once).
        self._handed: set[AbstractConnection] = set()
        self._shared: SharedConnection | None = None  # for `exchange`, made on first use

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        if self._free.locked():
            try:
                async with asyncio.timeout(self.timeout):
                    await self._free.acquire()
            except TimeoutError:
                raise RedisConnectionError("No connection available.") from None
        else:
            await self._free.acquire()  # returns at once
        try:
            connection = self.get_available_connection()  # an idle one, or a new one
        except BaseException:
            self._free.release()
            raise
        self._handed.add(connection)
        try:
            # As redis-py's `ensure_connection`, which is only called when it has work: a
            # connection not connected, or one with data left unread (the server closed it,
            # or a reply was abandoned), is connected afresh.
            if not connection.is_connected or await connection.can_read():
                await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: AbstractConnection) -> None:
        self._in_use_connections.discard(connection)
        # Marked by a server's maintenance notice (redis-py 6.4 on; earlier ones have no mark).
        should_reconnect = getattr(connection, "should_reconnect", None)
        if should_reconnect is not None and should_reconnect():
            await connection.disconnect()
        if connection not in self._available_connections:
            self._available_connections.append(connection)
        if connection in self._handed:
            self._handed.discard(connection)
            self._free.release()

    async def exchange(self, command: bytes) -> Any:
        """One packed command's round trip, its reply as redis-py's parser gives it (no response
        callback: for commands that have none, such as EVALSHA). The commands of every caller
        share one connection (`SharedConnection`); when that connection fails, the commands in
        flight on it raise redis-py's ConnectionError or TimeoutError and it is connected afresh
        for the next."""
        if self._shared is None:
            self._shared = SharedConnection(self.make_connection())
        return await self._shared.exchange(command)

    async def disconnect(self, inuse_connections: bool = True) -> None:
        try:
            await super().disconnect(inuse_connections)
        finally:
            if self._shared is not None and inuse_connections:
                shared, self._shared = self._shared, None
                await shared.close()


class SharedConnection:
    """One connection that carries the commands of many callers at once, pipelined: those given
    in one pass of the event loop go out in one write, and the replies, which Redis sends in the
    order of the commands, are handed back in that order by one reader.

    Under load a turn's two scripts were each a socket write of their own on a connection of
    their own — a system call, and a wake-up of Redis, each: the largest single cost in a
    profile of many turns at once — and each reply a read of its own. Sharing one connection,
    the turns that reach their script together share those. Only commands that answer at once
    belong here (scripts, not blocking reads): one slow reply holds back those behind it. The
    connection is the pool's one beyond `max_connections`, made with the pool's options."""

    def __init__(self, connection: AbstractConnection) -> None:
        self.connection = connection
        self._batch: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._waiting: deque[asyncio.Future[Any]] = deque()  # sent, in the order sent
        self._reader: asyncio.Task[None] | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._closed = False

    async def exchange(self, command: bytes) -> Any:
        if self._closed:
            raise RedisConnectionError("the connection pool is closed")
        future = asyncio.get_running_loop().create_future()
        self._batch.append((command, future))
        if len(self._batch) == 1:
            asyncio.get_running_loop().call_soon(self._send)
        return await future

    def _send(self) -> None:
        """Write the batch (on the loop: no caller's cancellation can leave it unsent)."""
        if self._connecting is not None or not self._batch:
            return  # the connecting task sends what gathered meanwhile
        writer = getattr(self.connection, "_writer", None)
        reader = getattr(self.connection, "_reader", None)
        if (
            writer is None
            or writer.transport.is_closing()
            # Idle, and closed by the server (a restart, its idle `timeout`): connect afresh
            # rather than lose the batch to it. (A loss in flight is the callers'.)
            or (not self._waiting and (reader is None or reader.at_eof()))
        ):
            self._connecting = asyncio.ensure_future(self._connect_and_send())
            return
        batch, self._batch = self._batch, []
        try:
            writer.write(b"".join([command for command, _ in batch]))
        except Exception as exc:  # a transport that cannot take it: nothing was sent
            _fail((future for _, future in batch), exc)
            return
        self._waiting.extend(future for _, future in batch)
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read())

    async def _connect_and_send(self) -> None:
        try:
            await self.connection.disconnect(nowait=True)
            await self.connection.connect()
        except BaseException as exc:
            batch, self._batch = self._batch, []
            _fail((future for _, future in batch), exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._connecting = None
        if self._batch:
            self._send()

    async def _read(self) -> None:
        stream = getattr(self.connection, "_reader", None)
        try:
            if hiredis is not None and stream is not None:
                await self._read_parsed(stream)
            else:
                await self._read_each()
        except BaseException as exc:
            # Lost, timed out or cancelled: every command in flight may or may not have run, as
            # when a caller's own connection drops. The connection is closed (redis-py's
            # `read_response` has done so already), so that the next batch connects afresh
            # rather than take a late reply for its own. Nothing here awaits, so no batch is
            # sent between the failure and this.
            writer = getattr(self.connection, "_writer", None)
            if writer is not None:
                writer.transport.abort()
            waiting, self._waiting = self._waiting, deque()
            _fail(waiting, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._reader = None

    async def _read_parsed(self, stream: asyncio.StreamReader) -> None:
        """The replies as hiredis reads them from the socket, as many as each read brought
        handed back in one pass. redis-py's `read_response` takes a timeout context, a read and
        its parser's layers for each reply, a fifth of a turn's Redis CPU. The reader is made
        as the connection's own parser makes its own (RESP2 or RESP3, its error classes,
        decoding only if it decodes); a push (RESP3's, unasked for here) is passed over as it
        passes over one."""
        encoder = self.connection.encoder
        decoding = (
            {"encoding": encoder.encoding, "errors": encoder.encoding_errors}
            if encoder.decode_responses
            else {}
        )
        parser = hiredis.Reader(
            protocolError=InvalidResponse,
            replyError=BaseParser.parse_error,
            notEnoughData=_MORE,
            **decoding,
        )
        timeout = self.connection.socket_timeout
        while self._waiting:
            try:
                async with asyncio.timeout(timeout):
                    data = await stream.read(READ_SIZE)
            except TimeoutError:
                raise RedisTimeoutError("Timeout reading from the shared connection") from None
            if not data:
                raise RedisConnectionError("Connection closed by server.")
            parser.feed(data)
            while (reply := parser.gets()) is not _MORE:
                if isinstance(reply, RedisConnectionError):  # LOADING, NOAUTH: the connection's
                    raise reply
                if _PUSH is not None and isinstance(reply, _PUSH):
                    continue
                if not self._waiting:
                    raise InvalidResponse("a reply to no command")
                future = self._waiting.popleft()
                if future.done():  # its caller was cancelled meanwhile
                    continue
                if isinstance(reply, ResponseError):  # the command's own (NOSCRIPT, a script's)
                    future.set_exception(reply)
                else:
                    future.set_result(reply)

    async def _read_each(self) -> None:
        """Without hiredis: one reply at a time through redis-py's parser."""
        while self._waiting:
            try:
                reply = await self.connection.read_response()
            except ResponseError as error:  # the command's own (NOSCRIPT, a script error)
                future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(error)
                continue
            future = self._waiting.popleft()
            if not future.done():  # its caller may have been cancelled meanwhile
                future.set_result(reply)

    async def close(self) -> None:
        self._closed = True
        for task in (self._reader, self._connecting):
            if task is not None:
                task.cancel()
        batch, self._batch = self._batch, []
        _fail((future for _, future in batch), RedisConnectionError("closed"))
        await self.connection.disconnect()


def _fail(futures: Iterable[asyncio.Future[Any]], exc: BaseException) -> None:
    if not isinstance(exc, RedisConnectionError | RedisTimeoutError):
        exc = RedisConnectionError(f"the shared connection failed: {exc!r}")
    for future in futures:
        if not future.done():
            future.set_exception(exc)


def connect(url: str, **options: Any) -> Redis:
    """The client for `url`; `options` are redis-py's (timeouts, health checks)."""
    nodes = parse(url)
    if nodes is None:
        pool = QueueingPool.from_url(url, max_connections=CONNECTIONS, timeout=WAIT, **options)
        return Redis.from_pool(pool)  # owns the pool: closing the client closes it
    if nodes.scheme in CLUSTER_SCHEMES:
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in nodes.hosts],
            ssl=nodes.tls,
            username=nodes.username,
            password=nodes.password,
            **options,
        )
        # Not a subclass, but the same commands for everything Minyi sends (see above).
        return cast(Redis, cluster)
    options.pop("health_check_interval", None)  # Sentinel pools check on their own
    sentinel = Sentinel(
        list(nodes.hosts),
        sentinel_kwargs={
            "password": nodes.query.get("sentinel_password"),
            "socket_connect_timeout": options.get("socket_connect_timeout"),
            "socket_timeout": options.get("socket_timeout"),
        },
        ssl=nodes.tls,
        **options,
    )
    primary = sentinel.master_for(
        nodes.service,
        redis_class=_SentinelPrimary,
        db=nodes.db,
        username=nodes.username,
        password=nodes.password,
    )
    primary.sentinel_clients = list(sentinel.sentinels)
    return primary


class _SentinelPrimary(Redis):
    """The primary's client, which also closes its connections to the Sentinels when closed
    (redis-py leaves those open)."""

    sentinel_clients: list[Redis]

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for client in getattr(self, "sentinel_clients", ()):
            await client.aclose()
