"""Cases in words for staff: the timeline as sentences, deadlines with the time left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from conversation.cases.due import next_deadline
from conversation.casework_texts import escalation_reason
from conversation.catalog import ZH, Texts  # ZH holds every key
from conversation.office import OfficeConfig
from storage.documents import deadlines_of
from storage.models import Case, CaseEvent

LIFECYCLE = frozenset(
    {"accepted", "redirected", "assigned", "returned", "replied", "closed", "extended", "note"}
)


@dataclass(frozen=True)
class Words:
    """The catalog, the office and its time zone: everything a sentence needs."""

    t: Texts
    office: OfficeConfig
    tz: tzinfo

    def when(self, moment: datetime | str | None) -> str:
        if isinstance(moment, str):
            try:
                moment = datetime.fromisoformat(moment)
            except ValueError:
                return str(moment)
        if moment is None:
            return ""
        return f"{moment.astimezone(self.tz):%Y-%m-%d %H:%M}"

    def day(self, moment: datetime) -> str:
        return f"{moment.astimezone(self.tz):%Y-%m-%d}"

    def status(self, status: str) -> str:
        return self.t(f"status.{status}") if f"status.{status}" in ZH else status

    def category(self, key: str) -> str:
        found = self.office.category(key)
        return found.label(self.t.lang) if found else key

    def department(self, code: str) -> str:
        return self.office.departments.name(code)

    def level(self, number: int) -> str:
        found = self.office.escalation.level(number)
        if found is None:
            return self.t("desk.case.level_none") if not number else str(number)
        return self.t("desk.case.level_value", level=number, name=found.name)

    def mailbox(self, key: str) -> str:
        found = self.office.mailbox(key)
        return found.name if found else key

    def channel(self, name: str) -> str:
        key = f"desk.channel.{name}"
        return self.t(key) if key in ZH else name

    def verb(self, step: str) -> str:
        return self.t(f"desk.action.{step}")

    def who(self, event: CaseEvent) -> str:
        actor = event.actor
        if actor.startswith("staff:"):
            return str(event.data.get("staff_name") or actor.removeprefix("staff:"))
        if actor.startswith("citizen:"):
            return self.t("desk.who.citizen", channel=self.channel(actor.removeprefix("citizen:")))
        return self.t("desk.who.backoffice" if actor == "backoffice" else "desk.who.system")

    def event(self, event: CaseEvent) -> str:
        data: dict[str, Any] = {k: v for k, v in event.data.items() if isinstance(k, str)}
        values = _Blank(
            {
                **{k: str(v) for k, v in data.items()},
                "who": self.who(event),
                "type": event.type,
            }
        )
        for field in ("department", "from_department"):
            if field in data:
                values[field] = self.department(str(data[field]))
        if event.type == "escalated":
            values["reason"] = escalation_reason(self.t, data)
        if data.get("outcome"):
            values["outcome_label"] = self.t(f"outcome.{data['outcome']}")
        for field in ("finish_by", "review_by", "decide_by", "due_at", "until"):
            if field in data:
                values[field] = self.when(data[field])
        if "deadline" in data:
            values["deadline"] = (
                self.t(f"desk.due.{data['deadline']}")
                if data["deadline"] in DUE_KINDS
                else str(data["deadline"])
            )
        key = f"desk.event.{event.type}"
        if event.type == "linked" and data.get("duplicate"):
            key = "desk.event.linked.duplicate"
        template = key if key in ZH else "desk.event.other"
        return self.t.catalog.text(self.t.lang, template).format_map(values).strip()

    def time_left(self, due: datetime, now: datetime) -> tuple[str, bool]:
        """("还剩3天", False) or ("已超期2天", True)."""
        seconds = (due - now).total_seconds()
        late = seconds < 0
        hours = abs(seconds) / 3600
        if hours >= 48:
            key, n = ("desk.due.over_days" if late else "desk.due.left_days"), int(hours // 24)
        else:
            key, n = ("desk.due.over_hours" if late else "desk.due.left_hours"), max(1, int(hours))
        return self.t(key, n=n), late

    def deadlines(self, case: Case, now: datetime) -> list[tuple[str, str, bool]]:
        """What is due, as (what and when, time left, overdue), the open legal deadline first."""
        lines = []
        due = next_deadline(deadlines_of(case))
        if due is not None:
            left, late = self.time_left(due.due_at, now)
            label = self.t(f"desk.due.{due.kind}")
            lines.append(
                (self.t("desk.due.at", label=label, date=self.when(due.due_at)), left, late)
            )
        if case.extended_days:
            lines.append(
                (
                    self.t(
                        "desk.due.extended", days=case.extended_days, reason=case.extension_reason
                    ),
                    "",
                    False,
                )
            )
        for stage in case.stages or []:
            name = str(stage.get("name", ""))
            if stage.get("met_at"):
                lines.append(
                    (
                        self.t("desk.due.stage_met", name=name, date=self.when(stage["met_at"])),
                        "",
                        False,
                    )
                )
            elif stage.get("due_at") and case.status not in ("closed", "rated", "redirected"):
                moment = datetime.fromisoformat(stage["due_at"])
                left, late = self.time_left(moment, now)
                lines.append(
                    (self.t("desk.due.stage", name=name, date=self.when(moment)), left, late)
                )
        return lines


DUE_KINDS = frozenset({"accept", "finish", "review", "review_decision"})


class _Blank(dict[str, str]):
    """Missing fields read as nothing, so an older event with fewer fields still reads."""

    def __missing__(self, key: str) -> str:
        return ""
