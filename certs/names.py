"""Distinguished names: parse the string forms operators and ANS write, compare them with the
subjects of certificates.

ANS's whitelist writes the DN of an operator's certificate as a string, most specific first
(``CN=medimail-asip.mipih.fr,OU=318310021300028,O=GIP MIPIH,ST=Haute-Garonne (31),C=FR``). The
strings come from several generators: RFC 4514 escapes (``\\,``, ``\\C3\\A9``), RFC 2253/1779
quoted values (``O="C.H. DE  CADILLAC"``) and even unescaped quotes inside a value (``O=CRLCC "PAUL
STRAUSS"``), all of which occur in the real file. The parser accepts that superset; anything else
is a :class:`DnSyntaxError` naming the offset.

Comparison (:func:`dn_key`) follows X.500 matching as RFC 5280 §7.1 asks (RFC 4518 string
preparation, simplified): attribute types are compared by OID whatever the name written (``ST``,
``S``, ``2.5.4.8``, ``OID.2.5.4.8``); values after Unicode NFKC, case folding, trimming and
collapsing of inner white space; and the order of attributes is not significant (the whitelist
writes CN first, a certificate encodes C first). Two DNs are equal when their keys are equal.

This module must not decide who is trusted; it only says whether two names are the same.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import TypeAlias

from cryptography import x509
from cryptography.x509.oid import NameOID

#: Longest DN string accepted. Real DNs are a few hundred characters (RFC 5280 Appendix A upper
#: bounds: 64 per common name, 128 per organisation…); 8 KiB leaves room and bounds the work.
MAX_DN_LENGTH = 8192
#: Most attribute/value pairs in one DN (a real one has 5 to 10).
MAX_DN_ATTRIBUTES = 64

#: Attribute type names → OID, as written by RFC 4514, RFC 1779, OpenSSL and Java.
ATTRIBUTE_OIDS: dict[str, str] = {
    "CN": "2.5.4.3",
    "COMMONNAME": "2.5.4.3",
    "SN": "2.5.4.4",
    "SURNAME": "2.5.4.4",
    "SERIALNUMBER": "2.5.4.5",
    "C": "2.5.4.6",
    "COUNTRYNAME": "2.5.4.6",
    "L": "2.5.4.7",
    "LOCALITYNAME": "2.5.4.7",
    "ST": "2.5.4.8",
    "S": "2.5.4.8",
    "STATEORPROVINCENAME": "2.5.4.8",
    "STREET": "2.5.4.9",
    "STREETADDRESS": "2.5.4.9",
    "O": "2.5.4.10",
    "ORGANIZATIONNAME": "2.5.4.10",
    "OU": "2.5.4.11",
    "ORGANIZATIONALUNITNAME": "2.5.4.11",
    "T": "2.5.4.12",
    "TITLE": "2.5.4.12",
    "BUSINESSCATEGORY": "2.5.4.15",
    "POSTALCODE": "2.5.4.17",
    "NAME": "2.5.4.41",
    "GN": "2.5.4.42",
    "G": "2.5.4.42",
    "GIVENNAME": "2.5.4.42",
    "INITIALS": "2.5.4.43",
    "GENERATIONQUALIFIER": "2.5.4.44",
    "DNQUALIFIER": "2.5.4.46",
    "PSEUDONYM": "2.5.4.65",
    "ORGANIZATIONIDENTIFIER": "2.5.4.97",
    "UID": "0.9.2342.19200300.100.1.1",
    "USERID": "0.9.2342.19200300.100.1.1",
    "DC": "0.9.2342.19200300.100.1.25",
    "E": "1.2.840.113549.1.9.1",
    "EMAIL": "1.2.840.113549.1.9.1",
    "EMAILADDRESS": "1.2.840.113549.1.9.1",
}

#: Short names used when we write a DN (RFC 4514 ones, plus the attributes IGC Santé uses).
_WRITE_NAMES: dict[x509.ObjectIdentifier, str] = {
    NameOID.SERIAL_NUMBER: "SERIALNUMBER",
    NameOID.SURNAME: "SN",
    NameOID.GIVEN_NAME: "GN",
    NameOID.TITLE: "T",
    NameOID.EMAIL_ADDRESS: "E",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
}

Ava: TypeAlias = tuple[str, str]
"""One attribute: (dotted OID, value as written, unescaped)."""
ParsedDn: TypeAlias = tuple[tuple[Ava, ...], ...]
"""RDNs in the order written, each a tuple of attributes (several with ``+``)."""
DnKey: TypeAlias = tuple[Ava, ...]
"""The comparison form: sorted (OID, normalised value) pairs."""


class DnSyntaxError(ValueError):
    """A DN string that cannot be read; the message names the offset and what was expected."""


_OID = re.compile(r"^(?:OID\.)?([0-2](?:\.(?:0|[1-9][0-9]*))+)$", re.IGNORECASE)
_KEYWORD = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_HEX = frozenset("0123456789abcdefABCDEF")
_SPACES = " \t"
_PLAIN_STOP = re.compile(r"[,;+\\]")
_SEPARATORS = ",;"
_STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x14: "latin-1", 0x1E: "utf-16-be"}


def parse_dn(text: str) -> ParsedDn:
    """RDNs of a DN string (``CN=a,OU=b+O=c``), values unescaped. The empty string is the empty
    DN. Raises :class:`DnSyntaxError`."""
    if len(text) > MAX_DN_LENGTH:
        raise DnSyntaxError(f"DN longer than {MAX_DN_LENGTH} characters")
    parser = _Parser(text)
    return parser.parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.count = 0

    def fail(self, expected: str) -> DnSyntaxError:
        found = repr(self.text[self.at]) if self.at < len(self.text) else "end of text"
        return DnSyntaxError(f"at offset {self.at}: expected {expected}, found {found}")

    def skip_spaces(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in _SPACES:
            self.at += 1

    def parse(self) -> ParsedDn:
        self.skip_spaces()
        if self.at == len(self.text):
            return ()
        rdns = [self.rdn()]
        while self.at < len(self.text):
            if self.text[self.at] not in _SEPARATORS:
                raise self.fail("',' between attributes")
            self.at += 1
            rdns.append(self.rdn())
        return tuple(rdns)

    def rdn(self) -> tuple[Ava, ...]:
        avas = [self.ava()]
        while self.at < len(self.text) and self.text[self.at] == "+":
            self.at += 1
            avas.append(self.ava())
        return tuple(avas)

    def ava(self) -> Ava:
        self.count += 1
        if self.count > MAX_DN_ATTRIBUTES:
            raise DnSyntaxError(f"more than {MAX_DN_ATTRIBUTES} attributes")
        self.skip_spaces()
        start = self.at
        while self.at < len(self.text) and self.text[self.at] not in "=,;+":
            self.at += 1
        name = self.text[start : self.at].strip()
        if self.at == len(self.text) or self.text[self.at] != "=":
            raise self.fail("an attribute such as 'CN=…'")
        oid = attribute_oid(name)
        if oid is None:
            self.at = start
            raise self.fail("an attribute type (CN, OU, O, ST, C, … or a dotted OID)")
        self.at += 1
        self.skip_spaces()
        return oid, self.value()

    def value(self) -> str:
        if self.at < len(self.text) and self.text[self.at] == "#":
            return self.hex_value()
        if self.at < len(self.text) and self.text[self.at] == '"':
            return self.quoted_value()
        return self.plain_value()

    def hex_value(self) -> str:
        start = self.at
        self.at += 1
        while self.at < len(self.text) and self.text[self.at] in _HEX:
            self.at += 1
        digits = self.text[start + 1 : self.at]
        if not digits or len(digits) % 2:
            raise self.fail("an even number of hexadecimal digits after '#'")
        self.skip_spaces()
        self.expect_end_of_value()
        return _decode_ber_string(bytes.fromhex(digits))

    def quoted_value(self) -> str:
        self.at += 1
        out = bytearray()
        while True:
            if self.at >= len(self.text):
                raise self.fail("a closing '\"'")
            char = self.text[self.at]
            if char == '"':
                self.at += 1
                break
            if char == "\\":
                out += self.escape()
            else:
                out += char.encode()
                self.at += 1
        self.skip_spaces()
        self.expect_end_of_value()
        return self.decode(out)

    def plain_value(self) -> str:
        stop = _PLAIN_STOP.search(self.text, self.at)
        end = stop.start() if stop else len(self.text)
        if stop is None or stop.group() != "\\":  # fast path: nothing escaped
            value = self.text[self.at : end].rstrip(_SPACES)
            self.at = end
            return value
        out = bytearray()
        trailing_spaces = 0  # unescaped spaces at the end are not part of the value
        while self.at < len(self.text) and self.text[self.at] not in ",;+":
            char = self.text[self.at]
            if char == "\\":
                out += self.escape()
                trailing_spaces = 0
                continue
            out += char.encode()
            trailing_spaces = trailing_spaces + 1 if char in _SPACES else 0
            self.at += 1
        if trailing_spaces:
            del out[-trailing_spaces:]
        return self.decode(out)

    def escape(self) -> bytes:
        self.at += 1
        if self.at >= len(self.text):
            raise self.fail("a character or two hexadecimal digits after '\\'")
        pair = self.text[self.at : self.at + 2]
        if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
            self.at += 2
            return bytes.fromhex(pair)
        char = self.text[self.at]
        self.at += 1
        return char.encode()

    def expect_end_of_value(self) -> None:
        if self.at < len(self.text) and self.text[self.at] not in ",;+":
            raise self.fail("',' or '+' after the value")

    def decode(self, raw: bytearray) -> str:
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise DnSyntaxError(f"before offset {self.at}: escaped bytes are not UTF-8") from None


def attribute_oid(name: str) -> str | None:
    """The dotted OID of an attribute type written ``CN``, ``cn``, ``2.5.4.3`` or
    ``OID.2.5.4.3``; None when unknown."""
    match = _OID.match(name)
    if match:
        return match.group(1)
    if _KEYWORD.match(name):
        return ATTRIBUTE_OIDS.get(name.upper())
    return None


def _decode_ber_string(data: bytes) -> str:
    """The text of a BER-encoded directory string (``#0C03616263``); other encodings are kept as
    ``#hex`` so that they compare by their exact bytes."""
    fallback = "#" + data.hex()
    if len(data) < 2 or data[0] not in _STRING_TAGS:
        return fallback
    length, offset = data[1], 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 4 or len(data) < 2 + size:
            return fallback
        length, offset = int.from_bytes(data[2 : 2 + size], "big"), 2 + size
    if offset + length != len(data):
        return fallback
    try:
        return data[offset:].decode(_STRING_TAGS[data[0]])
    except UnicodeDecodeError:
        return fallback


def normalise_value(value: str) -> str:
    """A value as X.500 matching compares it: NFKC, case-folded, trimmed, inner white space
    collapsed to one space (RFC 4518 §2, simplified)."""
    folded = unicodedata.normalize("NFKC", value).casefold()
    return " ".join(folded.split())


def dn_key(dn: str | x509.Name | ParsedDn) -> DnKey:
    """The comparison form of a DN string, a certificate name or a parsed DN. Raises
    :class:`DnSyntaxError` for a string that is not a DN."""
    if isinstance(dn, str):
        return _string_key(dn)
    if isinstance(dn, x509.Name):
        pairs = [
            (attribute.oid.dotted_string, _attribute_text(attribute.value)) for attribute in dn
        ]
    else:
        pairs = [ava for rdn in dn for ava in rdn]
    return tuple(sorted((oid, normalise_value(value)) for oid, value in pairs))


@functools.lru_cache(maxsize=4096)
def _string_key(text: str) -> DnKey:
    """Keys of DN strings are cached: a whitelist repeats a few hundred DNs thousands of times."""
    return dn_key(parse_dn(text))


def _attribute_text(value: str | bytes) -> str:
    return value if isinstance(value, str) else "#" + value.hex()


def dn_string(name: x509.Name) -> str:
    """A certificate name as the whitelist writes it: RFC 4514, most specific first, with the
    short names IGC Santé uses (``SERIALNUMBER``, ``GN``, ``SN``, ``T``)."""
    return name.rfc4514_string(_WRITE_NAMES)


def dns_equal(left: str | x509.Name, right: str | x509.Name) -> bool:
    """Whether two DNs name the same subject (see :func:`dn_key`)."""
    return dn_key(left) == dn_key(right)
