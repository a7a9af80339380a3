"""The file store on an S3-compatible object store (MinIO, Alibaba OSS, Tencent COS, AWS S3),
through aiobotocore: the same put/get/delete by key as the local directory."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

from .files import CONTENT_TYPE_RE, StoredFile, check_key

MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3FileStore:
    """One bucket (and an optional key prefix). Objects are written private (no ACL given) and
    encrypted by the server where it offers that (`ServerSideEncryption=AES256`)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None,
        region: str,
        access_key: str,
        secret_key: str,
        prefix: str = "",
        server_side_encryption: bool = True,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.sse = server_side_encryption
        self._options: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region,
            "aws_access_key_id": access_key,
            "aws_secret_access_key": secret_key,
            # Path-style works with MinIO and every S3 look-alike; bounded waits and retries.
            "config": Config(
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        }
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def start(self) -> None:
        self._client = await self._stack.enter_async_context(
            get_session().create_client("s3", **self._options)
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("the S3 file store is not started")
        return self._client

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        if not CONTENT_TYPE_RE.fullmatch(content_type):
            raise ValueError(f"not a content type: {content_type[:80]!r}")
        extra = {"ServerSideEncryption": "AES256"} if self.sse else {}
        await self.client.put_object(
            Bucket=self.bucket,
            Key=self.prefix + check_key(key),
            Body=data,
            ContentType=content_type,
            **extra,
        )

    async def get(self, key: str) -> StoredFile | None:
        try:
            answer = await self.client.get_object(
                Bucket=self.bucket, Key=self.prefix + check_key(key)
            )
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in MISSING:
                return None
            raise
        async with answer["Body"] as body:
            data = await body.read()
        return StoredFile(data, str(answer.get("ContentType") or "application/octet-stream"))

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=self.prefix + check_key(key))
