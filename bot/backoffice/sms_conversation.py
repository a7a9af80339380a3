"""Following a case by SMS: a citizen's text that is not a survey reply is a turn of the
conversation on the `sms` channel, and the engine's answer goes back by SMS.

The sender is known by a keyed hash of their mobile (never stored in the clear): that is the
conversation's sender id. The mobile itself is kept encrypted on that identity, so staff who
take the conversation's thread answer it by SMS (citizen_notices.py). A mobile that is on file for a citizen holds that citizen's cases
(the identity is linked as proven, as a 验证码 would), so their status, 补充, 催办, 评价 and
复查 work at once; any other case needs its 查询码 or a 验证码, as on every channel. Nothing is
filed by SMS: the engine answers where to file instead (docs/sms.md).

This runs in the `sms-replies` job, after the push was acknowledged. The engine recognises a
turn it already took (the provider's key is the message id); the provider's key is recorded as
taken in the same transaction that queues the answer, and the answer is a notification job with
a key of its own, so a reply handled twice — a crash between the turn and the answer, a
re-delivery hours later — is answered once. Answers to one mobile are capped
(`MINYI_RATE_SMS_ANSWERS`): over the cap the citizen is told once, then nothing is sent (and
nothing is done) until the window ends.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta, tzinfo

from channels.sms import SmsReply
from conversation.messages import Inbound, Reply
from conversation.office import OfficeConfig
from conversation.sms_answer import sms_answer
from storage.models import Identity, SmsInbound, utcnow
from storage.people import SMS_ROUTE, insert_ignoring_duplicates, sms_conversation_id
from storage.ratelimit import RateLimit
from storage.uow import UnitOfWork, Units

log = logging.getLogger(__name__)

CHANNEL = "sms"
TOPIC = "sms_answer"


def seal_answer(uow: UnitOfWork, to: str, text: str) -> str:
    """The answer and its mobile as the job carries them until sent: encrypted."""
    plain = json.dumps({"to": to, "text": text}, ensure_ascii=False)
    return base64.b64encode(uow.cipher.encrypt(plain, "sms-answer")).decode()


def open_answer(uow: UnitOfWork, sealed: str) -> tuple[str, str]:
    data = json.loads(uow.cipher.decrypt(base64.b64decode(sealed), "sms-answer"))
    return str(data["to"]), str(data["text"])


class SmsConversation:
    def __init__(
        self,
        units: Units,
        handle: Callable[[Inbound], Awaitable[list[Reply]]],
        limits: RateLimit,
        rates: Sequence[tuple[int, int]],
        office: OfficeConfig,
        tz: tzinfo,
    ) -> None:
        self.units = units
        self.handle = handle
        self.limits = limits
        self.rates = tuple(rates)
        self.office = office
        self.tz = tz

    async def __call__(self, reply: SmsReply) -> None:
        cipher = self.units.cipher
        key = cipher.digest(reply.dedupe_key, "sms-inbound")  # as the survey path records it
        sender = sms_conversation_id(cipher, reply.phone)
        t = self.office.catalog.for_language("zh")
        capped = await self._capped(sender, key)
        if capped is None:
            await self._remember(reply.phone, sender)
            replies = await self.handle(
                Inbound(
                    channel=CHANNEL,
                    sender=sender,
                    text=reply.text,
                    message_id=key[:40],
                    received_at=reply.received_at,
                )
            )
            answer = sms_answer(replies, t("sms.cut", online=self.office.online("zh")))
        else:
            answer = capped
        async with self.units() as uow:
            first = await insert_ignoring_duplicates(
                uow.session, SmsInbound, {"key": key, "created_at": utcnow()}, ["key"]
            )
            if not first:
                log.info("SMS from %s re-delivered: already answered", reply.masked_phone)
                return
            if answer:
                await uow.notifications.add(
                    f"citizen:sms-answer:{key}",
                    "citizen",
                    TOPIC,
                    None,
                    {"sender": sender, "sealed": seal_answer(uow, reply.phone, answer)},
                )
            await uow.commit()

    async def _capped(self, sender: str, key: str) -> str | None:
        """None when this mobile may be answered; else what to tell it ("" once it was told)."""
        waits: list[tuple[float, int]] = []
        for count, window in self.rates:
            wait = await self.limits.hit(f"sms-answer:{window}:{sender}", count, window, key)
            if wait is not None:
                waits.append((wait, window))
        if not waits:
            return None
        wait, window = max(waits)
        log.info("SMS answers to one mobile capped for %.0f s", wait)
        told = await self.limits.hit(f"sms-capped:{window}:{sender}", 1, window, key)
        if told is not None:
            return ""  # told already in this window: nothing more is sent
        until = (utcnow() + timedelta(seconds=wait)).astimezone(self.tz)
        when = (
            f"{until:%H:%M}" if wait < 12 * 3600 else f"{until.month}月{until.day}日{until:%H:%M}"
        )
        t = self.office.catalog.for_language("zh")
        return t(
            "sms.capped", until=when, online=self.office.online("zh"), hotline=self.office.hotline
        )

    async def _remember(self, phone: str, sender: str) -> None:
        """The conversation keeps its mobile, encrypted, as the way back to it when staff take
        its thread (its id is only a hash). And if the SMS came from the mobile on file, this
        conversation holds that citizen's cases."""
        async with self.units() as uow:
            citizen = await uow.people.find_citizen(phone)
            identity = await uow.people.identity(CHANNEL, sender)
            if identity.phone_enc is None:
                identity.phone_enc = uow.cipher.encrypt(phone, SMS_ROUTE)
            if citizen is not None and (
                identity.citizen_id != citizen.id or identity.citizen_proven_at is None
            ):
                identity.citizen_id, identity.citizen_proven_at = citizen.id, utcnow()
            await uow.commit()


def route_of(uow: UnitOfWork, identity: Identity) -> str:
    """The mobile behind an SMS conversation; "" when none is kept (erased, and no text since)."""
    return uow.cipher.decrypt(identity.phone_enc, SMS_ROUTE) if identity.phone_enc else ""
