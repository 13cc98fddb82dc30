"""A zip archive opened defensively: every entry checked before a byte is decompressed.

Refused, with the reason: data that is not a zip; a directory too large to parse safely
(zipfile builds an object per entry, so the End of Central Directory record is read first);
too many entries; names that could escape an extraction directory (``..``, absolute paths,
drive letters, backslashes, control characters); symbolic links; encrypted entries; duplicate
names (also differing only by case); compression other than stored and deflate (IHE ITI TF-1
§16: XDM zip uses deflate); declared sizes that add up to a bomb or compress too well.

Reading an entry decompresses at most its declared size and checks its CRC-32 (zipfile does);
nested archives are read as bytes, never opened. Pure: bytes in, bytes out, no file system.
"""

from __future__ import annotations

import io
import stat
import struct
import unicodedata
import zipfile
import zlib

from .limits import MAX_DIRECTORY_BYTES_PER_ENTRY, XdmLimits
from .model import Reason, Refused

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_EOCD_SIZE = 22
_MAX_COMMENT = 0xFFFF

#: What zipfile may raise on malformed input (besides BadZipFile).
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    OverflowError,
    struct.error,
    UnicodeDecodeError,
    KeyError,
    RuntimeError,
    IndexError,
)


def directory_extent(data: bytes) -> tuple[int, int]:
    """(entries, central directory size) as the End of Central Directory record declares them
    (APPNOTE.TXT §4.3.16, ZIP64 §4.3.14), found the way zipfile finds it."""
    tail = data[-(_EOCD_SIZE + _MAX_COMMENT) :]
    position = tail.rfind(_EOCD)
    if position < 0 or len(tail) - position < _EOCD_SIZE:
        raise Refused(Reason.NOT_ZIP, "the attachment is not a zip archive (no end record)")
    fields = struct.unpack("<4s4H2LH", tail[position : position + _EOCD_SIZE])
    entries, size = fields[4], fields[5]
    if entries == 0xFFFF or size == 0xFFFFFFFF:
        entries, size = _zip64_extent(data, len(data) - len(tail) + position)
    return entries, size


def _zip64_extent(data: bytes, eocd_offset: int) -> tuple[int, int]:
    locator = data[eocd_offset - 20 : eocd_offset]
    if len(locator) != 20 or not locator.startswith(_EOCD64_LOCATOR):
        raise Refused(Reason.NOT_ZIP, "the zip's ZIP64 end record is missing")
    record_offset = struct.unpack("<4sLQL", locator)[2]
    record = data[record_offset : record_offset + 56]
    if len(record) != 56 or not record.startswith(_EOCD64):
        raise Refused(Reason.NOT_ZIP, "the zip's ZIP64 end record is malformed")
    fields = struct.unpack("<4sQ2H2L4Q", record)
    return fields[7], fields[8]


def unsafe_name_problem(name: str) -> str | None:
    """Why an entry name could escape the place it is extracted to, or None."""
    if not name:
        return "an empty name"
    if any(unicodedata.category(char) == "Cc" for char in name):
        return "a control character"
    if "\\" in name:
        return "a backslash"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
        return "an absolute path"
    if ".." in name.split("/"):
        return "a '..' component"
    return None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)  # 3: Unix (APPNOTE §4.4.2)


class SafeArchive:
    """The entries of a checked zip, by name; ``read`` returns an entry's checked bytes."""

    def __init__(self, data: bytes, limits: XdmLimits) -> None:
        if len(data) > limits.max_package_size:
            raise Refused(
                Reason.TOO_LARGE,
                f"the package is {len(data)} bytes; the limit is {limits.max_package_size}",
            )
        entries, directory_size = directory_extent(data)
        if (
            entries > limits.max_entries
            or directory_size > limits.max_entries * MAX_DIRECTORY_BYTES_PER_ENTRY
        ):
            raise Refused(
                Reason.TOO_MANY_ENTRIES,
                f"the zip declares {entries} entries in a {directory_size}-byte directory; "
                f"the limit is {limits.max_entries} entries",
            )
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except ZIP_ERRORS as error:
            raise Refused(Reason.NOT_ZIP, f"the zip cannot be read ({_describe(error)})") from None
        if len(infos) > limits.max_entries:
            raise Refused(
                Reason.TOO_MANY_ENTRIES,
                f"the zip has {len(infos)} entries; the limit is {limits.max_entries}",
            )
        self.entries = self._check_entries(infos, limits)
        self._folded = {name.casefold(): name for name in self.entries}

    def _check_entries(
        self, infos: list[zipfile.ZipInfo], limits: XdmLimits
    ) -> dict[str, zipfile.ZipInfo]:
        entries: dict[str, zipfile.ZipInfo] = {}
        folded: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            problem = unsafe_name_problem(name)
            if problem is not None:
                raise Refused(Reason.UNSAFE_NAME, f"the entry {name!r} has {problem}")
            if _is_symlink(info):
                raise Refused(Reason.SYMLINK, f"the entry {name!r} is a symbolic link")
            if info.flag_bits & 0x1:
                raise Refused(Reason.ENCRYPTED, f"the entry {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise Refused(
                    Reason.UNSUPPORTED_COMPRESSION,
                    f"the entry {name!r} uses compression method {info.compress_type}; "
                    "only stored and deflate are read",
                )
            if name.casefold() in folded:
                raise Refused(Reason.DUPLICATE_NAME, f"the entry name {name!r} appears twice")
            folded.add(name.casefold())
            total += info.file_size
            if total > limits.max_total_uncompressed:
                raise Refused(
                    Reason.BOMB,
                    f"the entries declare more than {limits.max_total_uncompressed} bytes "
                    "uncompressed",
                )
            ratio_base = max(info.compress_size, 1)
            if (
                info.file_size >= limits.ratio_floor
                and info.file_size / ratio_base > limits.max_ratio
            ):
                raise Refused(
                    Reason.BOMB,
                    f"the entry {name!r} expands {info.file_size // ratio_base}-fold; the limit "
                    f"is {limits.max_ratio}",
                )
            if not info.is_dir():
                entries[name] = info
        return entries

    def find(self, name: str) -> str | None:
        """The entry called ``name``, exactly or else ignoring case (XDM names are upper case
        on the media, not always in zips)."""
        if name in self.entries:
            return name
        return self._folded.get(name.casefold())

    def read(self, name: str) -> bytes:
        """The bytes of an entry: at most its declared size, CRC-32 checked."""
        info = self.entries[name]
        try:
            with self._zip.open(info) as stream:
                content = stream.read(info.file_size + 1)
        except ZIP_ERRORS as error:
            raise Refused(
                Reason.CORRUPT_ENTRY, f"the entry {name!r} is corrupt ({_describe(error)})"
            ) from None
        if len(content) != info.file_size:
            raise Refused(
                Reason.CORRUPT_ENTRY,
                f"the entry {name!r} holds {len(content)} bytes, its header says {info.file_size}",
            )
        return content


def _describe(error: Exception) -> str:
    """A short description of a zip error, without echoing the input."""
    text = str(error).splitlines()[0][:120] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
