"""Bounds of IHE_XDM.zip reading, each with where its value comes from.

A package is read in memory: its size is bounded by the message that carried it, the bytes
decompressed by the sum of the entries' declared sizes, the metadata by its own size, depth and
element count. Nothing is decompressed before every bound has been checked on the zip's
directory.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The package cannot be larger than the message that carried it: 25 MiB, pli's default
#: limits.message_size (mssante.md §4: Mon espace santé bounces above 25 MB).
MAX_PACKAGE_SIZE = 25 * 1024 * 1024
#: Entries in the zip. An XDM package holds README.TXT, INDEX.HTM, METADATA.XML, its documents
#: and perhaps a stylesheet per subset (IHE ITI TF-1 §16.1.2): tens, not thousands.
MAX_ENTRIES = 1000
#: Central directory bytes per entry allowed before zipfile parses it (a 46-byte header, the
#: name, extra fields and comment of a sane entry fit in 1 KiB): bounds zipfile's memory.
MAX_DIRECTORY_BYTES_PER_ENTRY = 1024
#: Sum of the entries' declared uncompressed sizes: 64 MiB (a package of the largest message,
#: uncompressed CDA with embedded PDF: ~1.4x; more is a bomb).
MAX_TOTAL_UNCOMPRESSED = 64 * 1024 * 1024
#: Compression ratio above which an entry of at least RATIO_FLOOR bytes is a bomb (OWASP "zip
#: bomb" guidance: cap the ratio and the total). XML compresses 5-50x, deflated zeros ~1000x.
#: The total above is the bound that matters (it caps the work); this refuses a bomb early.
MAX_RATIO = 200
RATIO_FLOOR = 1024 * 1024
#: Documents in one package (DocumentEntry objects in the metadata).
MAX_DOCUMENTS = 100
#: METADATA.XML: an ebRIM SubmitObjectsRequest of MAX_DOCUMENTS entries is well under 2 MiB.
MAX_METADATA_SIZE = 2 * 1024 * 1024
#: Nesting of METADATA.XML elements (ebRIM metadata is ~8 deep) and their number.
MAX_XML_DEPTH = 32
MAX_XML_ELEMENTS = 100_000
#: ebRIM 3.0 rim.xsd: a Slot Value is a LongName (256 characters); a LocalizedString value is
#: FreeFormText (1024 characters).
MAX_SLOT_VALUE = 256
MAX_LOCALIZED_STRING = 1024


@dataclass(frozen=True)
class XdmLimits:
    """The bounds in force (tests narrow them; callers pass pli's message size)."""

    max_package_size: int = MAX_PACKAGE_SIZE
    max_entries: int = MAX_ENTRIES
    max_total_uncompressed: int = MAX_TOTAL_UNCOMPRESSED
    max_ratio: int = MAX_RATIO
    ratio_floor: int = RATIO_FLOOR
    max_documents: int = MAX_DOCUMENTS
    max_metadata_size: int = MAX_METADATA_SIZE


DEFAULT_LIMITS = XdmLimits()
