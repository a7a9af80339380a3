"""Every form of the office file (`[forms.<name>]`), run from its declaration.

State: `flow` is the form's name, `step` the field being asked (or `_guess` / `_confirm` /
`_change`), `data` the answers. Fields already answered (e.g. a description given as free text
at the menu) are skipped when moving forward; `返回` always goes back exactly one step.

A matter told in words ("解放北路100号楼下的饭店天天半夜吵") gives its place and suggests its
category (conversation/story.py); both are only guesses until the citizen confirms them at the
`_guess` step, where a wrong one is changed with one reply — so the filing takes six messages
instead of eight, and a wrong guess never becomes a wrong case.
"""

from __future__ import annotations

import uuid
from typing import Any

from .. import validators
from ..commands import Results, SubmitCase, Supplement
from ..messages import Choice, Media, Reply
from ..office_forms import FORM_ANSWER, FormSpec, StepSpec
from ..similarity import similarity
from ..story import read as read_story
from ..validators import Invalid
from .base import DONE, SKIP, YES, Context, Outcome, numbered, pick
from .menu import menu_reply

ANONYMOUS = frozenset({"匿名", "匿名反映", "我要匿名", "anonymous", "anon"})
CONFIRM = "_confirm"
CHANGE = "_change"
GUESS = "_guess"
# Asked on `1 提交` when the asker has an open matter that reads like this one (重复信访):
# the same matter (补充 to it) or a new one. The matter asked about waits in the data.
REPEAT = "_repeat"
QUOTE = 30  # characters of the earlier matter's description shown in the question
# The fields read from the citizen's words and not confirmed yet, in the form's order.
GUESSED = "_guessed"
# Words that say a guess is wrong without saying which (the only one, then).
WRONG = frozenset({"修改", "改", "不对", "错了", "不是", "change", "wrong"})
# Ways of saying "right" beyond YES, so that none is taken for a corrected place.
RIGHT = frozenset({"对的", "是的", "没错", "正确", "对了", "好的", "可以", "嗯", "ok", "right"})
PHOTO_LIMIT = 9
# A short video of the problem is as good as a photo: both are taken at the photo step.
VISUAL = ("image", "video")
# What a form says on submit when the office file gives it no `confirmation` of its own.
CONFIRMATIONS = {"petition": "submitted", "suggestion": "submitted.suggestion"}
# Where a letter's leader's mailbox (领导信箱, flows/mailboxes.py) waits in the form's data.
MAILBOX = "_mailbox"


async def open_form(ctx: Context) -> Outcome:
    """Opened from the menu: the state has entered the form, whose name says which it is."""
    return start(ctx, ctx.office.forms[ctx.state.flow])


async def handle(ctx: Context) -> Outcome:
    """A message while the form is being filled."""
    form = ctx.office.forms[ctx.state.flow]
    if ctx.state.step == CONFIRM and _confirm_choice(ctx) == 0 and REPEAT not in ctx.state.data:
        asked = await _ask_if_repeat(ctx, form)
        if asked is not None:
            return asked
    return answer(ctx, form)


def start(ctx: Context, form: FormSpec, prefill: dict[str, Any] | None = None) -> Outcome:
    ctx.state.draft = None
    # The form's own id makes its submission idempotent, whatever is re-delivered or replayed.
    ctx.state.enter(form.name, "", {**(prefill or {}), "_form": uuid.uuid4().hex})
    intro = "form.start_free_text" if prefill else "form.start"
    # The guess's own head says the words were noted.
    outcome = Outcome() if ctx.state.data.get(GUESSED) else Outcome().say(ctx.t(intro))
    return outcome.extend(_forward(ctx, form, from_index=0))


def start_told(ctx: Context, form: FormSpec, text: str) -> Outcome:
    """A matter told in words: the form starts with them as the description, and with the place
    and category they suggest, for the citizen to confirm."""
    story = read_story(ctx.office, ctx.places, text)
    prefill: dict[str, Any] = {"description": text}
    category = _field_of(form, "category")
    location = _field_of(form, "location")
    if story.category is not None and category:
        prefill["_suggested"] = story.category.key
    if story.place and location:
        prefill[location] = {"text": story.place, "lat": None, "lng": None}
        if story.category is not None and category:
            prefill[category] = story.category.key
        prefill[GUESSED] = [f for f in (category, location) if f and f in prefill]
    return start(ctx, form, prefill)


def resume(ctx: Context, form: FormSpec) -> Outcome:
    """Re-ask the question the citizen stopped at."""
    step = ctx.state.step
    if step == CONFIRM:
        return _confirm_prompt(ctx, form)
    if step == CHANGE:
        return _change_prompt(ctx, form)
    if step == GUESS:
        return _guess_prompt(ctx, form)
    if step == REPEAT:
        return _repeat_prompt(ctx)
    return Outcome(replies=[_prompt(ctx, form, form.steps[form.index(step)])])


def step_label(ctx: Context, form: FormSpec, step: str) -> str:
    if step in (CONFIRM, CHANGE, REPEAT):
        return ctx.t("confirm.submit")
    if step == GUESS:
        return ctx.t("guess.label")
    return _field_label(ctx, form.steps[form.index(step)])


def answer(ctx: Context, form: FormSpec) -> Outcome:
    step = ctx.state.step
    if step == CONFIRM:
        return _on_confirm(ctx, form)
    if step == CHANGE:
        return _on_change(ctx, form)
    if step == GUESS:
        return _on_guess(ctx, form)
    if step == REPEAT:
        return _on_repeat(ctx, form)
    spec = form.steps[form.index(step)]
    inbound = ctx.inbound

    if inbound.kind in VISUAL and spec.type != "photos":
        return _take_photos_elsewhere(ctx, form, spec)
    if inbound.kind == "voice" and not inbound.text:
        return _take_voice(ctx, form, spec)
    if ctx.word in SKIP and spec.type != "photos":
        if not spec.optional:
            return Outcome().say(ctx.t("err.not_optional")).extend(resume(ctx, form))
        ctx.state.data[spec.field] = None
        return _advance(ctx, form)

    if spec.type == "name" and ctx.word in ANONYMOUS:
        return _anonymous(ctx, form)
    if spec.type in ("name", "phone") and ctx.state.data.pop("_anonymous", False):
        # A name after all: the mobile is asked again, in its turn.
        ctx.state.data.pop("_editing", None)
        for other in form.steps:
            if other.type == "phone":
                ctx.state.data.pop(other.field, None)
    value = _accept(ctx, form, spec)
    if isinstance(value, Outcome):
        return value
    if isinstance(value, Invalid):
        return Outcome(replies=[Reply(ctx.t(value.key, **value.values)), _prompt(ctx, form, spec)])
    ctx.state.data[spec.field] = value
    if spec.type == "description":
        ctx.remember_words()
        _guess_place(ctx, form, str(value))
    outcome = Outcome()
    if spec.type == "category":
        category = ctx.office.category(value)
        if category is not None and category.notice:
            outcome.say(ctx.t(category.notice))
    return outcome.extend(_advance(ctx, form))


def _anonymous(ctx: Context, form: FormSpec) -> Outcome:
    """`匿名` at the name step: no name and no mobile, said plainly what that means."""
    data = ctx.state.data
    data["_anonymous"] = True
    for spec in form.steps:
        if spec.type in ("name", "phone"):
            data[spec.field] = None
    data.pop("_editing", None)
    outcome = Outcome().say(ctx.t("anonymous.meaning"))
    return outcome.extend(_forward(ctx, form, from_index=form.index(ctx.state.step) + 1))


def back(ctx: Context, form: FormSpec) -> Outcome | None:
    """One step back; None when already at the first question (the caller leaves the form)."""
    step = ctx.state.step
    if step in (CHANGE, REPEAT):
        ctx.state.step = CONFIRM
        return _confirm_prompt(ctx, form)
    if step == GUESS:
        # Back to before the first guess, which is forgotten with the others.
        guessed = ctx.state.data.pop(GUESSED, [])
        for field_name in guessed:
            ctx.state.data.pop(field_name, None)
        step = ctx.state.step = guessed[0] if guessed else form.steps[0].field
    index = len(form.steps) if step == CONFIRM else form.index(step)
    if index == 0:
        return None
    ctx.state.data.pop("_editing", None)
    previous = form.steps[index - 1]
    ctx.state.step = previous.field
    return Outcome(replies=[_prompt(ctx, form, previous)])


# -- moving between questions ------------------------------------------------------------------


def _advance(ctx: Context, form: FormSpec) -> Outcome:
    if ctx.state.data.pop("_editing", False):
        ctx.state.step = CONFIRM
        return _confirm_prompt(ctx, form)
    return _forward(ctx, form, from_index=form.index(ctx.state.step) + 1)


def _forward(ctx: Context, form: FormSpec, from_index: int) -> Outcome:
    if ctx.state.data.get(GUESSED):
        ctx.state.step = GUESS
        return _guess_prompt(ctx, form)
    for spec in form.steps[from_index:]:
        if spec.field not in ctx.state.data:
            ctx.state.step = spec.field
            return Outcome(replies=[_prompt(ctx, form, spec)])
    ctx.state.step = CONFIRM
    return _confirm_prompt(ctx, form)


def _prompt(ctx: Context, form: FormSpec, spec: StepSpec) -> Reply:
    t = ctx.t
    number = f"（{form.index(spec.field) + 1}/{len(form.steps)}）"
    if spec.prompt is not None:
        text = spec.prompt(ctx.lang)
    elif spec.type in ("text", "choice"):
        text = f"{_field_label(ctx, spec)}：{t('ask.' + spec.type)}"
    elif spec.type == "photos":
        text = t("ask.photos", max=_photo_limit(spec))
    else:
        text = t("ask." + spec.type)
    if spec.optional and spec.type != "photos":
        text += t("form.optional")
    choices: tuple[Choice, ...] = ()
    if spec.type == "category":
        categories = _category_order(ctx)
        suggested = ctx.state.data.get("_suggested")
        if suggested and categories and categories[0].key == suggested:
            text = t("ask.category.suggested", label=categories[0].label(ctx.lang)) + "\n" + text
        choices = numbered([c.label(ctx.lang) for c in categories])
    elif spec.type == "choice":
        choices = numbered([o(ctx.lang) for o in spec.options])
    elif spec.type == "photos" and ctx.state.data.get("photos"):
        text = t("photos.received", n=len(ctx.state.data["photos"])) + "\n" + text
    return Reply(text + number, choices)


def _category_order(ctx: Context) -> list[Any]:
    categories = list(ctx.office.categories)
    suggested = ctx.state.data.get("_suggested")
    for i, category in enumerate(categories):
        if category.key == suggested:
            categories.insert(0, categories.pop(i))
            break
    return categories


# -- reading one answer ------------------------------------------------------------------------


def _accept(ctx: Context, form: FormSpec, spec: StepSpec) -> Any:
    inbound = ctx.inbound
    if spec.type == "location":
        return validators.location(inbound.text, inbound.location)
    if spec.type == "photos":
        return _on_photos(ctx, form, spec)
    if inbound.location is not None or (inbound.kind not in ("text", "voice")):
        return Invalid("err.need_text", {})
    if spec.type == "category":
        categories = _category_order(ctx)
        index = pick(ctx, [c.label(ctx.lang) for c in categories])
        if index is None:
            return Invalid("err.choice", {"n": len(categories)})
        return categories[index].key
    if spec.type == "choice":
        index = pick(ctx, [o(ctx.lang) for o in spec.options])
        if index is None:
            return Invalid("err.choice", {"n": len(spec.options)})
        return spec.options[index]("zh")
    if spec.type == "description":
        return validators.description(inbound.text, spec.min or 10, spec.max or 2000)
    if spec.type == "name":
        return validators.person_name(inbound.text)
    if spec.type == "phone":
        return validators.phone(inbound.text)
    return validators.free_text(inbound.text, spec.min or 1, spec.max or 500)


def _photo_limit(spec: StepSpec) -> int:
    return min(spec.max or PHOTO_LIMIT, PHOTO_LIMIT)


def _add_photos(ctx: Context, limit: int) -> int:
    photos = ctx.state.data.setdefault("photos", []) or []
    ctx.state.data["photos"] = photos
    for media in ctx.inbound.media:
        if media.kind in VISUAL and len(photos) < limit:
            photos.append(
                {"kind": media.kind, "ref": media.ref, "url": media.url, "file": media.file}
            )
    return len(photos)


def _on_photos(ctx: Context, form: FormSpec, spec: StepSpec) -> Outcome:
    limit = _photo_limit(spec)
    if ctx.inbound.kind in VISUAL:
        count = _add_photos(ctx, limit)
        if count >= limit:
            return Outcome().say(ctx.t("photos.full", n=count)).extend(_advance(ctx, form))
        return Outcome().say(ctx.t("photos.received", n=count))
    if ctx.word in DONE or ctx.word in SKIP:
        ctx.state.data.setdefault("photos", [])
        return _advance(ctx, form)
    return Outcome(replies=[Reply(ctx.t("err.photos.text"))])


def _take_photos_elsewhere(ctx: Context, form: FormSpec, spec: StepSpec) -> Outcome:
    """A photo sent early is kept (when the form takes photos) rather than refused."""
    if not form.has("photos"):
        return Outcome().say(ctx.t("photos.not_now")).extend(resume(ctx, form))
    count = _add_photos(ctx, _photo_limit(form.steps[form.index("photos")]))
    return Outcome().say(ctx.t("photos.received", n=count)).extend(resume(ctx, form))


def _take_voice(ctx: Context, form: FormSpec, spec: StepSpec) -> Outcome:
    """A voice note without transcript goes with the case; a summary in words is still needed."""
    voices = ctx.state.data.setdefault("_voices", [])
    for media in ctx.inbound.media:
        if media.kind == "voice":
            voices.append({"kind": "voice", "ref": media.ref, "url": media.url})
    key = "voice.saved" if spec.type == "description" else "voice.type_please"
    return Outcome().say(ctx.t(key)).extend(resume(ctx, form))


# -- confirming what was read from the citizen's words ------------------------------------------


def _field_of(form: FormSpec, step_type: str) -> str:
    return next((s.field for s in form.steps if s.type == step_type), "")


def _guess_place(ctx: Context, form: FormSpec, description: str) -> None:
    """A description that names its place spares the citizen writing it again: it is offered
    for confirmation instead of the question (unless a place is given already)."""
    location = _field_of(form, "location")
    data = ctx.state.data
    if not location or location in data or data.get("_editing"):
        return
    place = ctx.places.find(description) if ctx.places is not None else None
    if place:
        data[location] = {"text": place, "lat": None, "lng": None}
        data[GUESSED] = [location]


def _guesses(ctx: Context, form: FormSpec) -> list[StepSpec]:
    return [form.steps[form.index(f)] for f in ctx.state.data.get(GUESSED) or [] if form.has(f)]


def _place_only(guessed: list[StepSpec]) -> bool:
    return len(guessed) == 1 and guessed[0].type == "location"


def _guess_labels(ctx: Context, guessed: list[StepSpec]) -> list[str]:
    fixes = [ctx.t("guess.fix", field=_field_label(ctx, spec)) for spec in guessed]
    return [ctx.t("guess.ok"), *fixes]


def _guess_prompt(ctx: Context, form: FormSpec) -> Outcome:
    guessed = _guesses(ctx, form)
    lines = [ctx.t("guess.head")]
    lines += [f"{_field_label(ctx, spec)}：{_shown(ctx, spec)}" for spec in guessed]
    lines.append(ctx.t("guess.ask.place" if _place_only(guessed) else "guess.ask"))
    return Outcome(replies=[Reply("\n".join(lines), numbered(_guess_labels(ctx, guessed)))])


def _on_guess(ctx: Context, form: FormSpec) -> Outcome:
    """`1` (or 是/对): the guesses stand; a number names the one to change, which is asked
    afresh; with the place alone, a place sent instead (words or a location) replaces it."""
    data, inbound = ctx.state.data, ctx.inbound
    guessed = _guesses(ctx, form)
    if not guessed:
        data.pop(GUESSED, None)
        return _forward(ctx, form, from_index=0)
    if inbound.kind in VISUAL:
        if form.has("photos"):
            count = _add_photos(ctx, _photo_limit(form.steps[form.index("photos")]))
            return Outcome().say(ctx.t("photos.received", n=count)).extend(_guess_prompt(ctx, form))
        return Outcome().say(ctx.t("photos.not_now")).extend(_guess_prompt(ctx, form))
    place = next((s for s in guessed if s.type == "location"), None)
    if place is not None and inbound.location is not None:
        return _guess_replaced(ctx, form, place)
    labels = _guess_labels(ctx, guessed)
    choice = 0 if ctx.word in YES or ctx.word in RIGHT else pick(ctx, labels)
    if choice is None and ctx.word in WRONG and len(guessed) == 1:
        choice = 1
    if choice == 0:
        data.pop(GUESSED, None)
        outcome = Outcome()
        category = ctx.office.category(str(data.get(_field_of(form, "category")) or ""))
        if category is not None and category.notice and any(s.type == "category" for s in guessed):
            outcome.say(ctx.t(category.notice))
        return outcome.extend(_forward(ctx, form, from_index=0))
    if choice is not None:
        # The one named is asked afresh; the others shown with it are taken as confirmed.
        spec = guessed[choice - 1]
        data.pop(GUESSED, None)
        data.pop(spec.field, None)
        if spec.type == "category":
            data.pop("_suggested", None)  # it was the wrong one: the plain list
        ctx.state.step = spec.field
        return Outcome(replies=[_prompt(ctx, form, spec)])
    if place is not None and _place_only(guessed) and _looks_like_a_place(ctx):
        return _guess_replaced(ctx, form, place)
    return Outcome().say(ctx.t("err.choice", n=len(labels))).extend(_guess_prompt(ctx, form))


def _looks_like_a_place(ctx: Context) -> bool:
    """A place sent instead of `1`: one the reader finds, or words enough to be an address —
    not "嗯嗯" or "好的呀", which would otherwise become the case's place."""
    text = ctx.inbound.text.strip()
    if not text or ctx.word in WRONG:
        return False
    if ctx.places is not None and ctx.places.find(text):
        return True
    return len(text) >= 4 and len(set(text)) > 2


def _guess_replaced(ctx: Context, form: FormSpec, spec: StepSpec) -> Outcome:
    value = validators.location(ctx.inbound.text, ctx.inbound.location)
    if isinstance(value, Invalid):
        return Outcome().say(ctx.t(value.key, **value.values)).extend(_guess_prompt(ctx, form))
    ctx.state.data[spec.field] = value
    ctx.state.data.pop(GUESSED, None)
    return _forward(ctx, form, from_index=0)


# -- confirmation ------------------------------------------------------------------------------


def _field_label(ctx: Context, spec: StepSpec) -> str:
    if spec.label is not None:
        return spec.label(ctx.lang)
    return ctx.t(f"field.{spec.type}") if spec.type in _BUILTIN_LABELS else spec.field


_BUILTIN_LABELS = frozenset({"category", "description", "location", "photos", "name", "phone"})


def _shown(ctx: Context, spec: StepSpec) -> str:
    value = ctx.state.data.get(spec.field)
    if spec.type == "photos":
        return ctx.t("confirm.photos", n=len(value or []))
    if spec.type in ("name", "phone") and ctx.state.data.get("_anonymous"):
        return ctx.t("anonymous.shown")
    if value is None or value == "":
        return ctx.t("form.skipped")
    if spec.type == "category":
        category = ctx.office.category(value)
        return category.label(ctx.lang) if category else str(value)
    if spec.type == "location":
        return str(value.get("text", ""))
    return str(value)


def _confirm_prompt(ctx: Context, form: FormSpec) -> Outcome:
    lines = [ctx.t("confirm.head")]
    lines += [f"{_field_label(ctx, spec)}：{_shown(ctx, spec)}" for spec in form.steps]
    lines.append(ctx.t("confirm.ask"))
    labels = [ctx.t("confirm.submit"), ctx.t("confirm.change"), ctx.t("confirm.cancel")]
    return Outcome(replies=[Reply("\n".join(lines), numbered(labels))])


def _confirm_choice(ctx: Context) -> int | None:
    labels = [ctx.t("confirm.submit"), ctx.t("confirm.change"), ctx.t("confirm.cancel")]
    return 0 if ctx.word in YES else pick(ctx, labels)


def _on_confirm(ctx: Context, form: FormSpec) -> Outcome:
    choice = _confirm_choice(ctx)
    if choice == 0:
        return _submit(ctx, form)
    if choice == 1:
        return _change_prompt(ctx, form)
    if choice == 2:
        ctx.state.to_menu()
        return Outcome(replies=[menu_reply(ctx, lead=ctx.t("cancelled"))])
    return Outcome().say(ctx.t("err.choice", n=3)).extend(_confirm_prompt(ctx, form))


# -- the same matter again? (重复信访) ------------------------------------------------------------


async def _ask_if_repeat(ctx: Context, form: FormSpec) -> Outcome | None:
    """On `1 提交`: the asker's open matter that reads like this one (by the repeat watch's own
    rules), asked about once; None when there is none and the filing goes on."""
    data = ctx.state.data
    description = str(data.get("description") or "")
    if not description or data.get("_anonymous"):
        # An anonymous filing is kept apart from the asker's named matters on purpose.
        return None
    similar = await ctx.lookups.similar_open_case(
        ctx.inbound.channel,
        ctx.inbound.sender,
        form.kind,
        str(data.get("category") or ""),
        description,
        ctx.office.repeats,
        similarity,
    )
    if similar is None:
        return None
    quote = similar.description.strip().replace("\n", " ")
    if len(quote) > QUOTE:
        quote = quote[:QUOTE] + "…"
    data[REPEAT] = {"code": similar.code, "quote": quote, "day": ctx.day(similar.created_at)}
    ctx.state.step = REPEAT
    return _repeat_prompt(ctx)


def _repeat_prompt(ctx: Context) -> Outcome:
    asked = ctx.state.data.get(REPEAT) or {}
    text = ctx.t(
        "repeat.ask",
        code=asked.get("code", ""),
        quote=asked.get("quote", ""),
        day=asked.get("day", ""),
    )
    labels = [ctx.t("repeat.same"), ctx.t("repeat.new")]
    return Outcome(replies=[Reply(text, numbered(labels))])


def _on_repeat(ctx: Context, form: FormSpec) -> Outcome:
    """`1`: the new words, place and photos become a 补充 of that matter; `2`: filed as new."""
    labels = [ctx.t("repeat.same"), ctx.t("repeat.new")]
    choice = pick(ctx, labels)
    if choice == 1:
        return _submit(ctx, form)
    if choice is None:
        return Outcome().say(ctx.t("repeat.again")).extend(_repeat_prompt(ctx))
    data = ctx.state.data
    code = str((data.get(REPEAT) or {}).get("code") or "")
    location = data.get("location") or {}
    media = [*(data.get("photos") or []), *(data.get("_voices") or [])]
    command = Supplement(
        code,
        text=str(data.get("description") or "")[:2000],
        attachments=tuple(Media(m["kind"], m["ref"], m.get("url", "")) for m in media),
        location_text=str(location.get("text") or "")[:200],
        lat=location.get("lat"),
        lng=location.get("lng"),
    )

    def supplemented(results: Results) -> list[Reply]:
        if results.values.get("supplement") == "added":
            ctx.state.to_menu()
            return [Reply(ctx.t("repeat.added", code=code))]
        # Finished since it was asked about: this one is a new matter after all.
        ctx.state.step = CONFIRM
        return [Reply(ctx.t("repeat.gone", code=code)), *_confirm_prompt(ctx, form).replies]

    return Outcome(commands=[command], after=supplemented)


def _change_prompt(ctx: Context, form: FormSpec) -> Outcome:
    ctx.state.step = CHANGE
    labels = [_field_label(ctx, spec) for spec in form.steps]
    return Outcome(replies=[Reply(ctx.t("confirm.which"), numbered(labels))])


def _on_change(ctx: Context, form: FormSpec) -> Outcome:
    labels = [_field_label(ctx, spec) for spec in form.steps]
    index = pick(ctx, labels)
    if index is None:
        return Outcome().say(ctx.t("err.choice", n=len(labels))).extend(_change_prompt(ctx, form))
    spec = form.steps[index]
    ctx.state.step = spec.field
    ctx.state.data["_editing"] = True
    if spec.type == "photos":
        ctx.state.data["photos"] = []
    return Outcome(replies=[_prompt(ctx, form, spec)])


def _submit(ctx: Context, form: FormSpec) -> Outcome:
    data = ctx.state.data
    inbound = ctx.inbound
    location = data.get("location") or {}
    media = [*(data.get("photos") or []), *(data.get("_voices") or [])]
    builtin = {"category", "description", "location", "photos", "name", "phone"}
    answers = {spec.field: data.get(spec.field) for spec in form.steps if spec.type not in builtin}
    answers[FORM_ANSWER] = form.name
    description = str(data.get("description") or "")
    category = str(data.get("category") or "")
    department = ctx.office.route(category, description)
    mailbox = ctx.office.mailbox(str(data.get(MAILBOX) or ""))
    if mailbox is not None:  # a letter starts where its mailbox sends letters
        department = mailbox.department or department
    command = SubmitCase(
        origin=f"{inbound.channel}:{inbound.sender}:{data.get('_form') or uuid.uuid4().hex}",
        kind=form.kind,
        category=category,
        description=description,
        location_text=str(location.get("text") or ""),
        lat=location.get("lat"),
        lng=location.get("lng"),
        attachments=tuple(
            Media(m["kind"], m["ref"], m.get("url", ""), m.get("file", "")) for m in media
        ),
        name=str(data.get("name") or ""),
        phone=str(data.get("phone") or ""),
        answers=answers,
        source=ctx.state.source,
        language=ctx.lang,
        risk_words=tuple(ctx.office.risk_words_in(description)),
        acceptance_due=ctx.deadlines.acceptance_due(ctx.now),
        department=department,
        mailbox=mailbox.key if mailbox is not None else "",
        anonymous=bool(data.get("_anonymous")) and not data.get("name") and not data.get("phone"),
    )
    ctx.state.to_menu()
    confirmation = form.confirmation

    def submitted(results: Results) -> list[Reply]:
        due = ctx.day(results.values.get("acceptance_due") or command.acceptance_due or ctx.now)
        if confirmation is not None:
            text = confirmation(ctx.lang).format(code=results.case_code, due=due)
        else:
            text = ctx.t(CONFIRMATIONS[form.kind], code=results.case_code, due=due)
        query = results.values.get("query_code")
        if command.anonymous and query:
            # Shown this once: only its hash is kept, so nobody can show it again.
            text += "\n\n" + ctx.t("anonymous.receipt", code=results.case_code, query=query)
        return [Reply(text)]

    return Outcome(commands=[command], after=submitted)
