"""The tables, as typed SQLAlchemy 2.0 models. Schema changes go through Alembic migrations."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend (SQLite keeps no zone, so we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}  # noqa: RUF012


class Citizen(Base):
    """A person behind a mobile number. Name and phone are AES-GCM encrypted; the keyed hash finds them."""

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)
    phone_enc: Mapped[bytes] = mapped_column(LargeBinary)
    name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    sms_opted_out_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Identity(Base):
    """A channel-scoped id (WeChat openid, Telegram chat, web-chat session) that files and asks."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(128))
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"))
    # When the person on this identity proved they hold the citizen's phone. Until then the
    # link (a number typed into a form) gives no access to that citizen's other cases.
    citizen_proven_at: Mapped[datetime | None]
    language: Mapped[str] = mapped_column(String(8), default="zh")
    unsubscribed_at: Mapped[datetime | None]
    unreachable_at: Mapped[datetime | None]
    # An SMS conversation's mobile (its external id is only a keyed hash of it), encrypted
    # ("sms-route"): how staff answering its thread reach the citizen. Erased with the person.
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Case(Base):
    """One matter a citizen filed (kind `petition` or `suggestion`) and where it stands."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status_created_at", "status", "created_at"),
        # The desk's list is newest first, keyset-paged by id, filtered by one of these.
        Index("ix_cases_status_id", "status", "id"),
        Index("ix_cases_department_id", "department", "id"),
        Index("ix_cases_category_id", "category", "id"),
        Index("ix_cases_channel_id", "channel", "id"),
        # Searching by part of a code reads this index alone instead of the whole table.
        Index("ix_cases_code_id", "code", "id"),
        # Open311 lists one service's requests, newest first, within a window of dates.
        Index("ix_cases_category_created_at", "category", "created_at"),
        Index("ix_cases_mailbox_id", "mailbox", "id"),
        # The measures: later filings of a matter, looked up by its first case and filing time.
        Index("ix_cases_repeat_of_created_at", "repeat_of", "created_at"),
        # The repeat watch's question ("which new cases are not compared yet?") stays small.
        Index(
            "ix_cases_repeat_unchecked",
            "id",
            postgresql_where=text("repeat_checked_at IS NULL"),
            sqlite_where=text("repeat_checked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    origin: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(40), default="")
    description: Mapped[str] = mapped_column(Text)
    location_text: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    channel: Mapped[str] = mapped_column(String(20))
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id"), index=True)
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    contact_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    contact_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    source: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="zh")
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    risk_words: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(24), default="submitted")
    # The lead department (主办), by code when the office declares its departments: suggested at
    # filing, set by 交办, given back by 退回. Co-handling ones (协办) are `case_co_departments`.
    department: Mapped[str] = mapped_column(String(100), default="")
    # 首问责任制: the first staff member who took a step on it, answerable for it from then on.
    owner: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # Who made the last 交办 and the department the case had before it: 退回 goes back there.
    routed_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    routed_from: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # 督办 level: 0 none, n the office's n-th escalation level.
    level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    mailbox: Mapped[str] = mapped_column(String(40), default="", server_default="")  # 领导信箱
    # A suggestion's outcome (adopted, partly, not_adopted); "" until decided.
    outcome: Mapped[str] = mapped_column(String(20), default="", server_default="")
    # 重复信访: the first case of the same matter this one repeats, and which filing of it this is
    # (2 = the first repeat); compared by the repeat watch when `repeat_checked_at` is set.
    repeat_of: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    repeat_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    repeat_checked_at: Mapped[datetime | None]
    # When the same matter was next filed (by the repeat watch): a case filed again within the
    # repeat window of its closing was not resolved the first time (一次性化解, docs/measures.md).
    refiled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    accept_due_at: Mapped[datetime | None]
    finish_due_at: Mapped[datetime | None]
    review_due_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    replied_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # Facts the measures read (docs/measures.md), each written once when it first happens: the
    # decision on acceptance (受理 or 不予受理), the first reply and the finish deadline in force
    # then (a review moves `finish_due_at`, the first reply's punctuality must not move with it),
    # and the first request for review (复查).
    decided_at: Mapped[datetime | None]
    first_replied_at: Mapped[datetime | None]
    first_reply_due_at: Mapped[datetime | None]
    review_requested_at: Mapped[datetime | None]
    extended_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    extension_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Local SLA stages (e.g. 1-2-3): [{"name", "due_at", "met_at"}], set when their anchor event happens.
    stages: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    rating_score: Mapped[int | None]
    rating_scale: Mapped[int | None]
    rating_label: Mapped[str | None] = mapped_column(String(20))
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rating_channel: Mapped[str | None] = mapped_column(String(20))
    rated_at: Mapped[datetime | None]
    # Filed without name and mobile; then the 查询码 given once at filing, as a keyed hash only.
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    query_code_hash: Mapped[str | None] = mapped_column(String(64))


class CaseCoDepartment(Base):
    """A co-handling department (协办) of a case: it sees the case as the lead one does."""

    __tablename__ = "case_co_departments"
    __table_args__ = (
        UniqueConstraint("case_id", "department"),
        Index("ix_case_co_departments_department_case_id", "department", "case_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    department: Mapped[str] = mapped_column(String(100))


class CaseEvent(Base):
    """The case's timeline and audit trail: append-only, each row holding the previous row's hash."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class CaseAccess(Base):
    """A chat that proved it may read a case it did not file (by 查询码 or 验证码): it is not
    asked again."""

    __tablename__ = "case_access"
    __table_args__ = (UniqueConstraint("identity_id", "case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    how: Mapped[str] = mapped_column(String(10))  # "query" or "sms"
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProofCode(Base):
    """A 验证码 texted to a case's mobile for one asker: only its keyed hash, its expiry and the
    tries left. The rows also count the texts sent per case, per asker and per mobile."""

    __tablename__ = "proof_codes"
    __table_args__ = (
        Index("ix_proof_codes_asker", "channel", "external_id", "created_at"),
        Index("ix_proof_codes_case", "case_id", "created_at"),
        Index("ix_proof_codes_phone", "phone_hash", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(128))
    phone_hash: Mapped[str] = mapped_column(String(64))
    code_hash: Mapped[str] = mapped_column(String(64))
    tries_left: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProofFailure(Base):
    """A wrong 查询码 or 验证码, counted per asker and (when the code names a case) per case."""

    __tablename__ = "proof_failures"
    __table_args__ = (
        Index("ix_proof_failures_asker", "channel", "external_id", "at"),
        Index("ix_proof_failures_case", "case_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Attachment(Base):
    """A photo or voice note as its channel keeps it (WeChat MediaId, Telegram file_id, URL)."""

    __tablename__ = "attachments"
    # The fetch job looks only at the last few days' rows.
    __table_args__ = (
        Index("ix_attachments_created_at", "created_at"),
        # The orphan sweep and a backup ask whether a case holds a file.
        Index("ix_attachments_file_key", "file_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    channel: Mapped[str] = mapped_column(String(20))
    ref: Mapped[str] = mapped_column(String(512))
    url: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The photo as Minyi keeps it (storage/files.py; its thumbnail beside it), once it is:
    # web-chat photos at once, WeChat and Telegram ones when fetched (storage/media_fetch.py).
    file_key: Mapped[str | None] = mapped_column(String(200))
    # Fetch attempts for a channel's photo; given up after a few (a WeChat MediaId lasts 3 days).
    fetch_tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Upload(Base):
    """A photo kept in the file store and not yet known to be a case's: written before its
    files, so that none is ever untracked. The orphan sweep (bot/backoffice/photo_sweep.py)
    deletes the files of one no case took once the conversation it came from has ended, and
    forgets the row of one a case took."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_key: Mapped[str] = mapped_column(String(200), unique=True)
    # The conversation that holds it (channel:sender), "" when none does (a fetched photo
    # whose attachment is written at once, a case's photo let go by an erasure).
    conversation: Mapped[str] = mapped_column(String(300), default="")
    # When it was kept, or last found still held by a live conversation; swept after the age.
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Survey(Base):
    """A satisfaction survey (回访) sent when a case closes; one open survey per case at a time.

    The citizen's own channel asks at once; an SMS goes to the mobile on file, outside quiet
    hours. The answer may come by either route; the first one counts.
    """

    __tablename__ = "surveys"
    __table_args__ = (Index("ix_surveys_status_expires_at", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, answered, expired
    scale: Mapped[int] = mapped_column(Integer, default=3)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    answered_via: Mapped[str] = mapped_column(String(20), default="", server_default="")
    score: Mapped[int | None]
    # The phone's keyed hash, so an SMS reply finds its open surveys without decrypting anything.
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    sms_sent_at: Mapped[datetime | None]
    clarified_at: Mapped[datetime | None]  # the one clarifying SMS this survey may get
    comment_until: Mapped[datetime | None]  # free text until then becomes the rating's comment


class SmsInbound(Base):
    """SMS replies already taken, by the provider channel's stable key: re-deliveries change nothing."""

    __tablename__ = "sms_inbound"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SmsReplyWaiting(Base):
    """An SMS reply taken from a provider's push and not yet worked through: the push is
    acknowledged once its replies are here, whatever its size (storage/sms_inbox.py)."""

    __tablename__ = "sms_replies_waiting"
    __table_args__ = (Index("ix_sms_replies_waiting_due", "next_try_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reply_enc: Mapped[bytes] = mapped_column(LargeBinary)  # phone and words: personal data
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(default=utcnow)  # later while leased or failing
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    """Conversation state when Redis is absent; `version` makes concurrent writers detectable."""

    __tablename__ = "conversations"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    state: Mapped[bytes] = mapped_column(
        LargeBinary
    )  # encrypted: a form in progress holds name and phone
    version: Mapped[int] = mapped_column(Integer, default=1)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class InboundDedupe(Base):
    """Channel message ids already handled, with the replies given, so a re-delivery gets the same."""

    __tablename__ = "inbound_dedupe"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    replies: Mapped[bytes] = mapped_column(
        LargeBinary
    )  # encrypted: a summary reply repeats the phone
    expires_at: Mapped[datetime] = mapped_column(index=True)


class OutboxEntry(Base):
    """An event for the back office, written in the same transaction as the change it reports."""

    __tablename__ = "outbox"
    # The relay's question ("what is not published yet?") stays fast however long the history.
    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "seq",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    case_code: Mapped[str] = mapped_column(String(20), default="", index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Personal data for the consumer (the contact of `case.submitted`), encrypted like all PII.
    private_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    # Order in the polling feed, given by the relay when it publishes. Insert order (seq) is not
    # commit order, so a feed paged by seq could skip a late-committing row; positions cannot.
    position: Mapped[int | None] = mapped_column(Integer, unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class KeyValue(Base):
    """Small shared values with expiry (e.g. the WeChat access token) when Redis is absent."""

    __tablename__ = "key_values"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None]


class Notification(Base):
    """A message someone must get — the citizen about their case, or staff about a case that
    needs a person — written with the change that caused it and sent by the notifier worker."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    audience: Mapped[str] = mapped_column(String(10))  # "citizen" or "staff"
    topic: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    leased_until: Mapped[datetime | None]
    done_routes: Mapped[list[Any]] = mapped_column(default=list)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class Delivery(Base):
    """A message a provider accepted, so its later delivery report finds the case."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("channel", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    message_id: Mapped[str] = mapped_column(String(128))
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    status: Mapped[str] = mapped_column(String(40), default="accepted")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the provider says the current status happened (or when we heard it): a report older
    # than that, or one already heard, changes nothing.
    reported_at: Mapped[datetime | None]
    # Every status reported so far, so a replayed report is taken once.
    reports: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")


class DeadlineMark(Base):
    """A deadline warning or miss already raised: each fires once, across restarts and workers."""

    __tablename__ = "deadline_marks"
    __table_args__ = (UniqueConstraint("case_id", "deadline", "due_at", "level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    deadline: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime]
    level: Mapped[str] = mapped_column(String(10))  # "warning" or "missed"
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiIdempotency(Base):
    """An `Idempotency-Key` the back office used, with a fingerprint of the request it keyed."""

    __tablename__ = "api_idempotency"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    event_seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MailboxMessage(Base):
    """A message for a web-chat session that was not open: shown when the citizen returns."""

    __tablename__ = "mailbox"
    __table_args__ = (Index("ix_mailbox_recipient", "channel", "recipient", "delivered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str] = mapped_column(String(128))
    reply: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted: may quote the office's answer
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class StaffThread(Base):
    """A staff member talking with a citizen, from an alert or opened on a case (any front end).

    The citizen is addressed on their own channel; while the thread is claimed and not done,
    their messages go to the group instead of the conversation engine.
    """

    __tablename__ = "staff_threads"
    __table_args__ = (Index("ix_staff_threads_citizen", "channel", "external_id", "done_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The alert it grew from; none when staff opened it on a case by its code.
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id"), unique=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(128))
    alert_message_id: Mapped[str] = mapped_column(String(32), default="", index=True)
    claimed_by: Mapped[str] = mapped_column(String(100), default="")
    claimed_user: Mapped[str] = mapped_column(String(32), default="")
    claimed_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffThreadMessage(Base):
    """One message of a live conversation between a citizen and staff, for the desk to show
    (also before the citizen filed anything, when there is no case timeline to read)."""

    __tablename__ = "staff_thread_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    thread_id: Mapped[int] = mapped_column(ForeignKey("staff_threads.id"), index=True)
    author: Mapped[str] = mapped_column(String(10))  # citizen, staff
    staff_name: Mapped[str] = mapped_column(String(100), default="")
    text_enc: Mapped[bytes] = mapped_column(LargeBinary)  # the citizen's words are personal
    at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffAccount(Base):
    """A person who answers citizens: signs in to the desk, acts on cases under their own name."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(10))  # staff, leader, admin
    department: Mapped[str] = mapped_column(String(100), default="")  # "" = every department
    wecom_userid: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, self-describing
    disabled_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffSession(Base):
    """A signed-in desk session. Only the token's SHA-256 is kept, so the table cannot sign in."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)  # the absolute limit


class SignInThrottle(Base):
    """Failed sign-ins per username or client address, and the lockout they earned."""

    __tablename__ = "signin_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "user:…" or "addr:…"
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]


class KeyCheck(Base):
    """How the database recognises the personal-data key it was written with: an HMAC of a
    constant under the key (storage/keycheck.py), never the key itself."""

    __tablename__ = "key_checks"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)  # "pii"
    value: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SchemaCompat(Base):
    """Per schema revision the database was left at, the oldest code revision that can work
    with it: what an older process reads to decide whether it may run (storage/schema_compat.py)."""

    __tablename__ = "schema_compat"

    revision: Mapped[str] = mapped_column(String(32), primary_key=True)
    min_code_revision: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


# The measures' daily rollup (storage/rollup.py, docs/measures.md "Speed"): per local day of
# filing, per grouping, the counts storage/measures.py would give for that day. Triggers on the
# cases (migration 0022) note the filing time of every case whose facts change, in the same
# transaction; a day so noted is counted again before it is read.


class StatsRollup(Base):
    __tablename__ = "stats_rollup"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    # "total", "department" (lead), "co_department", "subtree" (a unit and all below it),
    # "category", "channel"
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    cases: Mapped[int] = mapped_column(Integer, default=0)
    petitions: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    rated: Mapped[int] = mapped_column(Integer, default=0)
    satisfied: Mapped[int] = mapped_column(Integer, default=0)
    acceptance_due: Mapped[int] = mapped_column(Integer, default=0)
    accepted_on_time: Mapped[int] = mapped_column(Integer, default=0)
    reply_due: Mapped[int] = mapped_column(Integer, default=0)
    replied_on_time: Mapped[int] = mapped_column(Integer, default=0)
    resolved_first_time: Mapped[int] = mapped_column(Integer, default=0)
    repeat_checked: Mapped[int] = mapped_column(Integer, default=0)
    repeats: Mapped[int] = mapped_column(Integer, default=0)
    suggestions_received: Mapped[int] = mapped_column(Integer, default=0)
    suggestions_adopted: Mapped[int] = mapped_column(Integer, default=0)
    suggestions_partly_adopted: Mapped[int] = mapped_column(Integer, default=0)
    suggestions_not_adopted: Mapped[int] = mapped_column(Integer, default=0)


class StatsRollupDay(Base):
    """A day that is rolled up, and the moments between which its counts hold: the two
    deadline-dependent counts change when an open case's deadline passes."""

    __tablename__ = "stats_rollup_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    computed_at: Mapped[datetime]
    valid_after: Mapped[datetime | None]  # the last deadline before computed_at (None: none)
    valid_until: Mapped[datetime | None]  # the next one at or after it (None: none)


class StatsRollupState(Base):
    """What the rollup was counted for (the zone, the repeat window, the department tree)."""

    __tablename__ = "stats_rollup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(64))


class StatsDirty(Base):
    """The filing time of a case whose facts changed since the rollup last looked."""

    __tablename__ = "stats_dirty"
    __table_args__ = (Index("ix_stats_dirty_filed_at", "filed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    filed_at: Mapped[datetime]
