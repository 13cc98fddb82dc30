"""Hypothesis on everything that reads what a sender wrote: messages, parts, file names, HTML;
and on what the webmail writes (replies, read receipts). The only exceptions allowed out are the
documented ones (ComposeError with a French sentence)."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from plitest.store import build_message

from pli.mailbox.mime.structure import parse_structure
from pli.mailbox.web import htmlsafe, parts, reading
from pli.mailbox.web.compose import (
    MAX_REFERENCES,
    ComposeError,
    Original,
    Party,
    Upload,
    reply_subject,
)
from pli.mailbox.web.compose import (
    build_message as compose,
)
from pli.mailbox.web.filenames import MAX_FILENAME, clean_filename, content_disposition
from pli.mailbox.web.mdn import Receipt, build_mdn

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Bytes that look like mail: headers, MIME boundaries, encodings, junk.
_PIECES = [
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: text/html; charset=iso-8859-1\r\n",
    b'Content-Type: application/pdf; name="x.pdf"\r\n',
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*=UTF-8''%E9t%C3\r\n",
    b"Content-ID: <logo@x>\r\n",
    b"Disposition-Notification-To: <a@b>\r\n",
    b"Subject: =?utf-8?b?w6k=?= =?x?q?=FF?=\r\n",
    b'From: "a" <b@c>, (comment) d@\r\n',
    b"\r\n",
    b"--b\r\n",
    b"--b--\r\n",
    b"<img src=cid:logo@x><script>x</script>",
    b"=3D=\r\n",
    b"////\x00\xff\xfe",
]
mail_like = st.lists(st.sampled_from(_PIECES) | st.binary(max_size=40), max_size=30).map(b"".join)


@FAST
@given(mail_like)
# Found by Hypothesis: a folded charset carrying a NUL or an undecodable byte.
@example(b"Content-Type: text/html; charset=iso-8859-1\r\n\t\x80")
@example(b"Content-Type: text/html; charset=iso-8859-1\r\n\t\x00")
@example(b"Content-Type: text/plain; charset=base64\r\n\r\nAAAA")
def test_reading_any_message_never_raises(raw: bytes) -> None:
    structure = parse_structure(raw)
    view = reading.view(raw, structure)
    assert isinstance(view.subject, str) and view.subject
    reading.html_body(raw, structure)
    for item in view.attachments:
        found = reading.attachment_bytes(raw, structure, item.section)
        assert found is not None
        parts.looks_like(item.content_type, found[1])
        content_disposition("attachment", item.filename)


@FAST
@given(st.binary(max_size=300), st.sampled_from(["BASE64", "QUOTED-PRINTABLE", "7BIT", "X-UUE"]))
def test_decoding_a_body_never_raises(data: bytes, encoding: str) -> None:
    assert isinstance(parts.decode_transfer(data, encoding), bytes)


@FAST
@given(st.text(max_size=400))
def test_file_names_are_safe_for_disks_and_headers(name: str) -> None:
    cleaned = clean_filename(name)
    assert 0 < len(cleaned) <= MAX_FILENAME
    assert not re.search(r'[/\\\x00-\x1f\x7f"]', cleaned)
    assert not cleaned.startswith(".")
    header = content_disposition("inline", name)
    assert header.isascii() and "\r" not in header and "\n" not in header
    assert header.count('"') == 2  # the quoted fallback holds no quote
    assert header.startswith('inline; filename="')


HOSTILE_HTML = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<iframe src="javascript:alert(1)"></iframe>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<body onload=alert(1)>",
    '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="></object>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<form action="https://evil.example"><input name=p></form>',
    '<base href="https://evil.example/">',
    '<link rel=stylesheet href="https://evil.example/x.css">',
    '<img src="https://tracker.example/p.gif">',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    "<svg><style><img src=x onerror=alert(1)></style></svg>",
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
]


class _Markup(HTMLParser):
    """The tags and attributes of a document as a browser would build them (text is text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))

    handle_startendtag = handle_starttag


ALLOWED_URL = re.compile(r"^(https?:|mailto:|data:image/(png|jpeg|gif|webp);base64,)", re.I)


def assert_harmless(html: str) -> None:
    markup = _Markup()
    markup.feed(html)
    markup.close()
    for tag, attrs in markup.elements:
        assert tag in htmlsafe.ALLOWED_TAGS, (tag, html)
        for name, value in attrs:
            assert not name.startswith("on"), (name, html)
            if name in ("href", "src"):
                assert value is not None and ALLOWED_URL.match(value.strip()), (value, html)
            if tag == "img" and name == "src":
                assert value is not None and value.startswith("data:image/"), (value, html)
            if name == "style":
                assert "url(" not in (value or "").lower() and "expression" not in (value or "")


@pytest.mark.parametrize("hostile", HOSTILE_HTML)
def test_known_xss_vectors_are_neutralised(hostile: str) -> None:
    cleaned, _ = htmlsafe.sanitise(f"<p>avant</p>{hostile}<p>après</p>", lambda cid: None)
    assert_harmless(cleaned)
    assert "avant" in cleaned


_TAGS = ["p", "a", "img", "script", "style", "svg", "div", "table", "iframe", "b", "math"]
_ATTRS = [
    'href="javascript:x"',
    "onclick=x",
    'src="http://t/p.gif"',
    'style="color:red"',
    'src="cid:a"',
    'href="https://ok"',
    "onerror=alert(1)",
    'style="background:url(x)"',
]
html_like = st.lists(
    st.one_of(
        st.builds(lambda t, a: f"<{t} {a}>", st.sampled_from(_TAGS), st.sampled_from(_ATTRS)),
        st.builds(lambda t: f"</{t}>", st.sampled_from(_TAGS)),
        st.text(alphabet="<>\"'=/ abc&;#x", max_size=12),
    ),
    max_size=25,
).map("".join)


@FAST
@given(html_like)
def test_sanitised_html_is_always_harmless(html: str) -> None:
    cleaned, blocked = htmlsafe.sanitise(html, lambda cid: "data:image/png;base64,AAAA")
    assert_harmless(cleaned)
    assert blocked >= 0


@FAST
@given(st.text(max_size=120))
def test_reply_subject_never_stacks_prefixes(subject: str) -> None:
    once = reply_subject(subject)
    assert once.startswith("Re:")
    assert reply_subject(once) == once
    assert not re.match(r"(?i)re:\s*re:", once)


SENDER = Party("180017512345660@patient.mssante.fr", "Paul Lefebvre")
DOCTOR = Party("dr.martin@hopital-demo.mssante.fr", "Dr Claire Martin")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@FAST
@given(
    subject=st.text(max_size=300),
    body=st.text(min_size=1, max_size=2000),
    references=st.lists(
        st.from_regex(r"[a-z0-9]{1,12}@[a-z]{1,8}\.fr", fullmatch=True), max_size=80
    ),
    filename=st.text(min_size=1, max_size=80),
)
def test_composed_messages_are_well_formed(
    subject: str, body: str, references: list[str], filename: str
) -> None:
    original = Original("orig@hopital-demo.mssante.fr", tuple(references), subject)
    try:
        raw, message_id = compose(
            sender=SENDER,
            recipient=DOCTOR,
            subject=subject,
            body=body,
            now=NOW,
            hostname="pli.test",
            original=original,
            uploads=[Upload(filename, "application/pdf", b"%PDF-1.4\n")],
            upload_size=1024,
            message_size=1024 * 1024,
        )
    except ComposeError as refused:
        assert refused.text
        return
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Message-ID"] == f"<{message_id}>"
    assert message["In-Reply-To"] == "<orig@hopital-demo.mssante.fr>"
    assert len(message["References"].split()) <= MAX_REFERENCES
    assert message["References"].split()[-1] == "<orig@hopital-demo.mssante.fr>"
    assert message["From"].addresses[0].addr_spec == SENDER.address
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == clean_filename(filename)


@FAST
@given(st.text(max_size=200), st.booleans())
def test_read_receipts_are_well_formed(subject: str, automatic: bool) -> None:
    raw = build_mdn(
        Receipt(
            SENDER.address,
            SENDER.name,
            DOCTOR.address,
            "orig@x",
            "rfc822;a@b",
            subject,
            NOW,
            automatic,
        ),
        hostname="pli.test",
    )
    assert b"\r\r" not in raw and b"\n" not in raw.replace(b"\r\n", b"")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "disposition-notification"
    human, notification = list(message.iter_parts())
    fields = notification.get_payload()
    assert "Original-Recipient: rfc822;a@b" in str(fields) or "Original-Recipient" in raw.decode()
    assert b"Original-Message-ID: <orig@x>" in raw
    assert (b"MDN-sent-automatically" in raw) is automatic
    assert (message["Auto-Submitted"] == "auto-replied") is automatic
    assert human.get_content_type() == "text/plain"


def test_a_long_text_body_is_cut_with_a_notice() -> None:
    raw = build_message(body="x" * (parts.MAX_TEXT_SHOWN + 10))
    view = reading.view(raw, parse_structure(raw))
    assert view.text is not None and len(view.text) == parts.MAX_TEXT_SHOWN
    assert view.text_truncated


def test_html_beyond_its_limit_is_cut() -> None:
    cleaned, _ = htmlsafe.sanitise("<p>a</p>" * (htmlsafe.MAX_HTML // 8 + 100), lambda c: None)
    assert len(cleaned) <= htmlsafe.MAX_HTML + 100


def test_pdf_header_may_follow_junk_within_the_window() -> None:
    window = parts.PDF_HEADER_WINDOW
    assert parts.looks_like("application/pdf", b" " * (window - 6) + b"%PDF-1")
    assert not parts.looks_like("application/pdf", b" " * window + b"%PDF-1")
