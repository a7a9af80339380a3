"""Every recorded push as an Inbound; splitting long replies; the menu file; template fields."""

from __future__ import annotations

import json
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wechatpy import parse_message
from wechatpy.replies import TextReply

from channels.base import DeliveryReport, RecipientUnreachable
from channels.wechat.envelope import Envelope, Malformed, Refused
from channels.wechat.inbound import Observation, _message, read
from channels.wechat.menu import MenuError, load_menu
from channels.wechat.render import _NOT_XML, MAX_BYTES, as_text, passive_reply, split
from channels.wechat.template import client_msg_id, fit, template_data
from channels.wecom.envelope import Envelope as WeComEnvelope
from conversation.flows.registry import flows_for
from conversation.messages import Choice, Location, Media, Reply
from conversation.office import load_office

from .wechat_kit import OPENID, PAYLOADS, TOKEN, payload

PLAIN = Envelope(TOKEN, "wx", None)


def inbound_of(name: str):  # type: ignore[no-untyped-def]
    return read(PLAIN.open({}, payload(name).encode()))


def test_every_recorded_payload_is_read() -> None:
    names = sorted(p.stem for p in PAYLOADS.glob("*.xml"))
    assert len(names) == 16
    for name in names:
        assert inbound_of(name) is not None, name


# Documents WeChat does not send but an attacker or a future version might: attributes, mixed
# content, a repeated field, nested lists, an empty root's field.
ODD = [
    "<xml><MsgType>text</MsgType><Content a='1'>x</Content><FromUserName>o1</FromUserName></xml>",
    "<xml>loose<MsgType>text</MsgType><Content>x</Content></xml>",
    "<xml><MsgType>text</MsgType><Content>a</Content>tail<Content>b</Content></xml>",
    "<xml><MsgType>event</MsgType><Event>pic_sysphoto</Event><SendPicsInfo><Count>2</Count>"
    "<PicList><item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item>"
    "</PicList></SendPicsInfo></xml>",
    "<xml><MsgType>event</MsgType><Event>subscribe</Event><EventKey>scanbarcode|x</EventKey></xml>",
    "<xml><MsgType>device_text</MsgType><Content>  </Content><MsgId/></xml>",
    "<xml><MsgType>device_event</MsgType><Event>bind</Event></xml>",
    "<xml><MsgType>newkind</MsgType></xml>",
]


@pytest.mark.parametrize(
    "xml", [*(p.read_text("utf-8") for p in sorted(PAYLOADS.glob("*.xml"))), *ODD]
)
def test_messages_are_read_as_wechatpy_parses_them(xml: str) -> None:
    """Read from the envelope's tree, every push gives wechatpy's class and fields, exactly as
    its own `parse_message` (a second parse, which the callback no longer makes) gives them."""
    ours, theirs = _message(ElementTree.fromstring(xml), xml), parse_message(xml)
    assert type(ours) is type(theirs)
    assert ours._data == theirs._data


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("text", {"kind": "text", "text": "你好", "message_id": "24781234567890123"}),
        ("voice", {"kind": "voice", "text": ""}),
        ("voice_recognized", {"kind": "text", "text": "我要反映。"}),
        ("video", {"kind": "video"}),
        ("shortvideo", {"kind": "video"}),
        ("location", {"kind": "location", "text": "广东省广州市天河区天河路385号"}),
        ("event_subscribe", {"event": "subscribe", "event_key": ""}),
        ("event_subscribe_qrscene", {"event": "subscribe", "event_key": "town-xingfu-grid-07"}),
        ("event_scan", {"event": "scan", "event_key": "town-heping-office"}),
        ("event_unsubscribe", {"event": "unsubscribe"}),
        ("event_click", {"event": "menu", "event_key": "status"}),
    ],
)
def test_messages_and_events_become_inbounds(name: str, expected: dict[str, str]) -> None:
    inbound = inbound_of(name)
    assert not isinstance(inbound, Observation)
    assert inbound.channel == "wechat" and inbound.sender == OPENID and inbound.message_id
    for field, value in expected.items():
        assert getattr(inbound, field) == value, field


def test_media_and_places_keep_what_the_case_needs() -> None:
    image = inbound_of("image")
    assert not isinstance(image, Observation)
    [photo] = image.media
    assert photo.kind == "image" and photo.ref.startswith("n3Hd8c")
    assert photo.url == "http://mmbiz.qpic.cn/mmbiz_jpg/Q3auHgzwzM5tIbqO8cVj4rzbYnFeN1jZq9kQ/0"
    location = inbound_of("location")
    assert not isinstance(location, Observation)
    assert location.location == Location(23.134521, 113.358803, "广东省广州市天河区天河路385号")
    voice = inbound_of("voice")
    assert not isinstance(voice, Observation)
    assert voice.media == (Media("voice", voice.media[0].ref),) and voice.media[0].ref
    link = inbound_of("link")
    assert not isinstance(link, Observation)
    assert link.text.splitlines() == [
        "幸福小区电梯停运两个月无人管",
        "业主多次反映，物业一直推脱。",
        "https://mp.weixin.qq.com/s/Xy7kQ2mN9pL4rT1vB8cD3e",
    ]


def test_event_ids_tell_apart_events_of_the_same_second() -> None:
    subscribe = inbound_of("event_subscribe_qrscene")
    scan = read(PLAIN.open({}, payload("event_scan", CreateTime=1732253340).encode()))
    assert not isinstance(subscribe, Observation) and not isinstance(scan, Observation)
    assert subscribe.message_id == "1732253340:subscribe:qrscene_town-xingfu-grid-07"
    assert scan.message_id != subscribe.message_id
    long_key = read(PLAIN.open({}, payload("event_click", EventKey="k" * 200).encode()))
    assert not isinstance(long_key, Observation) and len(long_key.message_id) <= 64
    with pytest.raises(Malformed):  # an openid is never this; keys must fit their columns
        read(PLAIN.open({}, payload("text", FromUserName="o" * 65).encode()))


def test_pushes_without_a_reply_are_observations() -> None:
    assert inbound_of("event_view") == Observation(OPENID, "event:view")
    assert inbound_of("event_location") == Observation(OPENID, "event:location")
    assert inbound_of("event_templatesendjobfinish") == Observation(
        OPENID,
        "templatesendjobfinish",
        DeliveryReport("wechat", "3147483654", delivered=False, status="failed:user block"),
    )
    ok = read(PLAIN.open({}, payload("event_templatesendjobfinish", Status="success").encode()))
    assert isinstance(ok, Observation) and ok.report and ok.report.delivered
    odd = read(PLAIN.open({}, payload("text").replace("[text]", "[miniprogrampage]").encode()))
    assert not isinstance(odd, Observation)
    assert (odd.event, odd.event_key, odd.message_id) == (
        "unsupported",
        "miniprogrampage",
        "24781234567890123",
    )


def test_a_push_without_a_sender_is_malformed() -> None:
    with pytest.raises(Malformed):
        read(PLAIN.open({}, b"<xml><MsgType>text</MsgType></xml>"))


# -- splitting -----------------------------------------------------------------------------------


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=3000))
def test_split_pieces_fit_and_lose_nothing_but_spacing(text: str) -> None:
    pieces = split(text, limit=300)
    assert all(0 < len(p.encode()) <= 300 for p in pieces)

    def content(s: str) -> str:  # what is left when line breaks and edge spaces go
        return "".join(ch for ch in s if not ch.isspace() and not _NOT_XML.match(ch))

    assert content("".join(pieces)) == content(text)


def test_split_prefers_lines_then_sentences_and_never_cuts_a_character() -> None:
    lines = ["第一行：" + "甲" * 300, "第二行：" + "乙" * 300, "第三行：" + "丙" * 300]
    assert split("\n".join(lines)) == ["\n".join(lines[:2]), lines[2]]
    emoji = "🙂" * 600  # 4 bytes each, no breaks at all
    pieces = split(emoji)
    assert [len(p) for p in pieces] == [512, 88] and "".join(pieces) == emoji
    assert split("  \n ") == [] and split("短") == ["短"]
    assert len("\n".join(split("好" * 5000)).encode()) >= 15000


def test_replies_join_into_one_message_with_numbered_choices() -> None:
    replies = [Reply("已取消。"), Reply("请选择：", (Choice("1", "我要反映"), Choice("0", "人工")))]
    assert as_text(replies) == "已取消。\n\n请选择：\n1 我要反映\n0 人工"
    assert len(as_text([Reply("好" * 700)]).encode()) > MAX_BYTES


def test_the_passive_reply_is_xml_whatever_the_text() -> None:
    message = inbound_of("text")
    assert not isinstance(message, Observation)
    text = "a]]>b\x00c<d>&e"
    xml = passive_reply(split(text)[0], message.raw)
    root = ElementTree.fromstring(xml)
    assert root.findtext("Content") == "a]]>bc<d>&e"
    assert root.findtext("ToUserName") == OPENID and root.findtext("MsgType") == "text"


@pytest.mark.parametrize("text", ["您好", "a]]>b", "请选择：\n1 我要反映\n0 人工", "<d>&e \"'"])
def test_the_passive_reply_is_the_one_wechatpy_renders(text: str) -> None:
    # wechatpy was the renderer; ours fills its template in directly and must say the same.
    message = inbound_of("text")
    assert not isinstance(message, Observation)
    safe = text.replace("]]>", "]]]]><![CDATA[>")  # as the old call escaped it first
    expected = TextReply(message=message.raw, content=safe, time=1_796_000_000).render()
    assert passive_reply(text, message.raw, clock=lambda: 1_796_000_000.7) == expected


# -- menu and template ---------------------------------------------------------------------------


def test_the_bundled_menu_opens_a_flow_with_every_button() -> None:
    menu = load_menu()
    keys = [
        b["key"]
        for top in menu["button"]
        for b in [top, *top.get("sub_button", [])]
        if b.get("type") == "click"
    ]
    # The channel names no flows: the engine's flow table knows what each key opens.
    flows = flows_for(load_office())
    opened = {key: getattr(flows.by_event(key), "name", None) for key in keys}
    names = [b["name"] for top in menu["button"] for b in top.get("sub_button", [])]
    assert "领导信箱" in names
    assert opened == {
        "file": "filing",
        "status": "status",
        "rate": "rating",
        "suggest": "suggestion",
        "mailbox": "mailbox",  # 领导信箱 (issue 18)
        "faq": "faq",
        "staff": "handoff",
    }


def test_a_click_key_the_engine_may_not_know_is_passed_on_and_an_odd_one_dropped() -> None:
    praise = read(PLAIN.open({}, payload("event_click", EventKey="Praise").encode()))
    odd = read(PLAIN.open({}, payload("event_click", EventKey="查 询").encode()))
    assert not isinstance(praise, Observation) and not isinstance(odd, Observation)
    assert (praise.event, praise.event_key) == ("menu", "praise")
    assert (odd.event, odd.event_key) == ("menu", "")


@pytest.mark.parametrize(
    ("menu", "message"),
    [
        ({"button": []}, "1 to 3 buttons"),
        ({"button": [{"type": "click", "name": "查询", "key": "查 询"}]}, "key '查 询'"),
        ({"button": [{"type": "view", "name": "指南", "url": "ftp://x"}]}, "https://"),
        ({"button": [{"name": "更多", "sub_button": [{}] * 6}]}, "1 to 5"),
        ({"button": [{"name": "无类型"}]}, "needs a type"),
        ({"button": [{"type": "click", "name": "我要反映问题", "key": "file"}]}, "18 bytes"),
        (
            {
                "button": [
                    {
                        "name": "更多",
                        "sub_button": [{"type": "click", "name": "信" * 21, "key": "faq"}],
                    }
                ]
            },
            "at most 60",
        ),
        ({"button": [{"name": "1", "sub_button": [{}]}] * 4}, "1 to 3 buttons"),
    ],
)
def test_a_wrong_menu_says_which_button(
    tmp_path: Path, menu: dict[str, object], message: str
) -> None:
    path = tmp_path / "menu.json"
    path.write_text(json.dumps(menu, ensure_ascii=False), "utf-8")
    with pytest.raises(MenuError) as error:
        load_menu(str(path))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_template_values_are_fitted_to_their_key_type() -> None:
    assert fit("已受理", "phrase2") == "已受理"
    assert fit("不予受理，已告知应去的部门", "phrase12") == "不予受理…"
    assert fit("很长" * 50, "keyword1") == "很长" * 50  # classic keys: no limit known
    with pytest.raises(RecipientUnreachable, match="MINYI_WECHAT_TEMPLATE_FIELDS"):
        template_data({"department": "住建局"}, {"code": "character_string1"})
    assert client_msg_id("case-1:ev-2") == "case-1:ev-2"
    assert client_msg_id("案件1") == client_msg_id("案件1") != "案件1"


@pytest.mark.parametrize("signature", ["\x80", "签名", "0" * 40, ""])
def test_a_signature_not_ours_is_refused_whatever_its_characters(signature: str) -> None:
    """Compared in constant time, which takes ASCII only: any other text is refused (403), not
    an error (500)."""
    now = str(int(time.time()))
    with pytest.raises(Refused):
        PLAIN.check_query({"signature": signature, "timestamp": now, "nonce": "1"})
    wecom = WeComEnvelope(TOKEN, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "corp")
    with pytest.raises(Refused):
        wecom.echo({"msg_signature": signature, "timestamp": now, "nonce": "1", "echostr": "x"})
