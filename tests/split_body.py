"""Send an HTTP request over a raw socket with its body in pieces, as a real network may."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from aiohttp.test_utils import TestClient


async def post_in_pieces(
    client: TestClient,
    path: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    pieces: int = 2,
    pause: float = 0.2,
) -> tuple[int, dict[str, str], bytes]:
    """POST `body` to the test server in `pieces` parts `pause` seconds apart.

    Returns the status, the headers (lower-case names) and the body of the answer."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = [f"POST {path} HTTP/1.1", f"Host: {server.host}:{server.port}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    writer.write("\r\n".join(head).encode("latin-1"))
    step = max(1, -(-len(body) // pieces))
    for start in range(0, len(body), step):
        writer.write(body[start : start + step])
        await writer.drain()
        await asyncio.sleep(pause)
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = raw.partition(b"\r\n")
    header_block, _, answer = rest.partition(b"\r\n\r\n")
    answer_headers: dict[str, str] = {}
    for line in header_block.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        answer_headers[name.strip().lower()] = value.strip()
    if answer_headers.get("transfer-encoding") == "chunked":
        answer = _unchunk(answer)
    return int(status_line.split()[1]), answer_headers, answer


def answer_json(answer: bytes) -> Any:
    return json.loads(answer)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out
