"""Fuzzing every webhook: random and mutated input never gets a 5xx, an unauthenticated request
never stores anything, and the server keeps serving.

Runs a few dozen examples per test in the suite; `benchmarks/fuzz_webhooks.py` runs thousands
(MINYI_FUZZ_EXAMPLES). One app serves every example of a test, as one server serves all comers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bot.app.appkeys import MINYI
from bot.app.settings import Settings
from bot.app.web import create_app
from channels.telegram.webhook import SECRET_HEADER

from .channels.conftest import PROVIDER_SETTINGS
from .channels.sms_fakes import (
    HTTP_SECRET,
    TWILIO_TOKEN,
    FakeProvider,
    http_gateway_app,
    http_push_headers,
)
from .channels.telegram_channel.fake_telegram import SECRET as TELEGRAM_SECRET
from .channels.telegram_channel.fake_telegram import TOKEN as TELEGRAM_TOKEN
from .channels.telegram_channel.fake_telegram import FakeBotApi
from .channels.test_sms_webhooks import twilio_signature
from .channels.wechat_kit import AES_KEY, APP_ID, APP_SECRET, TOKEN, WeChatServer, payload
from .conftest import TRACE_TABLES, sqlite_settings
from .test_lifecycle_law import MOVES
from .web_citizen import WebCitizen, get_case

EXAMPLES = int(os.environ.get("MINYI_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PAYLOADS = Path(__file__).parent / "channels" / "payloads"
WECHAT_XML = sorted((PAYLOADS / "wechat").glob("*.xml"))
PATH_SECRET = "path-secret-0123456789abcdef"
PUBLIC_URL = "https://minyi.example.gov.cn"
API = {"Authorization": "Bearer test-token"}


@pytest.fixture
async def fakes(aiohttp_server: Any) -> dict[str, str]:
    """The providers' APIs, so authenticated turns can answer (nothing reaches the internet)."""
    bot = FakeBotApi()
    telegram: TestServer = await aiohttp_server(bot.app())
    bot.base = str(telegram.make_url("")).rstrip("/")
    gateway: TestServer = await aiohttp_server(http_gateway_app(FakeProvider()))
    return {"telegram": bot.base, "sms": str(gateway.make_url("")).rstrip("/")}


def fuzz_settings(tmp_path: Path, fakes: dict[str, str], **sms: Any) -> Settings:
    return sqlite_settings(
        tmp_path,
        wechat_token=TOKEN,
        wechat_app_id=APP_ID,
        wechat_app_secret=APP_SECRET,
        wechat_aes_key=AES_KEY,
        wechat_api_base=fakes["sms"],  # any local server: fuzzed turns rarely push
        telegram_token=TELEGRAM_TOKEN,
        telegram_secret=TELEGRAM_SECRET,
        telegram_api_base=fakes["telegram"],
        **(
            {
                "sms_provider": "http",
                "sms_api_base": fakes["sms"],
                "sms_webhook_secret": HTTP_SECRET,
            }
            | sms
        ),
    )


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path, fakes: dict[str, str]) -> TestClient:
    return await aiohttp_client(create_app(fuzz_settings(tmp_path, fakes), workers=False))


async def rows(client: TestClient) -> dict[str, int]:
    counts = {}
    async with client.server.app[MINYI].db.session() as session:
        for table in TRACE_TABLES.split(", "):
            counts[table] = int(
                (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar() or 0
            )
    return counts


async def still_serving(client: TestClient) -> None:
    assert (await client.get("/healthz")).status == 200


# -- strategies --------------------------------------------------------------------------------

junk = st.one_of(st.binary(max_size=2048), st.text(max_size=512).map(str.encode))
field_text = st.one_of(
    st.text(max_size=300), st.sampled_from(["", "]]>", "<xml>", "&amp;", "\x00", "😀" * 50])
)


@st.composite
def mutated(draw: st.DrawFn, original: str) -> str:
    """A recorded payload with a few random cuts, insertions and replacements."""
    text_ = original
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text_)))
        cut = draw(st.integers(0, 20))
        text_ = text_[:at] + draw(st.text(max_size=20)) + text_[at + cut :]
    return text_


xml_payloads = st.sampled_from(WECHAT_XML).map(lambda p: p.read_text("utf-8")).flatmap(mutated)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False)
    | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)


@st.composite
def telegram_updates(draw: st.DrawFn) -> Any:
    """Update-shaped JSON with random holes and types, or anything at all."""
    message = {
        "message_id": draw(st.integers(-5, 10**9) | st.text(max_size=5)),
        "date": draw(st.integers(0, 2**31)),
        "chat": draw(
            st.fixed_dictionaries(
                {
                    "id": st.integers(-(10**13), 10**13),
                    "type": st.sampled_from(["private", "group", "supergroup", "channel", "x"]),
                }
            )
        ),
        "from": draw(
            st.fixed_dictionaries(
                {
                    "id": st.integers(1, 10**10),
                    "is_bot": st.booleans(),
                    "first_name": st.text(max_size=10),
                }
            )
        ),
        "text": draw(field_text),
    }
    update = {"update_id": draw(st.integers(-1, 2**31) | st.text(max_size=5)), "message": message}
    return draw(
        st.sampled_from(
            [update, {"update_id": 1, "callback_query": draw(json_values)}, draw(json_values)]
        )
    )


# -- WeChat ------------------------------------------------------------------------------------


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(["signature", "timestamp", "nonce", "encrypt_type", "msg_signature", "x"]),
        st.text(max_size=60),
    ),
    body=junk,
)
async def test_wechat_refuses_what_is_not_signed_and_stores_nothing(
    client: TestClient, query: dict[str, str], body: bytes
) -> None:
    before = await rows(client)
    response = await client.post("/wechat", params=query, data=body)
    assert response.status in (400, 403, 413)
    assert await rows(client) == before
    await still_serving(client)


@FUZZ
@given(xml=xml_payloads, mode=st.sampled_from(["safe", "compatible"]))
async def test_wechat_survives_any_signed_push(client: TestClient, xml: str, mode: str) -> None:
    try:
        query, body = WeChatServer(mode=mode).push(xml)
    except (UnicodeEncodeError, ValueError):
        return  # WeChat could not have sent it either
    response = await client.post("/wechat", params=query, data=body)
    assert response.status < 500, await response.text()
    await still_serving(client)


# Values inside well-formed, signed messages: what a citizen (or WeChat) can really put in each
# field — any Unicode a phone can type, long texts, odd numbers — so the push reaches the engine.
xml_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc"), include_characters="\n\t"),
    max_size=3000,
)
words = st.sampled_from(
    [
        *("菜单", "1", "2", "3", "4", "0", "取消", "返回", "人工", "跳过", "完成", "匿名"),
        *("menu", "13800138000", "张三", "路灯坏了", "TD", "复查"),
        *("XF20261122-7K3M9Q", "XX区幸福路12号", "1️⃣", "Ⅰ", "１", "٣"),  # codes, odd digits
        *("👨‍👩‍👧" * 30, "\u202e反转", "\u200b", "\u3000"),  # joiners, bidi, invisible space
    ]
)
openids = st.sampled_from(["oFuzzCitizen000000000000001", "oFuzzCitizen000000000000002"])
msg_ids = st.integers(1, 2**63 - 1)
odd_numbers = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from(["", "NaN", "1e999", "-0"]))


@st.composite
def wechat_messages(draw: st.DrawFn) -> tuple[str, bool]:
    """A signed push's XML, and whether every field is one WeChat would really send."""
    kind = draw(st.sampled_from(["text", "text", "text", "image", "voice", "location", "event"]))
    fields: dict[str, str | int | float] = {"FromUserName": draw(openids)}
    odd = draw(st.booleans()) and draw(st.booleans())  # a quarter of the pushes bend a rule
    if kind != "event":
        fields["MsgId"] = draw(odd_numbers if odd else msg_ids)
    if kind == "text":
        fields["Content"] = draw(words | xml_text)
    elif kind == "image":
        fields |= {"MediaId": draw(xml_text), "PicUrl": draw(xml_text)}
    elif kind == "voice":
        name = draw(st.sampled_from(["voice", "voice_recognized"]))
        fields |= {"MediaId": draw(xml_text), "Format": draw(st.sampled_from(["amr", "speex"]))}
        if name == "voice_recognized":
            fields["Recognition"] = draw(words | xml_text)
        return payload(name, **fields), not odd
    elif kind == "location":
        coordinate = st.floats(-90, 90) if not odd else odd_numbers
        fields |= {
            "Location_X": draw(coordinate),
            "Location_Y": draw(st.floats(-180, 180) if not odd else odd_numbers),
            "Scale": draw(st.integers(0, 30)),
            "Label": draw(xml_text),
        }
    else:
        name = "event_" + draw(
            st.sampled_from(("subscribe", "subscribe_qrscene", "click", "scan", "view"))
            | st.sampled_from(("location", "unsubscribe"))
        )
        if name in ("event_click", "event_scan", "event_subscribe_qrscene"):
            fields["EventKey"] = draw(
                st.sampled_from(["file", "status", "rate", "qrscene_town-7", "7"]) | xml_text
            )
        return payload(name, **fields), not odd
    return payload(kind, **fields), not odd


@FUZZ
@given(conversation=st.lists(wechat_messages(), min_size=1, max_size=6))
async def test_wechat_turns_with_any_values_are_answered(
    client: TestClient, conversation: list[tuple[str, bool]]
) -> None:
    """Signed, well-formed pushes with fuzzed values: each reaches the engine and is answered
    (200) when its values are ones WeChat sends, and never gets a 5xx when they are not."""
    server = WeChatServer(mode="safe")
    for xml, realistic in conversation:
        query, body = server.push(xml)
        response = await client.post("/wechat", params=query, data=body)
        text = await response.text()
        assert response.status < 500, text
        if realistic:
            assert response.status == 200, (xml, text)
    await still_serving(client)


@FUZZ
@given(xml=xml_payloads)
async def test_wechat_refuses_a_push_signed_with_another_token(
    client: TestClient, xml: str
) -> None:
    before = await rows(client)
    try:
        query, body = WeChatServer(mode="safe", token="not-our-token").push(xml)
    except (UnicodeEncodeError, ValueError):
        return
    response = await client.post("/wechat", params=query, data=body)
    assert response.status == 403
    assert await rows(client) == before


# -- Telegram ----------------------------------------------------------------------------------


@FUZZ
@given(update=telegram_updates(), secret=st.one_of(st.none(), st.text(max_size=40)))
async def test_telegram_refuses_a_wrong_secret_and_stores_nothing(
    client: TestClient, update: Any, secret: str | None
) -> None:
    if secret == TELEGRAM_SECRET:
        return
    before = await rows(client)
    headers = (
        {SECRET_HEADER: secret}
        if secret is not None and secret.isprintable() and secret.isascii()
        else {}
    )
    response = await client.post("/telegram", json=update, headers=headers)
    assert response.status == 403
    assert await rows(client) == before
    await still_serving(client)


@FUZZ
@given(update=telegram_updates())
async def test_telegram_survives_any_update_with_the_secret(
    client: TestClient, update: Any
) -> None:
    response = await client.post("/telegram", json=update, headers={SECRET_HEADER: TELEGRAM_SECRET})
    assert response.status < 500, await response.text()
    await still_serving(client)


# -- SMS ---------------------------------------------------------------------------------------


def http_signed(body: bytes) -> dict[str, str]:
    return http_push_headers(body)


@FUZZ
@given(body=junk, kind=st.sampled_from(["inbound", "status"]))
async def test_sms_refuses_what_is_not_signed_and_stores_nothing(
    client: TestClient, body: bytes, kind: str
) -> None:
    before = await rows(client)
    response = await client.post(
        f"/sms/http/{kind}", data=body, headers={"X-Minyi-Signature": "0" * 64}
    )
    assert response.status == 403
    assert await rows(client) == before
    await still_serving(client)


@FUZZ
@given(
    body=st.one_of(
        json_values.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {
                "from": st.text(max_size=20) | st.sampled_from(["+8613800138000", "13800138000"]),
                "text": field_text,
                "id": st.text(max_size=70),
            }
        ).map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
        junk,
    ),
    kind=st.sampled_from(["inbound", "status"]),
)
async def test_sms_survives_any_signed_push(client: TestClient, body: bytes, kind: str) -> None:
    response = await client.post(f"/sms/http/{kind}", data=body, headers=http_signed(body))
    assert response.status < 500, await response.text()
    await still_serving(client)


@pytest.fixture(params=["aliyun", "tencent", "twilio"])
async def provider_client(
    request: pytest.FixtureRequest, aiohttp_client: Any, tmp_path: Path, fakes: dict[str, str]
) -> tuple[str, TestClient]:
    """The app with Alibaba or Tencent (guarded by a secret path) or Twilio (signed)."""
    provider = str(request.param)
    settings = fuzz_settings(tmp_path, fakes, sms_provider=provider, **PROVIDER_SETTINGS[provider])
    return provider, await aiohttp_client(create_app(settings, workers=False))


def inbound_path(provider: str, secret: str = PATH_SECRET) -> str:
    return f"/sms/{provider}/inbound" + ("" if provider == "twilio" else f"/{secret}")


@FUZZ
@given(body=st.one_of(junk, json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode())))
async def test_the_other_providers_survive_random_pushes(
    provider_client: tuple[str, TestClient], body: bytes
) -> None:
    provider, client = provider_client
    path = inbound_path(provider)
    headers = {"Content-Type": "application/json"}
    if provider == "twilio":
        try:
            signature = twilio_signature(PUBLIC_URL + path, body, TWILIO_TOKEN)
        except UnicodeDecodeError:  # Twilio never sends such a body; it must be refused calmly
            signature = "unsignable"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
    response = await client.post(path, data=body, headers=headers)
    assert response.status < 500, await response.text()
    await still_serving(client)


@FUZZ
@given(body=junk, secret=st.text(alphabet="abcdef0123456789-", min_size=1, max_size=40))
async def test_the_other_providers_refuse_strangers_and_store_nothing(
    provider_client: tuple[str, TestClient], body: bytes, secret: str
) -> None:
    provider, client = provider_client
    if secret == PATH_SECRET:
        return
    before = await rows(client)
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": "bad"}
    response = await client.post(inbound_path(provider, secret), data=body, headers=headers)
    assert response.status in (403, 404)
    assert await rows(client) == before


# -- the back-office API -----------------------------------------------------------------------


@FUZZ
@given(
    body=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(
                    [
                        "accepted",
                        "redirected",
                        "assigned",
                        "returned",
                        "replied",
                        "closed",
                        "extended",
                        "note",
                        "x",
                    ]
                )
            },
            optional={
                "note": field_text,
                "department": field_text,
                "staff": field_text,
                "reason": field_text,
                "days": st.integers(-5, 40) | st.text(max_size=3),
                "stage": field_text,
            },
        ),
    ),
    code=st.sampled_from(
        ["XF20261122-7K3M9Q", "xf20261122-7k3m9q", "nonsense", "XF20261122-7K3M9Q%00"]
    ),
    token=st.booleans(),
)
async def test_the_api_answers_any_body_with_4xx_at_worst(
    client: TestClient, body: Any, code: str, token: bool
) -> None:
    before = await rows(client)
    response = await client.post(
        f"/api/v1/cases/{code}/events", json=body, headers=API if token else {}
    )
    assert response.status < 500, await response.text()
    assert "error" in await response.json() or response.status == 200
    if not token:
        assert response.status == 401 and await rows(client) == before
    await still_serving(client)


# -- the back-office API on real cases ----------------------------------------------------------

event_bodies = st.fixed_dictionaries(
    {"type": st.sampled_from([*MOVES["submitted"], "approved"])},
    optional={
        "note": st.sampled_from(["已处理", "x" * 5000, "x" * 5001, " ", ""]) | xml_text,
        "department": st.sampled_from(["区城管局", "x" * 100, "x" * 101, ""]) | xml_text,
        "staff": st.sampled_from(["王芳", ""]) | st.text(max_size=120),
        "reason": st.sampled_from(["需要会商", "x" * 1001]) | xml_text,
        "days": st.integers(-2, 35) | st.sampled_from([True, "10", 10.0, None]),
        "stage": st.sampled_from(["联系群众", "见面沟通", "办结或报告进展", "x" * 41]) | xml_text,
    },
)
api_moves = st.lists(
    st.tuples(
        st.integers(0, 2),  # which case
        event_bodies | json_values,
        st.sampled_from([None, None, "key-a", "key-b"]),  # Idempotency-Key
        st.integers(0, 9),  # 0: the case is filed afresh first
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture
async def api_client(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    return await aiohttp_client(create_app(sqlite_settings(tmp_path), workers=False))


@pytest.fixture
def filed() -> dict[int, str]:
    """Case codes by slot, kept across a test's examples (as its app is)."""
    return {}


@FUZZ
@given(moves=api_moves)
async def test_the_api_moves_real_cases_only_as_the_law_allows(
    api_client: TestClient, filed: dict[int, str], moves: list[tuple[int, Any, str | None, int]]
) -> None:
    """Fuzzed bodies against cases that exist, so they reach the lifecycle: an accepted event
    moves the case exactly as the law's matrix says, anything else leaves it as it was."""
    for slot, body, key, fresh in moves:
        if slot not in filed or fresh == 0:
            filed[slot] = await WebCitizen(api_client).file_a_matter()
        code = filed[slot]
        before = await get_case(api_client, code)
        headers = {**API, **({"Idempotency-Key": f"{code}:{key}"} if key else {})}
        response = await api_client.post(f"/api/v1/cases/{code}/events", json=body, headers=headers)
        answer = await response.json()
        assert response.status in (200, 409, 422), answer
        after = await get_case(api_client, code)
        if response.status != 200 or response.headers.get("Idempotent-Replayed"):
            assert after["status"] == before["status"], (body, answer)
            assert len(after["events"]) == len(before["events"]), (body, answer)
            if response.status == 409:
                legal = MOVES[before["status"]].get(body["type"])
                assert legal is None or body["type"] == "extended", (before["status"], body)
            continue
        expected = MOVES[before["status"]][body["type"]]
        assert expected is not None and after["status"] == expected, (before["status"], body)
        assert after["events"][-1]["type"] == body["type"]


# -- Issue 13: bodies in pieces, nesting, invalid Unicode, bad headers ---------------------------


async def raw_exchange(client: TestClient, head: bytes, pieces: list[bytes], pause: float) -> int:
    """Send a request as raw bytes (headers as given, body in pieces); the answer's status."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(head)
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        if pause:
            await asyncio.sleep(pause)
    answer = await reader.read()
    writer.close()
    return int(answer.split(b" ", 2)[1])


def request_head(path: str, headers: dict[str, str], length: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: minyi"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {length}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def cut(body: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(body), *(p % (len(body) + 1) for p in points)})
    return [body[a:b] for a, b in itertools.pairwise(edges)]


@FUZZ
@given(
    words=field_text.filter(lambda t: "\x00" not in t),
    points=st.lists(st.integers(0, 10_000), max_size=6),
    pause=st.sampled_from([0.0, 0.01, 0.05]),
)
async def test_signed_pushes_in_any_pieces_are_read_whole(
    client: TestClient, words: str, points: list[int], pause: float
) -> None:
    """However the body is cut into TCP segments, a signed push is read whole: its signature
    holds (a cut-short body would be refused as "signature is wrong")."""
    body = json.dumps(
        {"from": "+8613800138000", "text": words, "id": f"fz-{len(points)}-{pause}"},
        ensure_ascii=False,
    ).encode()
    status = await raw_exchange(
        client,
        request_head("/sms/http/inbound", http_signed(body), len(body)),
        cut(body, points),
        pause,
    )
    assert status == 200


nesting = st.builds(
    lambda depth, kind: (
        (b"[" * depth + b"]" * depth)
        if kind == "list"
        else (b'{"a":' * depth + b"1" + b"}" * depth)
    ),
    st.integers(1, 20_000),
    st.sampled_from(["list", "object"]),
)


@FUZZ
@given(body=nesting, where=st.sampled_from(["webchat", "telegram", "api", "intake", "sms"]))
async def test_nested_json_of_any_depth_is_a_4xx_at_worst(
    client: TestClient, body: bytes, where: str
) -> None:
    path, headers = {
        "webchat": ("/webchat/messages", {"Content-Type": "application/json"}),
        "telegram": ("/telegram", {SECRET_HEADER: TELEGRAM_SECRET}),
        "api": ("/api/v1/cases/XF20261122-7K3M9Q/events", API),
        "intake": ("/api/v1/cases", API),
        "sms": ("/sms/http/inbound", http_signed(body)),
    }[where]
    response = await client.post(path, data=body, headers=headers)
    assert response.status < 500, await response.text()
    await still_serving(client)


# Text as a JSON escape can carry what UTF-8 cannot: lone surrogates, NUL, overrides.
escaped_text = st.lists(
    st.one_of(
        st.sampled_from(["\\ud800", "\\udfff", "\\u0000", "\\u202e", "\\u200b", "\\ufeff"]),
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8).map(
            lambda t: json.dumps(t)[1:-1]
        ),
    ),
    min_size=1,
    max_size=8,
).map("".join)


@FUZZ
@given(text=escaped_text)
async def test_invalid_unicode_gets_a_sentence_not_a_5xx(client: TestClient, text: str) -> None:
    body = ('{"text": "' + text + '"}').encode()
    chat = await client.post(
        "/webchat/messages", data=body, headers={"Content-Type": "application/json"}
    )
    assert chat.status in (200, 422), await chat.text()
    if chat.status == 422:  # not Unicode, or nothing left once the invisible is dropped
        message = (await chat.json())["message"]
        assert "invalid Unicode" in message or "non-empty" in message
    note = ('{"type": "note", "note": "' + text + '"}').encode()
    api = await client.post("/api/v1/cases/XF20261122-7K3M9Q/events", data=note, headers=API)
    assert api.status in (404, 422), await api.text()
    update = (
        '{"update_id": 1, "message": {"message_id": 1, "date": 1, "chat": {"id": 7, '
        '"type": "private"}, "text": "' + text + '"}}'
    ).encode()
    telegram = await client.post("/telegram", data=update, headers={SECRET_HEADER: TELEGRAM_SECRET})
    assert telegram.status < 500, await telegram.text()


header_bytes = st.binary(min_size=0, max_size=80).map(
    lambda b: bytes(c for c in b if c not in b"\r\n")
)


@FUZZ
@given(
    name=st.sampled_from(
        [
            b"Authorization",
            b"Content-Type",
            b"Cookie",
            SECRET_HEADER.encode(),
            b"X-Forwarded-For",
            b"X-Minyi-Timestamp",
            b"Content-Length",
            b"Transfer-Encoding",
            b"Host",
        ]
    ),
    value=header_bytes,
    path=st.sampled_from(
        ["/webchat/messages", "/api/v1/cases", "/telegram", "/sms/http/inbound", "/wechat", "/"]
    ),
)
async def test_bad_headers_get_a_4xx_at_worst(
    client: TestClient, name: bytes, value: bytes, path: str
) -> None:
    body = b'{"text": "hi"}'
    head = (
        b"POST "
        + path.encode()
        + b" HTTP/1.1\r\nHost: minyi\r\n"
        + name
        + b": "
        + value
        + b"\r\n"
        + (b"" if name == b"Content-Length" else b"Content-Length: %d\r\n" % len(body))
        + b"Connection: close\r\n\r\n"
    )
    status = await raw_exchange(client, head, [body], 0.0)
    assert status < 500
    await still_serving(client)
