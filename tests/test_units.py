"""Table-driven checks of validators, the office file, the text catalog and settings."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import string
from pathlib import Path

import pytest

from bot.app.logs import mask_phones
from bot.app.settings import SettingsError, load_settings
from conversation import validators
from conversation.catalog import EN, ZH
from conversation.flows.small_talk import small_talk
from conversation.messages import Location
from conversation.office import OfficeConfigError, load_office
from conversation.validators import Invalid
from storage.crypto import PiiCipher, load_or_create_key_file, mask_name, mask_phone, parse_key


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("19912345678", "+8619912345678"),
        ("+85291234567", "+85291234567"),
        ("+14155552671", "+14155552671"),
        ("+447911123456", "+447911123456"),
    ],
)
def test_phone_numbers_accepted(given: str, expected: str) -> None:
    assert validators.phone(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "12345",
        "1380013800",
        "138001380000",
        "01012345678",
        "+86 10 1234 5678",
        "abc",
        "+999123",
        "１２３",
    ],
)
def test_phone_numbers_refused(given: str) -> None:
    assert validators.phone(given) == Invalid("err.phone", {})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("", "err.description.short"),
        ("太吵了", "err.description.short"),
        ("字" * 9, "err.description.short"),
        ("字" * 2001, "err.description.long"),
    ],
)
def test_description_limits(text: str, key: str) -> None:
    result = validators.description(text)
    assert isinstance(result, Invalid) and result.key == key


def test_description_accepts_ten_to_two_thousand() -> None:
    assert validators.description("字" * 10) == "字" * 10
    assert validators.description("  " + "字" * 2000 + "\n") == "字" * 2000


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("张三", "张三"),
        ("  欧阳  娜娜 ", "欧阳 娜娜"),
        ("Li Wei", "Li Wei"),
        ("", "err.name.empty"),
        ("张" * 31, "err.name.long"),
        ("138 0013", "err.name.digits"),
    ],
)
def test_names(text: str, result: str) -> None:
    got = validators.person_name(text)
    assert (got.key if isinstance(got, Invalid) else got) == result


def test_locations() -> None:
    assert validators.location("幸福路1号", None) == {"text": "幸福路1号", "lat": None, "lng": None}
    assert validators.location("", Location(31.0, 121.0, "人民广场"))["lat"] == 31.0  # type: ignore[index]
    assert validators.location("", Location(31.0, 121.0))["text"] == "31.000000, 121.000000"  # type: ignore[index]
    assert isinstance(validators.location("x", None), Invalid)
    assert isinstance(validators.location("", Location(91.0, 0.0)), Invalid)
    assert isinstance(validators.location("路" * 201, None), Invalid)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("3", 3),
        ("３", 3),
        ("三", 3),
        ("第3项", 3),
        (" 3。", 3),
        ("3个", 3),
        ("abc", None),
        ("", None),
    ],
)
def test_choice_numbers(text: str, number: int | None) -> None:
    assert validators.choice_number(text) == number


def test_catalog_languages_have_the_same_keys_and_placeholders() -> None:
    assert set(ZH) == set(EN)
    fields = string.Formatter()
    for key in ZH:
        zh = {f for _, f, _, _ in fields.parse(ZH[key]) if f}
        en = {f for _, f, _, _ in fields.parse(EN[key]) if f}
        assert zh == en, key


def test_bundled_office_file_loads() -> None:
    office = load_office()
    assert [c.key for c in office.categories][:2] == ["housing", "labour"]
    assert office.forms["filing"].steps[0].type == "category"
    assert office.suggest_category("公司拖欠工资").key == "labour"  # type: ignore[union-attr]
    assert office.suggest_category("今天天气不错") is None
    assert office.risk_words_in("我不想活了") == ["不想活"]
    assert office.urge_every_hours == 72


MINIMAL = (
    "[[categories]]\nkey='a'\nlabel='A'\n"
    "[forms.filing]\nsteps=[{field='description', type='description'}]\n"
    "[forms.suggestion]\nsteps=[{field='description', type='description'}]\n"
)
PRAISE = (
    "[forms.praise]\nkind = 'suggestion'\nconfirmation = '谢谢！编号 {code}'\n"
    "menu = { key = '6', label = '表扬' }\nsteps = [{ field='praise', type='description' }]\n"
)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("name = 'x'", "at least one [[categories]]"),
        ("[[categories]]\nlabel='住房'", "categories[0].key is missing"),
        (
            "[[categories]]\nkey='a'\nlabel='A'\n[forms.filing]\nsteps=[{field='d', type='essay'}]",
            "steps[0].type must be one of",
        ),
        (
            "[[categories]]\nkey='a'\nlabel='A'\n[forms.suggestion]\nsteps=[{field='description', type='description'}]",
            'a form with kind = "petition" and a description step is needed',
        ),
        (MINIMAL + PRAISE.replace("'suggestion'", "'praise'"), "forms.praise.kind must be one of"),
        (MINIMAL + PRAISE.replace("key = '6'", "key = 'six'"), "forms.praise.menu.key must be"),
        (MINIMAL + PRAISE.replace("{code}", "{name}"), "may name only {code} and {due}"),
        (MINIMAL + PRAISE.replace("field='praise'", "field='form'"), '.field "form" is taken'),
        ("[[categories]]\nkey='a'\nlabel='A'\n[texts.zh]\nnot_a_key='x'", "unknown text keys"),
        (MINIMAL + "[staff]\nhours=['9-12']", "must look like"),
        (MINIMAL + "[[faq]]\nquestion='?'", "faq[0].answer must be a text"),
        ("this is = not toml =", "not valid TOML"),
        ("urge_every_hours = 0\n" + MINIMAL, "urge_every_hours must be a whole number of 1"),
    ],
)
def test_office_file_errors_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "office.toml"
    path.write_text(toml, "utf-8")
    with pytest.raises(OfficeConfigError, match=re.escape(message)):
        load_office(path)


def test_office_may_override_texts_and_add_questions(tmp_path: Path) -> None:
    base = (Path(__file__).parent.parent / "conversation" / "office.toml").read_text("utf-8")
    extra = (
        base.replace(
            '  { field = "photos", type = "photos", optional = true, max = 9 },',
            '  { field = "photos", type = "photos", optional = true, max = 9 },\n'
            '  { field = "before", type = "choice", label = "之前反映过吗", options = ["没有", "反映过"] },',
        )
        + '\n[texts.zh]\nask.name = "怎么称呼您？"\n'
    )
    path = tmp_path / "office.toml"
    path.write_text(extra, "utf-8")
    office = load_office(path)
    assert office.forms["filing"].steps[4].field == "before"
    assert office.catalog.text("zh", "ask.name") == "怎么称呼您？"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (
            {
                "MINYI_WECHAT_TOKEN": "WechatToken0123456789",
                "MINYI_WECHAT_APP_ID": "wx1",
                "MINYI_WECHAT_AES_KEY": "a" * 42,
            },
            "MINYI_WECHAT_AES_KEY",
        ),
        ({"MINYI_SMS_PROVIDER": "nokia"}, "MINYI_SMS_PROVIDER"),
        ({"MINYI_REDIS_URL": "localhost:6379"}, "MINYI_REDIS_URL"),
        ({"MINYI_DATABASE_URL": "mysql://x/y"}, "MINYI_DATABASE_URL"),
        ({"MINYI_DATABASE_URL": "postgresql+asyncpg://u@h/d"}, "MINYI_PII_KEY"),
        ({"MINYI_TIMEZONE": "Mars/Base"}, "MINYI_TIMEZONE"),
        ({"MINYI_SESSION_HOURS": "zero"}, "MINYI_SESSION_HOURS"),
        ({"MINYI_SURVEY_SCALE": "4"}, "MINYI_SURVEY_SCALE"),
        ({"MINYI_SURVEY_QUIET_HOURS": "late"}, "MINYI_SURVEY_QUIET_HOURS"),
        ({"MINYI_WECHAT_API_BASE": "ftp://x"}, "MINYI_WECHAT_API_BASE"),
        ({"MINYI_TELEGRAM_TOKEN": "123:abc"}, "MINYI_TELEGRAM_SECRET"),
        ({"MINYI_OFFICE_CONFIG": "/nonexistent.toml"}, "MINYI_OFFICE_CONFIG"),
        ({"MINYI_WECHAT_TEMPLATE_FIELDS": "code:thing1"}, "MINYI_WECHAT_TEMPLATE_FIELDS"),
        ({"MINYI_WECHAT_TEMPLATE_FIELDS": "code=a,code=b"}, "MINYI_WECHAT_TEMPLATE_FIELDS"),
        ({"MINYI_WECHAT_TEMPLATE_ID": "tmpl-1"}, "MINYI_WECHAT_TEMPLATE_FIELDS"),
        ({"MINYI_WECHAT_TEMPLATE_FIELDS": "code=thing1"}, "MINYI_WECHAT_TEMPLATE_ID"),
        ({"MINYI_WECHAT_MENU": "/nonexistent.json"}, "MINYI_WECHAT_MENU"),
        ({"MINYI_WECHAT_REPLY_BUDGET": "5"}, "MINYI_WECHAT_REPLY_BUDGET"),
    ],
)
def test_a_wrong_setting_names_its_variable(
    env: dict[str, str], variable: str, tmp_path: Path
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(env, config_file=_empty(tmp_path))
    assert str(error.value).startswith(variable + ":")
    assert "\n" not in str(error.value)


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "minyi.toml"
    path.write_text("", "utf-8")
    return path


def test_wechat_template_fields_map_our_names_to_the_template_keys(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "MINYI_WECHAT_TOKEN": "WechatToken0123456789",
            "MINYI_WECHAT_APP_ID": "wx0123456789abcdef",
            "MINYI_WECHAT_TEMPLATE_ID": "tmpl-1",
            "MINYI_WECHAT_TEMPLATE_FIELDS": "code=character_string1, status=phrase2",
        },
        config_file=_empty(tmp_path),
    )
    assert settings.channel("wechat").template_fields == {
        "code": "character_string1",
        "status": "phrase2",
    }


def test_defaults_and_the_toml_file(tmp_path: Path) -> None:
    settings = load_settings({}, config_file=_empty(tmp_path))
    assert settings.database_url == "sqlite+aiosqlite:///./minyi.db" and settings.redis_url is None
    file = tmp_path / "minyi.toml"
    file.write_text(
        'MINYI_STREAM = "office:events"\napi_token = "from-file-' + "f" * 32 + '"\n', "utf-8"
    )
    settings = load_settings({"MINYI_API_TOKEN": "from-env-" + "e" * 32}, config_file=file)
    assert settings.stream == "office:events" and settings.api_token == "from-env-" + "e" * 32


def test_pii_cipher_binds_the_field_and_hides_the_value() -> None:
    cipher = PiiCipher(parse_key("k" * 43))
    blob = cipher.encrypt("13800138000", "phone")
    assert b"13800138000" not in blob and cipher.decrypt(blob, "phone") == "13800138000"
    with pytest.raises(Exception):  # noqa: B017 - InvalidTag: the name column cannot be swapped in
        cipher.decrypt(blob, "name")
    assert cipher.encrypt("x", "phone") != cipher.encrypt("x", "phone")  # fresh nonce each time
    assert cipher.phone_hash("+8613800138000") == cipher.phone_hash("+8613800138000")
    with pytest.raises(ValueError, match="MINYI_PII_KEY"):
        parse_key("too-short")
    assert parse_key("0f" * 32) == bytes([15] * 32)  # 64 hex digits are hex, not base64
    assert parse_key("a" * 43) == base64.urlsafe_b64decode("a" * 43 + "=")  # hex letters only
    with pytest.raises(ValueError, match="MINYI_PII_KEY"):
        parse_key("k" * 21 + "!" + "k" * 22)  # a stray character is refused, not skipped
    # Stored yesterday, read today: the format (version, 12-byte nonce, AES-GCM) must not drift.
    stored = bytes.fromhex(
        "01dbeef95d1b273116d09f37e159642a0a1b33160d4dd500b6a9a8c06e3687c9dfb92c42935022e4"
    )
    assert cipher.decrypt(stored, "phone") == "13800138000"
    for foreign in (b"", b"\x02" + blob[1:]):  # empty, or another format's version byte
        with pytest.raises(ValueError, match="unknown ciphertext format"):
            cipher.decrypt(foreign, "phone")


def test_the_phone_hash_is_keyed() -> None:
    """A plain SHA-256 of a phone is reversed by trying every number: the key must matter."""
    phone = "+8613800138000"
    key = parse_key("k" * 43)
    ours, theirs = PiiCipher(key), PiiCipher(parse_key("j" * 43))
    assert ours.phone_hash(phone) != theirs.phone_hash(phone)
    assert ours.phone_hash(phone) != ours.phone_hash("+8613800138001")
    unkeyed = {
        algorithm(value.encode()).hexdigest()
        for algorithm in (hashlib.sha256, hashlib.sha1, hashlib.md5, hashlib.sha512)
        for value in (phone, phone[1:], phone[3:])
    }
    unkeyed |= {hmac.new(k, phone.encode(), hashlib.sha256).hexdigest() for k in (b"", key)}
    assert ours.phone_hash(phone) not in unkeyed  # nor the encryption key used as it is
    assert len(ours.phone_hash(phone)) == 64
    # The other lookups (e.g. an SMS provider's key, which contains the phone) likewise.
    assert ours.digest(phone, "sms-inbound") != theirs.digest(phone, "sms-inbound")
    assert ours.digest(phone, "sms-inbound") != ours.digest(phone, "other")
    assert ours.digest(phone, "sms-inbound") not in unkeyed | {ours.phone_hash(phone)}


def test_a_key_file_others_can_read_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "minyi.db.key"
    first = load_or_create_key_file(path)
    with caplog.at_level(logging.WARNING, logger="storage.crypto"):
        assert load_or_create_key_file(path) == first
    assert "readable by others" not in caplog.text  # 0600, as it was made: nothing to say
    for mode in (0o640, 0o601):  # any bit for the group or others, down to the last
        caplog.clear()
        path.chmod(mode)
        with caplog.at_level(logging.WARNING, logger="storage.crypto"):
            assert load_or_create_key_file(path) == first
        assert "readable by others" in caplog.text and "chmod 600" in caplog.text, oct(mode)


def test_masking() -> None:
    assert mask_phone("+8613800138000") == "+86138****8000"
    assert mask_phone("12345678") == "****5678" and mask_phone("1234567") == "*******"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_phones("from 13800138000 and +8613912345678 and +85291234567") == (
        "from 138****8000 and +86139****5678 and +8529****4567"
    )
    assert mask_phones("case XF20261122-7K3M9Q seq 12") == "case XF20261122-7K3M9Q seq 12"


@pytest.mark.parametrize(
    ("text", "heard"),
    [
        ("你好", "greeting"),
        ("您好！在吗？", "greeting"),
        ("你们好呀", "greeting"),
        ("Hello there!", "greeting"),
        ("早上好～", "greeting"),
        ("谢谢", "thanks"),
        ("好的，谢谢您！", "thanks"),
        ("你好，谢谢", "thanks"),
        ("Thank you so much", "thanks"),
        ("你好，我家楼下饭店天天半夜吵", None),
        ("在吗，低保怎么申请", None),
        ("好的", None),
        ("1", None),
        ("", None),
    ],
)
def test_small_talk_is_only_a_message_with_nothing_else_in_it(text: str, heard: str | None) -> None:
    assert small_talk(text) == heard


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"MINYI_API_TOKEN": "a"}, "MINYI_API_TOKEN: use at least 32 random characters"),
        ({"MINYI_API_TOKEN": "x" * 31}, "MINYI_API_TOKEN: use at least 32 random characters"),
        (
            {"MINYI_TELEGRAM_TOKEN": "123:abc", "MINYI_TELEGRAM_SECRET": "x"},
            "MINYI_TELEGRAM_SECRET: must be 16-256 characters",
        ),
        ({"MINYI_WECHAT_TOKEN": "t"}, "MINYI_WECHAT_TOKEN: use 16-32 random letters and digits"),
        (
            {"MINYI_STAFF_WEBHOOK_URL": "https://x.example", "MINYI_STAFF_WEBHOOK_SECRET": "s"},
            "MINYI_STAFF_WEBHOOK_SECRET: use at least 16 random characters",
        ),
    ],
)
def test_weak_secrets_are_refused_by_name(env: dict[str, str], line: str) -> None:
    """Issue 13: `MINYI_API_TOKEN=a` and the like stop start-up with one line naming it."""
    with pytest.raises(SettingsError) as refused:
        load_settings(env, config_file=None)
    assert str(refused.value).startswith(line) and "\n" not in str(refused.value)
    load_settings({"MINYI_API_TOKEN": "k" * 32}, config_file=None)  # long enough is fine
