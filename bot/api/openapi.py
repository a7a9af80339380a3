"""The OpenAPI 3 description of /api/v1, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from conversation.cases.lifecycle import BACKOFFICE_EVENTS, STATUSES
from conversation.cases.progress import LIMITS, MAX_CO_DEPARTMENTS, OUTCOMES

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}

_CASE = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "pattern": "^XF[0-9]{8}-[0-9A-HJKMNP-TV-Z]{6}$"},
        "status": {
            "type": "string",
            "enum": list(STATUSES),
        },
        "kind": {"type": "string", "enum": ["petition", "suggestion"]},
        "category": {"type": "string"},
        "description": {"type": "string"},
        "location": {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "lat": {"type": ["number", "null"]},
                "lng": {"type": ["number", "null"]},
            },
        },
        "contact": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "phone": {"type": "string"}},
        },
        "anonymous": {
            "type": "boolean",
            "description": "filed without name and mobile: contact is always empty",
        },
        "channel": {"type": "string"},
        "source": {"type": "string"},
        "department": {"type": "string", "description": "the lead department's code (主办)"},
        "co_departments": {"type": "array", "items": {"type": "string"}},
        "owner": {"type": "string", "description": "first staff member to take it (首问)"},
        "level": {"type": "integer", "description": "督办 level, 0 = none"},
        "mailbox": {"type": "string", "description": "leader's mailbox key, or empty"},
        "outcome": {"type": ["string", "null"], "enum": [*OUTCOMES, None]},
        "answers": {"type": "object"},
        "attachments": {"type": "array", "items": {"type": "object"}},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "deadlines": {"type": "object"},
        "events": {"type": "array", "items": {"$ref": "#/components/schemas/TimelineEvent"}},
        "rating": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Rating"}]},
    },
}


_EXAMPLE_FILING = {
    "kind": "petition",
    "category": "city",
    "description": "幸福路12号门口的井盖松动了，电动车压过去很响，担心有人摔倒。",
    "location": {"text": "XX区幸福路12号", "lat": 31.2304, "lng": 121.4737},
    "contact": {"name": "李四", "phone": "13912345678"},
    "source": "grid:07",
    "department": "区城管局",
}

_FILING = {
    "type": "object",
    "required": ["description", "source"],
    "additionalProperties": False,
    "properties": {
        "kind": {"type": "string", "enum": ["petition", "suggestion"], "default": "petition"},
        "category": {
            "type": "string",
            "description": "a category key of the office file; needed when its form asks for one",
        },
        "description": {"type": "string", "description": "as long as the office's form allows"},
        "location": {
            "type": "object",
            "properties": {
                "text": {"type": "string", "maxLength": 200},
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "lng": {"type": "number", "minimum": -180, "maximum": 180},
            },
        },
        "contact": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 30},
                "phone": {
                    "type": "string",
                    "description": "a Chinese mobile or +country number; the receipt goes to it by SMS",
                },
            },
        },
        "anonymous": {
            "type": "boolean",
            "default": False,
            "description": "file without any contact (then give no contact)",
        },
        "source": {
            "type": "string",
            "pattern": "^[a-z][a-z0-9_-]{0,15}:[A-Za-z0-9_.-]{1,47}$",
            "description": "who files: grid:07, kiosk:lobby-1, staff:wangfang",
        },
        "department": {"type": "string", "maxLength": 100, "description": "routing hint"},
        "mailbox": {
            "type": "string",
            "maxLength": 40,
            "description": "a leader's mailbox (领导信箱)",
        },
        "answers": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "the office form's own questions (text, or a choice's number or words)",
        },
        "language": {"type": "string", "enum": ["zh", "en"], "default": "zh"},
    },
}


def _responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": ok}}}
    }
    for status in (401, *errors):
        responses[str(status)] = {
            "description": "Error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return responses


def _stats_responses() -> dict[str, Any]:
    responses = _responses({"type": "object"}, 422)
    # format=csv: the same figures for Excel.
    responses["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    return responses


def openapi_document() -> dict[str, Any]:
    case_ref = {"$ref": "#/components/schemas/Case"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Minyi back-office API",
            "version": "1",
            "description": "Cases filed through Minyi's channels, their timelines, and the event feed.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/cases": {
                "get": {
                    "summary": "List cases, oldest first, keyset-paged",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "department",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "cases this department leads or co-handles",
                        },
                        {
                            "name": "since",
                            "in": "query",
                            "schema": {"type": "string", "format": "date-time"},
                            "allowEmptyValue": True,  # empty = not given
                            "description": "only cases updated at or after this time",
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "next_cursor of the previous page",
                        },
                    ],
                    "responses": _responses(
                        {
                            "type": "object",
                            "properties": {
                                "cases": {"type": "array", "items": case_ref},
                                "next_cursor": {"type": ["string", "null"]},
                            },
                        },
                        422,
                    ),
                },
                "post": {
                    "summary": "File a case for a citizen (staff 代办, grid workers 网格员, kiosks)",
                    "description": "Checked against the office's form for the kind, with the "
                    "chat's own validators; filed like a chat filing (deadlines, stages, "
                    "`case.submitted`), channel `api`. With a phone the citizen gets the code and "
                    "the next legal step by SMS.",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "schema": {"type": "string", "maxLength": 200},
                            "description": "the same key with the same body answers the same case "
                            "(header Idempotent-Replayed); with another body it answers 422",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Filing"},
                                "examples": {
                                    "grid_worker": {"value": _EXAMPLE_FILING},
                                    "anonymous_kiosk": {
                                        "value": {
                                            "category": "environment",
                                            "description": "夜里工地施工噪音很大，影响休息。",
                                            "location": {"text": "XX区幸福路8号工地"},
                                            "anonymous": True,
                                            "source": "kiosk:lobby-1",
                                        }
                                    },
                                },
                            }
                        },
                    },
                    "responses": {
                        **{k: v for k, v in _responses(case_ref, 413).items() if k != "200"},
                        "201": {
                            "description": "Filed (or replayed by its Idempotency-Key)",
                            "content": {"application/json": {"schema": case_ref}},
                        },
                        "422": {
                            "description": "Every wrong field at once, e.g. "
                            '{"error": "invalid", "fields": {"contact.phone": "这个号码不对。…"}}',
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "allOf": [
                                            {"$ref": "#/components/schemas/Error"},
                                            {
                                                "type": "object",
                                                "properties": {
                                                    "fields": {
                                                        "type": "object",
                                                        "additionalProperties": {"type": "string"},
                                                    }
                                                },
                                            },
                                        ]
                                    }
                                }
                            },
                        },
                    },
                },
            },
            "/cases/{code}/events": {
                "post": {
                    "summary": "Report a step of the case's lifecycle (受理, 交办, 答复, 办结 …)",
                    "parameters": [
                        {
                            "name": "code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "schema": {"type": "string", "maxLength": 200},
                            "description": "the same key with the same body replays (header Idempotent-Replayed); "
                            "with another body it answers 422",
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Progress"}
                            }
                        },
                    },
                    "responses": _responses(case_ref, 404, 409, 413, 422),
                }
            },
            "/cases/{code}": {
                "get": {
                    "summary": "One case with its timeline, deadlines and rating",
                    "parameters": [
                        {
                            "name": "code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": _responses(case_ref, 404),
                }
            },
            "/cases/{code}/verify": {
                "get": {
                    "summary": "件件可倒查: whether the case's timeline is whole and unaltered "
                    "(its hash chain)",
                    "parameters": [
                        {
                            "name": "code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": _responses(
                        {
                            "type": "object",
                            "properties": {
                                "code": {"type": "string"},
                                "verified": {"type": "boolean"},
                                "events": {"type": "integer"},
                                "broken_at": {"type": ["integer", "null"]},
                                "reason": {"type": ["string", "null"]},
                            },
                        },
                        404,
                    ),
                }
            },
            "/stats": {
                "get": {
                    "summary": "满意率, 参评率, 及时受理率, 按期答复率, 一次性化解率 and 重复信访率 "
                    "with their counts for cases filed in [from, to), overall or in ranked rows "
                    "(docs/measures.md)",
                    "parameters": [
                        {
                            "name": "from",
                            "in": "query",
                            "schema": {"type": "string", "format": "date-time"},
                            "allowEmptyValue": True,  # empty = not given
                            "description": "default: 30 days before `to`",
                        },
                        {
                            "name": "to",
                            "in": "query",
                            "schema": {"type": "string", "format": "date-time"},
                            "allowEmptyValue": True,  # empty = not given
                            "description": "default: now",
                        },
                        {
                            "name": "by",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "enum": ["department", "category", "week", "channel"],
                            },
                        },
                        {
                            "name": "format",
                            "in": "query",
                            "schema": {"type": "string", "enum": ["json", "csv"]},
                            "description": "csv: UTF-8 with a BOM, one line per row and the total",
                        },
                    ],
                    "responses": _stats_responses(),
                }
            },
            "/events": {
                "get": {
                    "summary": "The events of the back-office stream, for back offices that poll",
                    "parameters": [
                        {
                            "name": "after",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                        },
                    ],
                    "responses": _responses(
                        {
                            "type": "object",
                            "properties": {
                                "events": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Event"},
                                },
                                "next": {"type": "integer"},
                            },
                        },
                        422,
                    ),
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": _ERROR,
                "Case": _CASE,
                "Filing": _FILING,
                "TimelineEvent": {
                    "type": "object",
                    "properties": {
                        "seq": {"type": "integer"},
                        "type": {"type": "string"},
                        "actor": {"type": "string"},
                        "data": {"type": "object"},
                        "at": {"type": "string", "format": "date-time"},
                        "hash": {"type": "string"},
                    },
                },
                "Progress": {
                    "type": "object",
                    "required": ["type"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"type": "string", "enum": list(BACKOFFICE_EVENTS)},
                        "note": {
                            "type": "string",
                            "maxLength": LIMITS["note"],
                            "description": "needed by replied (the answer) and note",
                        },
                        "department": {
                            "type": "string",
                            "maxLength": LIMITS["department"],
                            "description": "needed by assigned, and by redirected (where to go instead)",
                        },
                        "staff": {"type": "string", "maxLength": LIMITS["staff"]},
                        "reason": {
                            "type": "string",
                            "maxLength": LIMITS["reason"],
                            "description": "needed by redirected, returned and extended",
                        },
                        "days": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 30,
                            "description": "extended only (default 30)",
                        },
                        "stage": {
                            "type": "string",
                            "maxLength": LIMITS["stage"],
                            "description": "marks a local SLA stage as met",
                        },
                        "co_departments": {
                            "type": "array",
                            "maxItems": MAX_CO_DEPARTMENTS,
                            "items": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": LIMITS["department"],
                            },
                            "description": "assigned only: co-handling departments (协办)",
                        },
                        "outcome": {
                            "type": "string",
                            "enum": list(OUTCOMES),
                            "description": "adopted only (a suggestion's 采纳 / 部分采纳 / 未采纳)",
                        },
                    },
                },
                "Rating": {
                    "type": "object",
                    "properties": {
                        "score": {"type": "integer"},
                        "scale": {"type": "integer"},
                        "label": {"type": "string"},
                        "comment": {"type": "string"},
                        "channel": {"type": "string"},
                        "at": {"type": "string", "format": "date-time"},
                    },
                },
                "Event": {
                    "type": "object",
                    "required": ["id", "seq", "type", "case", "data"],
                    "properties": {
                        "id": {"type": "string", "description": "unique; deduplicate on it"},
                        "seq": {
                            "type": "integer",
                            "description": "position in the feed; pass the last one as `after`",
                        },
                        "type": {"type": "string"},
                        "case": {"type": "string"},
                        "data": {"type": "object"},
                        "created_at": {"type": "string", "format": "date-time"},
                    },
                },
            },
        },
    }
