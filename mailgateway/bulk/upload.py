"""A campaign uploaded over the HTTP API (``api.py``), written into a staging directory as the
files the definition names, bounded and checked before anything else reads it.

Two shapes of request body:

- ``multipart/form-data`` (RFC 7578): one part named ``definition`` (the campaign file; its
  filename ending in ``.json`` makes it ``campaign.json``, anything else ``campaign.toml``) and
  any number of parts named ``files`` whose filenames are the paths the definition and the
  recipients file name (``patients.csv``, ``livret.pdf``, ``pdf/123.pdf``). Parts are streamed
  to disk as they arrive: memory stays bounded whatever the campaign's size.
- ``application/json`` (RFC 8259): ``{"definition": {…}, "texts": {"patients.csv": "…"},
  "files": {"livret.pdf": "<base64>"}}``; it is parsed whole, so its bound is lower.

Every body is bounded (``bulk.api_max_request_size``, :data:`MAX_JSON_BODY`): the declared
``Content-Length`` is refused at once when too large, and the bytes actually received are
counted (a chunked body cannot lie its way past the bound). A file name is a relative path of
plain components: no ``..``, no absolute path, no backslash, no control character, no hidden
file, at most :data:`MAX_PATH_LENGTH` characters; a name given twice is refused. Each file is
fsynced, then its directory: what the API acknowledges survives a crash.

What this module must not do: interpret the campaign (``campaign.py`` reads what it names,
``confined`` to the staging directory).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from pli.docstore.blobs import fsync_directory

from .definition import DEFINITION_NAMES

if TYPE_CHECKING:  # a typing-only name of python-multipart
    from python_multipart.multipart import MultipartCallbacks

#: A JSON submission is held whole in memory to be parsed (base64 adds a third): above this,
#: use multipart, which streams to disk.
MAX_JSON_BODY = 64 * 1024 * 1024
#: Files in one submission: a campaign at ``bulk.max_rows``' default (100,000) with one letter
#: per row. Each part becomes a file: the bound keeps a flood of empty parts from exhausting
#: the file system's inodes.
MAX_UPLOAD_FILES = 100_000
#: A file's path in a submission (Linux PATH_MAX is 4096; nobody needs more than this), and one
#: of its components (NAME_MAX, POSIX).
MAX_PATH_LENGTH = 1024
MAX_NAME_LENGTH = 255
#: A multipart part's headers (Content-Disposition, Content-Type): RFC 7578 parts carry a few
#: short lines.
MAX_PART_HEADERS = 16 * 1024
#: Form fields of a multipart body: ``definition`` and ``files`` only.
DEFINITION_FIELD, FILES_FIELD = "definition", "files"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


class UploadError(Exception):
    """The request body cannot be taken: an HTTP status, a stable code and an English text
    (the API's clients are programs; their operators read the text)."""

    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.code = code
        self.text = text


def too_large(limit: int) -> UploadError:
    return UploadError(413, "request-too-large", f"the request body exceeds {limit} bytes")


def check_declared_length(headers: Mapping[str, str], limit: int) -> None:
    """Refuse at once a body whose declared length is over ``limit`` (RFC 9110 §8.6)."""
    declared = headers.get("content-length")
    if declared is None:
        return
    if not declared.isdigit():
        raise UploadError(400, "bad-content-length", "Content-Length is not a number")
    if int(declared) > limit:
        raise too_large(limit)


async def bounded(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The chunks of ``stream``; :class:`UploadError` (413) once more than ``limit`` bytes
    came."""
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > limit:
            raise too_large(limit)
        yield chunk


def safe_path(name: str) -> PurePosixPath:
    """A file name of the submission as a safe relative path (UploadError otherwise)."""
    if not name or len(name) > MAX_PATH_LENGTH or _CONTROL.search(name):
        raise UploadError(400, "bad-file-name", f"file name refused: {name[:80]!r}")
    path = PurePosixPath(name)
    parts = path.parts
    if (
        path.is_absolute()
        or not parts
        or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
        or any(len(part.encode()) > MAX_NAME_LENGTH for part in parts)
    ):
        raise UploadError(400, "bad-file-name", f"file name refused: {name[:80]!r}")
    if len(parts) == 1 and parts[0] in DEFINITION_NAMES:
        raise UploadError(
            400, "bad-file-name", f"{name}: the definition goes in the 'definition' field"
        )
    return path


def definition_name(filename: str | None) -> str:
    """The name the definition is kept under: campaign.json for a JSON file, else TOML."""
    json_name, toml_name = DEFINITION_NAMES[1], DEFINITION_NAMES[0]
    return json_name if (filename or "").lower().endswith(".json") else toml_name


@dataclass
class Staging:
    """The files of one submission being written under ``root``."""

    root: Path
    names: set[str] = field(default_factory=set)
    definition: str | None = None
    directories: set[Path] = field(default_factory=set)

    def open(self, relative: PurePosixPath) -> IO[bytes]:
        key = str(relative)
        if key in self.names:
            raise UploadError(400, "duplicate-file", f"{key}: given twice")
        if len(self.names) >= MAX_UPLOAD_FILES:
            raise UploadError(400, "too-many-files", f"more than {MAX_UPLOAD_FILES} files")
        self.names.add(key)
        target = self.root.joinpath(*relative.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.directories.add(target.parent)
            return target.open("xb")
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            raise UploadError(
                400, "bad-file-name", f"{key}: a file and a directory of the same name"
            ) from None

    def open_definition(self, filename: str | None) -> IO[bytes]:
        if self.definition is not None:
            raise UploadError(400, "duplicate-definition", "the definition is given twice")
        self.definition = definition_name(filename)
        self.names.add(self.definition)
        self.directories.add(self.root)
        return (self.root / self.definition).open("xb")

    def write(self, relative: PurePosixPath, data: bytes) -> None:
        with self.open(relative) as file:
            file.write(data)
            close_durably(file)

    def finish(self) -> Path:
        """Directories made durable; the definition file's path."""
        if self.definition is None:
            raise UploadError(400, "definition-missing", "no 'definition' in the request")
        for directory in sorted(self.directories, key=lambda d: len(d.parts), reverse=True):
            fsync_directory(directory)
        return self.root / self.definition


def close_durably(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())


class _MultipartWriter:
    """python-multipart callbacks writing each part to its file as it arrives (they run in a
    worker thread, one chunk at a time)."""

    def __init__(self, staging: Staging) -> None:
        self.staging = staging
        self.header_name = b""
        self.header_value = b""
        self.header_size = 0
        self.disposition = b""
        self.file: IO[bytes] | None = None
        self.ended = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.disposition = b""
        self.header_size = 0

    def _count(self, size: int) -> None:
        self.header_size += size
        if self.header_size > MAX_PART_HEADERS:
            raise UploadError(400, "bad-multipart", "a part's headers are too long")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.strip().lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        filename = raw_filename.decode("utf-8", "replace") if raw_filename is not None else None
        if name == DEFINITION_FIELD:
            self.file = self.staging.open_definition(filename)
        elif name == FILES_FIELD:
            if not filename:
                raise UploadError(400, "bad-file-name", "a 'files' part has no filename")
            self.file = self.staging.open(safe_path(filename))
        else:
            raise UploadError(
                400, "unknown-field", f"unknown form field {name[:80]!r} (definition, files)"
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        assert self.file is not None
        self.file.write(data[start:end])

    def on_part_end(self) -> None:
        if self.file is not None:
            close_durably(self.file)
            self.file.close()
            self.file = None

    def on_end(self) -> None:
        self.ended = True

    def abort(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


async def receive_multipart(
    content_type: str, stream: AsyncIterator[bytes], staging: Staging
) -> Path:
    """Write a multipart body's parts under ``staging``; the definition file's path."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadError(400, "bad-multipart", "multipart/form-data without a boundary")
    writer = _MultipartWriter(staging)
    try:
        parser = MultipartParser(boundary, writer.callbacks())
        async for chunk in stream:
            await asyncio.to_thread(parser.write, chunk)
        parser.finalize()
    except FormParserError:
        raise UploadError(400, "bad-multipart", "malformed multipart/form-data body") from None
    finally:
        writer.abort()
    if not writer.ended:
        raise UploadError(400, "bad-multipart", "the multipart body ends before its last part")
    return await asyncio.to_thread(staging.finish)


def _json_files(document: dict[str, Any]) -> list[tuple[PurePosixPath, bytes]]:
    files: list[tuple[PurePosixPath, bytes]] = []
    texts, binaries = document.get("texts", {}), document.get("files", {})
    if not isinstance(texts, dict) or not isinstance(binaries, dict):
        raise UploadError(400, "bad-json", "'texts' and 'files' are objects: name → content")
    for name, text in texts.items():
        if not isinstance(text, str):
            raise UploadError(400, "bad-json", f"texts[{name[:80]!r}] is not a string")
        files.append((safe_path(name), text.encode("utf-8")))
    for name, encoded in binaries.items():
        try:
            if not isinstance(encoded, str):
                raise ValueError
            data = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise UploadError(400, "bad-json", f"files[{name[:80]!r}] is not base64") from None
        files.append((safe_path(name), data))
    return files


def write_json_submission(body: bytes, staging: Staging) -> Path:
    """Write a JSON submission's definition and files under ``staging`` (in a worker thread);
    the definition file's path."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise UploadError(400, "bad-json", "the body is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("definition"), dict):
        raise UploadError(400, "bad-json", "expected an object with a 'definition' object")
    unknown = set(document) - {"definition", "texts", "files"}
    if unknown:
        raise UploadError(400, "bad-json", f"unknown keys: {', '.join(sorted(unknown))[:200]}")
    files = _json_files(document)
    with staging.open_definition(DEFINITION_NAMES[1]) as file:
        file.write(json.dumps(document["definition"], ensure_ascii=False).encode())
        close_durably(file)
    for path, data in files:
        staging.write(path, data)
    return staging.finish()
