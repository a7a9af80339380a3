"""What is held about one citizen (PIPL Art. 45, a person's right to see their data), found
from their phone number through its keyed hash: the person, the channel accounts linked to
them, every case they filed with its timeline, their survey answers and their words in staff
conversations. Decrypted for the answer only; nothing is written.

With the file store, each case lists its photos (`photos/<code>/<attachment>.jpg`, with their
size and SHA-256) and their bytes are handed back beside the answer, for the export's zip."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from .case_photos import case_photos
from .documents import document_of
from .files import FileStore
from .models import Case, Citizen, Identity, StaffThread, StaffThreadMessage, Survey
from .people import SMS_ROUTE, sms_conversation_id
from .times import iso, iso_or_none
from .uow import UnitOfWork


async def held_about(
    uow: UnitOfWork,
    phone_e164: str,
    files: FileStore | None = None,
    photos: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """Everything kept about the holder of `phone_e164` (empty lists when nothing is).

    With `files`, each case lists its photos, and their bytes are put in `photos` by name."""
    phone_hash = uow.cipher.phone_hash(phone_e164)
    citizen = await uow.session.scalar(select(Citizen).where(Citizen.phone_hash == phone_hash))
    surveys = list(
        await uow.session.scalars(
            select(Survey).where(Survey.phone_hash == phone_hash).order_by(Survey.id)
        )
    )
    identities: list[Identity] = []
    cases: list[Case] = []
    if citizen is not None:
        identities = list(
            await uow.session.scalars(
                select(Identity).where(Identity.citizen_id == citizen.id).order_by(Identity.id)
            )
        )
        owned = [Case.citizen_id == citizen.id]
        if identities:
            owned.append(Case.identity_id.in_([i.id for i in identities]))
        cases = list(await uow.session.scalars(select(Case).where(or_(*owned)).order_by(Case.id)))
    # The mobile's own SMS conversation, linked to the person or not: it keeps the number.
    texted = await uow.people.find_identity("sms", sms_conversation_id(uow.cipher, phone_e164))
    if texted is not None and texted.id not in {i.id for i in identities}:
        identities.append(texted)
    survey_cases = {s.case_id for s in surveys} - {c.id for c in cases}
    if survey_cases:
        cases += list(await uow.session.scalars(select(Case).where(Case.id.in_(survey_cases))))
    tz = uow.tz
    return {
        "phone": phone_e164,
        "person": None
        if citizen is None
        else {
            "name": uow.cipher.decrypt(citizen.name_enc, "name") if citizen.name_enc else "",
            "phone": uow.cipher.decrypt(citizen.phone_enc, "phone"),
            "sms_opted_out_at": iso_or_none(citizen.sms_opted_out_at, tz),
            "created_at": iso(citizen.created_at, tz),
        },
        "accounts": [
            {
                "channel": i.channel,
                "id": i.external_id,
                "phone_proven_at": iso_or_none(i.citizen_proven_at, tz),
                "phone": uow.cipher.decrypt(i.phone_enc, SMS_ROUTE) if i.phone_enc else "",
                "created_at": iso(i.created_at, tz),
            }
            for i in identities
        ],
        "cases": [
            {
                **await document_of(uow, case, events=True),
                "conversations_with_staff": await thread_words(uow, case),
                **({} if files is None else {"photos": await _photos(uow, case, files, photos)}),
            }
            for case in cases
        ],
        "surveys": [
            {
                "case": next(c.code for c in cases if c.id == s.case_id),
                "status": s.status,
                "score": s.score,
                "answered_via": s.answered_via,
                "created_at": iso(s.created_at, tz),
                "answered_at": iso_or_none(s.answered_at, tz),
            }
            for s in surveys
        ],
    }


async def thread_words(uow: UnitOfWork, case: Case) -> list[dict[str, Any]]:
    rows = await uow.session.execute(
        select(StaffThreadMessage)
        .join(StaffThread, StaffThread.id == StaffThreadMessage.thread_id)
        .where(StaffThread.case_id == case.id)
        .order_by(StaffThreadMessage.id)
    )
    return [
        {
            "from": message.author,
            "staff": message.staff_name,
            "text": uow.cipher.decrypt(message.text_enc, "thread-message"),
            "at": iso(message.at, uow.tz),
        }
        for message in rows.scalars()
    ]


async def _photos(
    uow: UnitOfWork, case: Case, files: FileStore, out: dict[str, bytes] | None
) -> list[dict[str, object]]:
    listed = []
    for photo in await case_photos(uow, case, files):
        name = f"photos/{case.code}/{photo.attachment}.jpg"
        if photo.data is not None and out is not None:
            out[name] = photo.data
        listed.append(photo.entry(name))
    return listed
