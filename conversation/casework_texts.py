"""Sentences of the office's case work: routing, 督办, 批示, mailboxes and suggestions' outcomes,
for citizens (notices, history, 领导信箱) and for staff (alerts, the desk)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

CASEWORK_ZH: dict[str, str] = {
    # The citizen's notices and history
    "notify.instructed": "您反映的事项 {code} 有领导批示：{note}\n我们会抓紧办理，有进展会告诉您。",
    "notify.adopted": "您提的建议 {code} 有结果了：{outcome}。{reason}\n谢谢您为大家出主意！",
    "template.status.instructed": "领导已批示",
    "template.status.adopted": "建议已有结果",
    "history.instructed": "领导批示：{note}",
    "history.escalated": "已列入督办，加快办理",
    "history.adopted": "建议{outcome}：{reason}",
    "outcome.adopted": "已采纳",
    "outcome.partly": "部分采纳",
    "outcome.not_adopted": "暂未采纳",
    # 领导信箱
    "menu.mailbox": "领导信箱",
    "mailbox.list": "请回复数字，选择您要写信的领导信箱：",
    "mailbox.entry": "{name}（{leader}）",
    "mailbox.none": "本单位暂未开设领导信箱。要反映问题请回复“1”。",
    "mailbox.chosen": "您写信给：{name}。信件会由{leader}和工作人员阅处。",
    "mailbox.submitted": "您的来信已收到，编号 {code}。{name}会阅处，{due}前告诉您是否受理。",
    # Staff alerts
    "staff.alert.returned": "事项被退回",
    "staff.alert.instructed": "领导批示",
    "staff.alert.escalated": "督办升级",
    "staff.alert.returned_detail": "退回给：{to}；退回单位：{department}；理由：{reason}",
    "staff.alert.instructed_detail": "批示（{who}）：{note}；承办：{departments}",
    "staff.alert.escalated_detail": "督办级别：{level}级（{name}）；原因：{reason}；请：{targets}",
    "staff.alert.targets.handling": "承办单位",
    "staff.alert.targets.role": "全体{role}",
    "escalation.reason.deadline": "{deadline}已超期",
    "escalation.reason.urged": "群众第{count}次催办",
    "escalation.reason.repeat": "同一事项第{filing}次反映（首件 {first}），提级包案",
    "escalation.reason.staff": "{who}督办：{reason}",
    "desk.action.escalate": "督办",
    "desk.field.escalate_reason": "督办要求（会通知该级别的人员）",
    "desk.escalate.top": "已是最高督办级别。",
    "desk.event.linked": "与 {to} 是同一事项：第{filing}次反映（首件 {first}，相似度{score}）。",
    "desk.case.repeat": "重复信访",
    "desk.case.duplicates": "可能重复（他人反映的同一事项）",
    "desk.case.duplicate_row": "{code} · {when} · 相似度{score}",
    "desk.case.duplicate_linked": "已关联",
    "desk.action.linked": "关联",
    "desk.event.linked.duplicate": "{who}：与 {to} 是同一事项（他人反映，重件）。",
    "desk.case.repeat_value": "第{filing}次反映",
    # The desk
    "desk.action.instructed": "批示",
    "desk.action.adopted": "建议结果",
    "desk.field.co_departments": "协办单位（可多选）",
    "desk.field.outcome": "结果",
    "desk.field.instruction": "批示内容（会告诉群众）",
    "desk.event.instructed": "{who}批示：{note}",
    "desk.event.escalated": "督办升至{level}级（{level_name}）：{reason}",
    "desk.event.adopted": "{who}：建议{outcome_label}。{reason}",
    "desk.case.owner": "首问责任人",
    "desk.case.co_departments": "协办单位",
    "desk.case.level": "督办级别",
    "desk.case.level_none": "未督办",
    "desk.case.level_value": "{level}级 · {name}",
    "desk.case.mailbox": "领导信箱",
    "desk.case.outcome": "建议结果",
    "desk.invalid.department": "没有这个承办单位：{name}。请从列表中选择。",
    "desk.invalid.outcome": "请选择建议的结果。",
}

CASEWORK_EN: dict[str, str] = {
    "notify.instructed": "A leader wrote an instruction on your matter {code}: {note}\nWe are speeding it up and will tell you of progress.",
    "notify.adopted": "Your suggestion {code} has an outcome: {outcome}. {reason}\nThank you for your idea!",
    "template.status.instructed": "Leader's instruction",
    "template.status.adopted": "Outcome decided",
    "history.instructed": "a leader's instruction: {note}",
    "history.escalated": "put under supervision to speed it up",
    "history.adopted": "suggestion {outcome}: {reason}",
    "outcome.adopted": "adopted",
    "outcome.partly": "partly adopted",
    "outcome.not_adopted": "not adopted for now",
    "menu.mailbox": "Leaders' mailboxes",
    "mailbox.list": "Reply with a number to choose the mailbox you write to:",
    "mailbox.entry": "{name} ({leader})",
    "mailbox.none": "This office has no leaders' mailbox. To report a matter, reply 1.",
    "mailbox.chosen": "You are writing to: {name}. {leader} and their staff will read it.",
    "mailbox.submitted": "Your letter is received, code {code}. {name} will read it; you will hear by {due} whether it is accepted.",
    "staff.alert.returned": "A case was returned",
    "staff.alert.instructed": "Leader's instruction",
    "staff.alert.escalated": "Supervision raised",
    "staff.alert.returned_detail": "Returned to: {to}; by: {department}; reason: {reason}",
    "staff.alert.instructed_detail": "Instruction ({who}): {note}; handled by: {departments}",
    "staff.alert.escalated_detail": "Supervision level {level} ({name}); reason: {reason}; for: {targets}",
    "staff.alert.targets.handling": "the handling departments",
    "staff.alert.targets.role": "every {role}",
    "escalation.reason.deadline": "{deadline} missed",
    "escalation.reason.urged": "the citizen urged it {count} times",
    "escalation.reason.repeat": "filing {filing} of the same matter (first {first}): raised",
    "escalation.reason.staff": "{who} supervises: {reason}",
    "desk.action.escalate": "Supervise",
    "desk.field.escalate_reason": "What is required (the level's people are told)",
    "desk.escalate.top": "Already at the top level of supervision.",
    "desk.event.linked": "The same matter as {to}: filing {filing} (first {first}, similarity {score}).",
    "desk.case.repeat": "Repeat",
    "desk.case.duplicates": "Possible duplicates (the same matter from someone else)",
    "desk.case.duplicate_row": "{code} · {when} · similarity {score}",
    "desk.case.duplicate_linked": "linked",
    "desk.action.linked": "Link",
    "desk.event.linked.duplicate": "{who}: the same matter as {to} (filed by someone else).",
    "desk.case.repeat_value": "filing {filing}",
    "desk.action.instructed": "Instruct",
    "desk.action.adopted": "Suggestion outcome",
    "desk.field.co_departments": "Co-handling departments",
    "desk.field.outcome": "Outcome",
    "desk.field.instruction": "Instruction (the citizen is told)",
    "desk.event.instructed": "{who} instructed: {note}",
    "desk.event.escalated": "Supervision raised to level {level} ({level_name}): {reason}",
    "desk.event.adopted": "{who}: suggestion {outcome_label}. {reason}",
    "desk.case.owner": "First responsible",
    "desk.case.co_departments": "Co-handling",
    "desk.case.level": "Supervision",
    "desk.case.level_none": "none",
    "desk.case.level_value": "level {level} · {name}",
    "desk.case.mailbox": "Leader's mailbox",
    "desk.case.outcome": "Suggestion outcome",
    "desk.invalid.department": "No such department: {name}. Choose one from the list.",
    "desk.invalid.outcome": "Choose the suggestion's outcome.",
}


def escalation_reason(t: Callable[..., str], data: Mapping[str, Any]) -> str:
    """Why an `escalated` event raised the level, in words (the event keeps the facts)."""
    cause = data.get("cause")
    if cause == "repeat":
        return t(
            "escalation.reason.repeat", filing=data.get("filing", ""), first=data.get("first", "")
        )
    if cause == "staff":
        return t(
            "escalation.reason.staff", who=data.get("staff_name", ""), reason=data.get("reason", "")
        )
    if cause == "urged":
        return t("escalation.reason.urged", count=data.get("count", ""))
    if cause == "deadline":
        kind = str(data.get("deadline", ""))
        label = kind.removeprefix("stage:") if kind.startswith("stage:") else t(f"desk.due.{kind}")
        return t("escalation.reason.deadline", deadline=label)
    return str(data.get("reason") or cause or "")
