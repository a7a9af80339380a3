"""A local S3-compatible server (moto's server mode) for the file-store tests, over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from aiobotocore.session import get_session

KEYS = {"access_key": "minyi-test-access", "secret_key": "minyi-test-secret-key-0123"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    with socket.socket() as probe:  # a free port for the server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


async def make_bucket(endpoint: str, name: str) -> None:
    async with get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEYS["access_key"],
        aws_secret_access_key=KEYS["secret_key"],
    ) as client:
        await client.create_bucket(Bucket=name)


async def bucket_keys(endpoint: str, name: str) -> list[str]:
    """Every object's key in the bucket."""
    async with get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEYS["access_key"],
        aws_secret_access_key=KEYS["secret_key"],
    ) as client:
        answer = await client.list_objects_v2(Bucket=name)
        return sorted(item["Key"] for item in answer.get("Contents", []))
