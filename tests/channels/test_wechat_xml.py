"""`safe_xml`: the standard library's C parser behind a check that refuses any DTD.

defusedxml (which refuses DTDs inside the parser, on its pure-Python twin) is the reference:
every document here, and every one hypothesis builds from the pieces a prolog can hold, is
accepted by both or refused by both, and an accepted one reads the same."""

from __future__ import annotations

import pytest
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.wechat.envelope import Malformed, safe_xml

MESSAGE = (
    "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>"
    "<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[{content}]]></Content><MsgId>1</MsgId></xml>"
)
DTD = '<!DOCTYPE xml [<!ENTITY a "b">]>'


def by_defusedxml(document: str) -> str | None:
    """The message's content as defusedxml reads it; None when it refuses the document."""
    try:
        root = fromstring(document.encode(), forbid_dtd=True)
    except (DefusedXmlException, SyntaxError, ValueError):
        return None
    return root.findtext("Content") if root.tag == "xml" else None


def by_us(document: str | bytes) -> str | None:
    try:
        return safe_xml(document).findtext("Content")
    except Malformed:
        return None


REFUSED = {
    "a DTD": DTD + MESSAGE,
    "after the declaration": '<?xml version="1.0"?>\n' + DTD + MESSAGE,
    "after a comment and an instruction": "<!-- hi --><?app x?>\n" + DTD + MESSAGE,
    "an external entity": '<!DOCTYPE xml [<!ENTITY s SYSTEM "file:///etc/passwd">]>' + MESSAGE,
    "a parameter entity": '<!DOCTYPE xml [<!ENTITY % p "x"> %p;]>' + MESSAGE,
    "an external DTD": '<!DOCTYPE xml SYSTEM "http://example.com/x.dtd">' + MESSAGE,
    "an entity never declared": MESSAGE.replace("<![CDATA[{content}]]>", "&secret;"),
    "a declaration inside": MESSAGE.replace("<MsgId>", "<!ELEMENT x ANY><MsgId>"),
    "a DTD after the root": MESSAGE + DTD,
    "an unclosed comment": "<!-- " + DTD + MESSAGE,
}
ACCEPTED = {
    "a DTD as the citizen's words": "<!DOCTYPE html><!ENTITY a 'b'> &a;",
    "markup as the citizen's words": "<xml><Content>x</Content></xml> ]]&gt;",
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_dtd_or_an_entity_is_refused(name: str) -> None:
    document = REFUSED[name].replace("{content}", "hello")
    assert by_us(document) is None
    assert by_defusedxml(document) is None


@pytest.mark.parametrize("name", ACCEPTED)
def test_what_a_citizen_writes_is_read_as_written(name: str) -> None:
    document = MESSAGE.replace("{content}", ACCEPTED[name])
    assert by_us(document) == by_defusedxml(document) == ACCEPTED[name]


def test_a_comment_or_instruction_mentioning_a_dtd_is_no_dtd() -> None:
    for prolog in ("<!-- <!DOCTYPE xml> -->", "<?app <!DOCTYPE xml>?>"):
        document = prolog + MESSAGE.replace("{content}", "hi")
        assert by_us(document) == by_defusedxml(document) == "hi"


def test_a_document_in_another_encoding_is_refused_before_it_is_parsed() -> None:
    # Read as UTF-8 whatever it declares: a UTF-16 DTD would be invisible to the check.
    document = '<?xml version="1.0" encoding="UTF-16"?>' + DTD + MESSAGE.replace("{content}", "x")
    assert by_us(document.encode("utf-16")) is None
    # Declared otherwise but written in UTF-8 (WeChat's): read as UTF-8.
    declared = '<?xml version="1.0" encoding="GBK"?>' + MESSAGE.replace("{content}", "路灯")
    assert by_us(declared.encode()) == "路灯"


PROLOG_PIECES = st.sampled_from(
    [
        "",
        "\n",
        "  ",
        '<?xml version="1.0"?>',
        "<?app data?>",
        "<?app <!DOCTYPE x>?>",
        "<!-- note -->",
        "<!-- <!DOCTYPE xml> -->",
        "<!---->",
        "<!-- a -- b -->",
        "<!--",
        DTD,
        "<!DOCTYPE xml>",
        '<!ENTITY a "b">',
        "<![CDATA[x]]>",
        "<!",
        "<?",
        "text",
        "]]>",
    ]
)
CONTENT = st.sampled_from(["hi", "&amp;", "&a;", "<!DOCTYPE x>", "]]>", "<![CDATA[", "路灯"])


@settings(max_examples=400, deadline=None)
@given(st.lists(PROLOG_PIECES, max_size=4), CONTENT, st.lists(PROLOG_PIECES, max_size=2))
def test_accepts_and_refuses_what_defusedxml_does(
    before: list[str], content: str, after: list[str]
) -> None:
    document = "".join(before) + MESSAGE.replace("{content}", content) + "".join(after)
    assert by_us(document) == by_defusedxml(document), document
