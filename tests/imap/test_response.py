"""The response side: exact bytes of status lines, strings (atom, quoted, literal, NIL), data
responses, FETCH items, codes, ENVELOPE and BODYSTRUCTURE (imaptest's expected lines)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pli.mailbox.imap import response as r
from pli.mailbox.imap.bodystructure import (
    BodyPart,
    Envelope,
    fetch_body_structure,
    fetch_envelope,
    format_body,
    format_envelope,
)
from pli.mailbox.imap.fetch import FetchBody, Section
from pli.mailbox.imap.wire import MAX_QUOTED, astring, literal, nstring, string


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("", b'""'),
        ("plain", b'"plain"'),
        ('say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
        ("été", b"{5}\r\n\xc3\xa9t\xc3\xa9"),
        ("two\r\nlines", b"{10}\r\ntwo\r\nlines"),
        (b"raw\xff", b"{4}\r\nraw\xff"),
        ("x" * MAX_QUOTED, b'"' + b"x" * MAX_QUOTED + b'"'),
        ("x" * (MAX_QUOTED + 1), b"{1025}\r\n" + b"x" * (MAX_QUOTED + 1)),
        ("nul\x00", b"{4}\r\nnul\x00"),
    ],
)
def test_string(value: str | bytes, encoded: bytes) -> None:
    assert string(value) == encoded


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("INBOX", b"INBOX"),
        ("Sent &AOk-", b'"Sent &AOk-"'),
        ("a]b[c", b"a]b[c"),
        ("nil", b'"nil"'),
        ("NIL", b'"NIL"'),
        ("", b'""'),
        ("50%", b'"50%"'),
        ("a*", b'"a*"'),
        ("{x}", b'"{x}"'),
        ("é", b"{2}\r\n\xc3\xa9"),
    ],
)
def test_astring(value: str, encoded: bytes) -> None:
    assert astring(value) == encoded


def test_nstring_and_literal() -> None:
    assert nstring(None) == b"NIL"
    assert nstring("NIL") == b'"NIL"'
    assert literal(b"") == b"{0}\r\n"


def test_status_lines() -> None:
    assert r.tagged("a1", "OK", "FETCH completed") == b"a1 OK FETCH completed\r\n"
    assert r.tagged("a1", "NO", "No such mailbox", "TRYCREATE") == (
        b"a1 NO [TRYCREATE] No such mailbox\r\n"
    )
    assert r.untagged("OK", "Still here") == b"* OK Still here\r\n"
    assert r.untagged("OK", "x", "UIDVALIDITY 3857529045") == b"* OK [UIDVALIDITY 3857529045] x\r\n"
    assert r.bye("Server shutting down") == b"* BYE Server shutting down\r\n"
    assert r.continuation() == b"+ \r\n"
    assert r.continuation("idling") == b"+ idling\r\n"
    assert r.tagged("a", "NO", "Boîte inconnue") == "a NO Boîte inconnue\r\n".encode()


def test_capabilities() -> None:
    before_tls = r.capabilities(
        tls_active=False,
        starttls_available=True,
        login_allowed=False,
        mechanisms=["PLAIN", "OAUTHBEARER"],
        append_limit=26214400,
    )
    assert before_tls[-4:] == ["STARTTLS", "LOGINDISABLED", "AUTH=PLAIN", "AUTH=OAUTHBEARER"]
    assert "APPENDLIMIT=26214400" in before_tls
    after_tls = r.capabilities(
        tls_active=True, starttls_available=True, login_allowed=True, mechanisms=["PLAIN"]
    )
    assert "STARTTLS" not in after_tls and "LOGINDISABLED" not in after_tls
    authenticated = r.capabilities(
        tls_active=True,
        starttls_available=True,
        login_allowed=True,
        mechanisms=["PLAIN"],
        authenticated=True,
        extra=["LIST-EXTENDED"],
    )
    assert not any(name.startswith("AUTH=") for name in authenticated)
    assert authenticated[-1] == "LIST-EXTENDED"
    for required in (
        "IMAP4rev1",
        "IDLE",
        "NAMESPACE",
        "UIDPLUS",
        "MOVE",
        "SPECIAL-USE",
        "LITERAL+",
        "ENABLE",
        "ID",
        "UNSELECT",
        "CONDSTORE",
        "CHILDREN",
        "SASL-IR",
    ):
        assert required in authenticated
    assert r.capability_response(["IMAP4rev1", "IDLE"]) == b"* CAPABILITY IMAP4rev1 IDLE\r\n"
    assert r.greeting("pli ready", ["IMAP4rev1", "STARTTLS"]) == (
        b"* OK [CAPABILITY IMAP4rev1 STARTTLS] pli ready\r\n"
    )
    assert r.greeting("hi", preauth=True) == b"* PREAUTH hi\r\n"


def test_mailbox_data() -> None:
    assert r.flags_response(["\\Answered", "\\Seen", "$Forwarded"]) == (
        b"* FLAGS (\\Answered \\Seen $Forwarded)\r\n"
    )
    assert r.flag_list([]) == b"()"
    assert r.exists(23) == b"* 23 EXISTS\r\n"
    assert r.recent(0) == b"* 0 RECENT\r\n"
    assert r.expunge(3) == b"* 3 EXPUNGE\r\n"
    assert r.list_response(["\\HasNoChildren"], "/", "INBOX") == (
        b'* LIST (\\HasNoChildren) "/" INBOX\r\n'
    )
    assert r.list_response(["\\Noselect"], None, "") == b'* LIST (\\Noselect) NIL ""\r\n'
    assert r.list_response([], ".", "Sent &AOk-", lsub=True) == b'* LSUB () "." "Sent &AOk-"\r\n'
    assert (
        r.list_response(["\\HasChildren"], "/", "a", extended=b'(CHILDINFO ("SUBSCRIBED"))')
        == b'* LIST (\\HasChildren) "/" a (CHILDINFO ("SUBSCRIBED"))\r\n'
    )
    assert r.status_response("blurdybloop", [("MESSAGES", 231), ("UIDNEXT", 44292)]) == (
        b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n"
    )
    assert r.search_response([2, 3, 6]) == b"* SEARCH 2 3 6\r\n"
    assert r.search_response([]) == b"* SEARCH\r\n"
    assert r.search_response([2, 5], modseq=917162500) == b"* SEARCH 2 5 (MODSEQ 917162500)\r\n"
    assert r.search_response([], modseq=5) == b"* SEARCH\r\n"
    assert r.enabled_response(["CONDSTORE"]) == b"* ENABLED CONDSTORE\r\n"
    assert r.enabled_response([]) == b"* ENABLED\r\n"
    assert (
        r.id_response({"name": "pli", "version": None}) == b'* ID ("name" "pli" "version" NIL)\r\n'
    )
    assert r.id_response(None) == b"* ID NIL\r\n"
    assert r.namespace_response([("", "/")]) == b'* NAMESPACE (("" "/")) NIL NIL\r\n'
    assert r.namespace_response([("", None)], [("Other/", "/")]) == (
        b'* NAMESPACE (("" NIL)) (("Other/" "/")) NIL\r\n'
    )


def test_codes() -> None:
    assert r.copyuid_code(38505, [304, 319, 320], [3956, 3957, 3958]) == (
        "COPYUID 38505 304,319:320 3956:3958"
    )
    assert r.appenduid_code(38505, 3955) == "APPENDUID 38505 3955"
    assert r.permanentflags_code(["\\Seen", "\\Deleted"]) == "PERMANENTFLAGS (\\Seen \\Deleted \\*)"
    assert r.permanentflags_code([], keywords_allowed=False) == "PERMANENTFLAGS ()"


def test_fetch_items() -> None:
    moment = datetime(1996, 7, 17, 2, 44, 25, tzinfo=timezone(-timedelta(hours=7)))
    line = r.fetch_response(
        12,
        [
            r.fetch_uid(4827313),
            r.fetch_flags(["\\Seen"]),
            r.fetch_internaldate(moment),
            r.fetch_size(44827),
            r.fetch_modseq(12121231000),
        ],
    )
    assert line == (
        b'* 12 FETCH (UID 4827313 FLAGS (\\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" '
        b"RFC822.SIZE 44827 MODSEQ (12121231000))\r\n"
    )
    assert r.fetch_internaldate(datetime(2024, 1, 5, 3, 4, 5, tzinfo=UTC)) == (
        b'INTERNALDATE "05-Jan-2024 03:04:05 +0000"'
    )
    assert r.fetch_internaldate(datetime(2024, 1, 5, 3, 4, 5)) == (
        b'INTERNALDATE "05-Jan-2024 03:04:05 +0000"'
    )
    partial = FetchBody(Section(text="TEXT"), peek=True, partial=(3, 3))
    assert r.fetch_section(partial, b"body22") == b"BODY[TEXT]<3> {3}\r\ny22"
    whole = FetchBody()
    assert r.fetch_section(whole, b"") == b"BODY[] {0}\r\n"
    assert r.fetch_section(FetchBody(Section((5,))), None) == b"BODY[5] NIL"
    assert r.fetch_section(FetchBody(rfc822="RFC822"), b"x") == b"RFC822 {1}\r\nx"


# --- ENVELOPE: imaptest fetch-envelope (its .mbox messages, its expected lines) ---------------

DATE = "Thu, 15 Feb 2007 01:02:03 +0200"
USER = ((None, None, "user", "domain"),)


@pytest.mark.parametrize(
    ("envelope", "expected"),
    [
        (
            Envelope(
                DATE,
                "subject header",
                (("From Real", None, "fromuser", "fromdomain.org"),),
                (("Sender Real", None, "senderuser", "senderdomain.org"),),
                (("ReplyTo Real", None, "replytouser", "replytodomain.org"),),
                (("To Real", None, "touser", "todomain.org"),),
                (("Cc Real", None, "ccuser", "ccdomain.org"),),
                (("Bcc Real", None, "bccuser", "bccdomain.org"),),
                "<reply@to.id>",
                "<msg@id>",
            ),
            b'("Thu, 15 Feb 2007 01:02:03 +0200" "subject header" (("From Real" NIL "fromuser" '
            b'"fromdomain.org")) (("Sender Real" NIL "senderuser" "senderdomain.org")) '
            b'(("ReplyTo Real" NIL "replytouser" "replytodomain.org")) (("To Real" NIL "touser" '
            b'"todomain.org")) (("Cc Real" NIL "ccuser" "ccdomain.org")) (("Bcc Real" NIL '
            b'"bccuser" "bccdomain.org")) "<reply@to.id>" "<msg@id>")',
        ),
        (
            Envelope(DATE, from_=USER),
            b'("Thu, 15 Feb 2007 01:02:03 +0200" NIL ((NIL NIL "user" "domain")) '
            b'((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) NIL NIL NIL NIL NIL)',
        ),
        (
            Envelope(
                DATE,
                from_=(("Real Name", None, "user", "domain"),),
                sender=(),
                reply_to=(),
                to=(
                    (None, None, "group", None),
                    (None, None, "g1", "d1.org"),
                    (None, None, "g2", "d2.org"),
                    (None, None, None, None),
                    (None, None, "group2", None),
                    (None, None, "g3", "d3.org"),
                    (None, None, None, None),
                ),
                cc=(
                    (None, None, "group", None),
                    (None, None, None, None),
                    (None, None, "group2", None),
                    (None, None, None, None),
                ),
            ),
            b'("Thu, 15 Feb 2007 01:02:03 +0200" NIL (("Real Name" NIL "user" "domain")) '
            b'(("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) '
            b'((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")'
            b'(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL)) '
            b'((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)) '
            b"NIL NIL NIL)",
        ),
        (
            Envelope(DATE, from_=((None, "@route", "user", "domain"),)),
            b'("Thu, 15 Feb 2007 01:02:03 +0200" NIL ((NIL "@route" "user" "domain")) '
            b'((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) '
            b"NIL NIL NIL NIL NIL)",
        ),
        (Envelope(), b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
    ],
)
def test_envelope(envelope: Envelope, expected: bytes) -> None:
    assert format_envelope(envelope) == expected


def test_envelope_with_8bit_subject_is_a_literal() -> None:
    envelope = Envelope(subject="Résultats", message_id="<a@b>")
    assert format_envelope(envelope) == (
        b'(NIL {10}\r\nR\xc3\xa9sultats NIL NIL NIL NIL NIL NIL NIL "<a@b>")'
    )
    assert fetch_envelope(Envelope()).startswith(b"ENVELOPE (NIL")


# --- BODY / BODYSTRUCTURE --------------------------------------------------------------------

TEXT = BodyPart("TEXT", "x-MYOWN", (("CHARSET", "us-ascii"),), encoding="7BIT", size=7, lines=1)


def test_body_of_imaptest_fetch_bodystructure() -> None:
    multipart = BodyPart(
        type="multipart", subtype="MIXED", parts=(TEXT,), params=(("BOUNDARY", "x"),)
    )
    assert fetch_body_structure(multipart, extensible=False) == (
        b'BODY (("TEXT" "x-MYOWN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 7 1) "MIXED")'
    )
    assert fetch_body_structure(multipart, extensible=True) == (
        b'BODYSTRUCTURE (("TEXT" "x-MYOWN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 7 1 '
        b'NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "x") NIL NIL NIL)'
    )


def test_bodystructure_rfc3501_example_with_extension_data() -> None:
    """RFC 3501 §7.4.2's example, with disposition, language and location added."""
    plain = BodyPart("TEXT", "PLAIN", (("CHARSET", "US-ASCII"),), None, None, "7BIT", 1152, 23)
    attachment = BodyPart(
        "TEXT",
        "PLAIN",
        (("CHARSET", "US-ASCII"), ("NAME", "cc.diff")),
        "<960723163407.20117h@cac.washington.edu>",
        "Compiler diff",
        "BASE64",
        4554,
        73,
        md5="Q2hlY2sgSW50ZWdyaXR5IQ==",
        disposition=("attachment", (("filename", "cc.diff"),)),
        language=("en", "fr"),
        location="http://example.org/cc.diff",
    )
    multipart = BodyPart(
        type="MULTIPART", subtype="MIXED", parts=(plain, attachment), language=("fr",)
    )
    assert format_body(multipart) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23 NIL NIL NIL NIL)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73 '
        b'"Q2hlY2sgSW50ZWdyaXR5IQ==" ("attachment" ("filename" "cc.diff")) ("en" "fr") '
        b'"http://example.org/cc.diff") "MIXED" NIL NIL "fr" NIL)'
    )
    assert format_body(multipart, extensible=False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)'
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff") '
        b'"<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED")'
    )


def test_bodystructure_of_message_rfc822_and_basic_parts() -> None:
    inner_body = BodyPart("text", "plain", (("charset", "utf-8"),), size=6, lines=1)
    inner_envelope = Envelope("Sun, 12 Aug 2012 12:34:56 +0300", "submsg", USER)
    message = BodyPart(
        "message",
        "rfc822",
        size=120,
        lines=5,
        envelope=inner_envelope,
        message=inner_body,
    )
    assert format_body(message, extensible=False) == (
        b'("message" "rfc822" NIL NIL NIL "7BIT" 120 ("Sun, 12 Aug 2012 12:34:56 +0300" '
        b'"submsg" ((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) '
        b'((NIL NIL "user" "domain")) NIL NIL NIL NIL NIL) '
        b'("text" "plain" ("charset" "utf-8") NIL NIL "7BIT" 6 1) 5)'
    )
    image = BodyPart("image", "png", encoding="BASE64", size=10, disposition=("inline", ()))
    assert format_body(image) == (
        b'("image" "png" NIL NIL NIL "BASE64" 10 NIL ("inline" NIL) NIL NIL)'
    )


HEADER = (
    b"From: User1 <user1@domain.org>\r\n"
    b"Date: Sat, 24 Mar 2007 23:00:00 +0200\r\n"
    b"Subject: s1\r\n"
    b"X-Long: one\r\n"
    b"\ttwo\r\n"
    b"\r\n"
)


def test_header_fields_as_imaptest_fetch_body_expects() -> None:
    from pli.mailbox.imap.fetch import header_fields

    assert header_fields(HEADER, ("from",)) == b"From: User1 <user1@domain.org>\r\n\r\n"
    assert header_fields(HEADER, ("from", "from")) == b"From: User1 <user1@domain.org>\r\n\r\n"
    assert header_fields(HEADER, ("FROM", "Subject")) == (
        b"From: User1 <user1@domain.org>\r\nSubject: s1\r\n\r\n"
    )
    assert header_fields(HEADER, ("xyz",)) == b"\r\n"
    assert header_fields(HEADER, ("date", "x-long"), exclude=True) == (
        b"From: User1 <user1@domain.org>\r\nSubject: s1\r\n\r\n"
    )
    assert header_fields(HEADER, ("x-long",)) == b"X-Long: one\r\n\ttwo\r\n\r\n"
    assert header_fields(b"Subject: no body\n", ("subject",)) == b"Subject: no body\n"
    assert header_fields(b"", ("subject",)) == b""
