"""Every WeChat message and event as an `Inbound`, or as an observation that needs no reply."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import xmltodict
from wechatpy.events import EVENT_TYPES
from wechatpy.messages import MESSAGE_TYPES, BaseMessage, UnknownMessage

from conversation.messages import Inbound, Location, Media

from ..base import DeliveryReport
from .envelope import Malformed, Opened

CHANNEL = "wechat"
# An openid is 28 characters of [A-Za-z0-9_-]; the bound keeps keys within their columns.
OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_ID = 64
# A CLICK button's key, as the menu file (menu.json, MINYI_WECHAT_MENU) spells it: the engine
# knows which flow it opens, so the channel passes any well-formed one on.
MENU_KEY = re.compile(r"[a-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Observation:
    """A push the conversation does not act on (VIEW, LOCATION reports, template receipts):
    recorded as a log line and a metric; a template receipt is also a delivery report."""

    sender: str
    what: str
    report: DeliveryReport | None = None


def read(opened: Opened) -> Inbound | Observation:
    root = opened.root
    try:
        message = _message(root, opened.xml)
    except Exception as exc:  # wechatpy raises KeyError/TypeError/ValueError on odd documents
        raise Malformed(f"not a WeChat message ({type(exc).__name__})") from None
    sender = _text(root, "FromUserName")
    if not OPENID.fullmatch(sender):
        raise Malformed("FromUserName is not an openid")
    base: dict[str, Any] = {"channel": CHANNEL, "sender": sender, "raw": message}
    kind = message.type
    if kind == "event":
        return _event(message, root, base)
    base["message_id"] = _short(_text(root, "MsgId") or f"{_text(root, 'CreateTime')}:{kind}")
    if kind == "text":
        return Inbound(kind="text", text=message.content or "", **base)
    if kind == "image":
        media = Media("image", message.media_id or "", message.image or "")
        return Inbound(kind="image", media=(media,), **base)
    if kind == "voice":
        voice = Media("voice", message.media_id or "")
        recognition = (message.recognition or "").strip()
        if recognition:
            # WeChat's own speech recognition: the citizen spoke what they would have typed,
            # menu words included, so it is a text message (the audio is not kept then).
            return Inbound(kind="text", text=recognition, media=(voice,), **base)
        return Inbound(kind="voice", media=(voice,), **base)
    if kind in ("video", "shortvideo"):
        return Inbound(kind="video", media=(Media("video", message.media_id or ""),), **base)
    if kind == "location":
        return Inbound(
            kind="location",
            location=_location(message.location_x, message.location_y, message.label or ""),
            text=message.label or "",
            **base,
        )
    if kind == "link":
        # A shared article or page: its title, summary and address are what the citizen means.
        parts = (message.title, message.description, message.url)
        return Inbound(kind="text", text="\n".join(p for p in parts if p), **base)
    # A mini-program card or anything newer: the engine tells the citizen what it can read.
    return Inbound(kind="event", event="unsupported", event_key=kind, **base)


def _event(message: Any, root: Element, base: dict[str, Any]) -> Inbound | Observation:
    event = message.event
    raw_event, raw_key = _text(root, "Event"), _text(root, "EventKey")
    # Events have no MsgId. WeChat advises FromUserName + CreateTime; CreateTime has 1-second
    # resolution, so the event and key are added (a subscribe and a SCAN in the same second).
    base["message_id"] = _short(f"{_text(root, 'CreateTime')}:{raw_event}:{raw_key}")
    if event in ("subscribe", "subscribe_scan_product"):
        return Inbound(kind="event", event="subscribe", **base)
    if event == "subscribe_scan":
        # Followed through a parameter QR code (qrscene_<scene>; wechatpy strips the prefix):
        # the scene becomes the source of the cases filed after it.
        return Inbound(kind="event", event="subscribe", event_key=message.scene_id or "", **base)
    if event == "scan":
        return Inbound(kind="event", event="scan", event_key=message.scene_id or "", **base)
    if event == "unsubscribe":
        return Inbound(kind="event", event="unsubscribe", **base)
    if event == "click":
        key = (message.key or "").strip().lower()
        # A key the engine does not know shows the main menu (and is never taken for a QR scene).
        return Inbound(
            kind="event", event="menu", event_key=key if MENU_KEY.fullmatch(key) else "", **base
        )
    if event == "templatesendjobfinish":
        status = message.status or ""
        report = DeliveryReport(
            channel=CHANNEL,
            message_id=_text(root, "MsgID"),
            delivered=status == "success",
            status=status,
        )
        return Observation(base["sender"], "templatesendjobfinish", report)
    return Observation(base["sender"], f"event:{event}")


def _message(root: Element, xml: str) -> BaseMessage:
    """What wechatpy's `parse_message` makes of the document, from the tree the envelope has
    already parsed (safely): parsing it a second time with xmltodict was ~17 µs of every turn.
    The fields are the values xmltodict gives wechatpy; a document with attributes or mixed
    content (WeChat sends neither) is read by xmltodict itself. tests/channels/test_wechat_units.py
    compares both ways on every kind of push."""
    fields = _fields(root) if _plain(root) else xmltodict.parse(xml)["xml"]
    kind = fields["MsgType"].lower()
    if kind != "event" and not kind.startswith("device_"):
        return MESSAGE_TYPES.get(kind, UnknownMessage)(fields)
    # parse_message's choice of event class, as wechatpy 1.8 makes it.
    event = fields["Event"].lower() if "Event" in fields else None
    if kind.startswith("device_"):
        event = kind if event is None else f"device_{event}"
    key = fields.get("EventKey")
    if event == "subscribe" and key:
        if key.startswith(("scanbarcode|", "scanimage|")):
            event = fields["Event"] = "subscribe_scan_product"
        elif key.startswith("qrscene_"):
            event = fields["Event"] = "subscribe_scan"
            fields["EventKey"] = key[len("qrscene_") :]
    return EVENT_TYPES.get(event, UnknownMessage)(fields)


def _plain(root: Element) -> bool:
    """No attributes and no text beside child elements: what `_fields` reads as xmltodict does."""
    for element in root.iter():
        if element.attrib or (element.tail or "").strip():
            return False
        if len(element) and (element.text or "").strip():
            return False
    return True


def _fields(element: Element) -> Any:
    """An element as xmltodict reads it: its stripped text (None when empty), or a dict of its
    children, a repeated child as a list."""
    if len(element) == 0:
        return (element.text or "").strip() or None
    fields: dict[str, Any] = {}
    for child in element:
        value = _fields(child)
        if child.tag not in fields:
            fields[child.tag] = value
        elif isinstance(fields[child.tag], list):
            fields[child.tag].append(value)
        else:
            fields[child.tag] = [fields[child.tag], value]
    return fields


def _short(message_id: str) -> str:
    """Ids become keys of bounded columns (dedupe, delivery claims): a long one is digested."""
    if len(message_id) <= MAX_ID:
        return message_id
    return message_id[:24] + ":" + hashlib.sha256(message_id.encode()).hexdigest()[:32]


def _location(lat: Any, lng: Any, label: str) -> Location:
    try:
        point = Location(float(lat), float(lng), label.strip()[:200])
    except (TypeError, ValueError):
        raise Malformed("Location_X/Location_Y are not numbers") from None
    if not (math.isfinite(point.lat) and math.isfinite(point.lng)):
        raise Malformed("Location_X/Location_Y are not finite")
    return point


def _text(root: Element, tag: str) -> str:
    child = root.find(tag)
    return (child.text or "").strip() if child is not None else ""
