"""The object table of the embedded engine: local folders scanned into BigQuery's object-table columns.

One row per file under the folders, recursively: ``uri`` (``file://`` absolute), ``generation``
(mtime in ns), ``content_type`` (sniffed from the bytes), ``size``, ``md5_hash`` (base64, as
Cloud Storage gives it), ``updated`` (mtime) and ``metadata`` (empty). A file whose size and
mtime are unchanged since the last scan is not read again: its hash comes from the cache.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Optional
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    import pyarrow

__all__ = ["ObjectFile", "object_schema", "path_of", "scan", "sniff_content_type", "to_arrow", "uri_of"]

_SNIFF_BYTES = 16
# (prefix, content type) for the formats told apart by their first bytes.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
)


@dataclass(frozen=True)
class ObjectFile:
    """One file's object-table row (``metadata`` is always empty here)."""

    uri: str
    generation: int
    content_type: str
    size: int
    md5_hash: str
    updated_ns: int


def sniff_content_type(head: bytes) -> str:
    """The content type told by a file's first bytes: an image format, text/plain, or application/octet-stream."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if not head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # A cut in the middle of a multi-byte character still counts as text.
        try:
            head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "application/octet-stream"
    if all(b >= 0x20 or b in b"\t\n\r\f" for b in head):
        return "text/plain"
    return "application/octet-stream"


def uri_of(path: Path) -> str:
    """The ``file://`` URI of an absolute path."""
    return path.absolute().as_uri()


def path_of(uri: str) -> Optional[Path]:
    """The local path of a ``file://`` URI, or None for any other scheme."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def _digest(path: Path) -> tuple[str, str]:
    """(content type, base64 md5) of a file, reading it once."""
    md5 = hashlib.md5()  # noqa: S324 - the object-table checksum, as Cloud Storage reports it
    head = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            if not head:
                head = chunk[:_SNIFF_BYTES]
            md5.update(chunk)
    return sniff_content_type(head), base64.b64encode(md5.digest()).decode("ascii")


def _files(roots: Iterable[Path]) -> Iterator[Path]:
    """Every regular file under ``roots``, recursively, in a stable order."""
    for root in roots:
        root = Path(root).absolute()
        if root.is_file():
            yield root
            continue
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                path = Path(folder, name)
                if path.is_file():
                    yield path


def scan(roots: Iterable[Path], cache: Mapping[str, ObjectFile]) -> list[ObjectFile]:
    """The object-table rows of the files under ``roots``; files unchanged since ``cache`` are not re-read."""
    found: list[ObjectFile] = []
    for path in _files(roots):
        try:
            stat = path.stat()
            uri = uri_of(path)
            known = cache.get(uri)
            if known is not None and known.size == stat.st_size and known.generation == stat.st_mtime_ns:
                found.append(known)
                continue
            content_type, md5_hash = _digest(path)
        except OSError:
            continue  # vanished or unreadable between the walk and the read: not an object now
        found.append(ObjectFile(uri, stat.st_mtime_ns, content_type, stat.st_size, md5_hash, stat.st_mtime_ns))
    return found


def object_schema() -> "pyarrow.Schema":
    """The Arrow schema of an object table (BigQuery's columns, without ``ref``)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("uri", pa.string()),
            pa.field("generation", pa.int64()),
            pa.field("content_type", pa.string()),
            pa.field("size", pa.int64()),
            pa.field("md5_hash", pa.string()),
            pa.field("updated", pa.timestamp("us", tz="UTC")),
            pa.field("metadata", pa.list_(pa.struct([("name", pa.string()), ("value", pa.string())]))),
        ]
    )


def to_arrow(files: list[ObjectFile]) -> "pyarrow.Table":
    """The object-table rows as an Arrow table."""
    import pyarrow as pa

    return pa.table(
        {
            "uri": [f.uri for f in files],
            "generation": [f.generation for f in files],
            "content_type": [f.content_type for f in files],
            "size": [f.size for f in files],
            "md5_hash": [f.md5_hash for f in files],
            "updated": [f.updated_ns // 1000 for f in files],
            "metadata": [[] for _ in files],
        },
        schema=object_schema(),
    )
