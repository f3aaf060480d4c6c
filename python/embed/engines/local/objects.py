"""The object table of the embedded engine: local folders listed as BigQuery's object-table rows.

:func:`scan` gives one row per file under the folders, recursively: ``uri`` (``file://``, the
path's bytes percent-encoded), ``generation``, ``content_type`` (sniffed from the bytes), ``size``,
``md5_hash`` (base64, as Cloud Storage gives it), ``updated`` (mtime) and ``metadata`` (empty),
and a warning for each thing it met and did not list. What it promises:

- **Once.** Folders are made canonical (absolute, ``..`` and symlinks resolved); the same folder
  given twice, or a folder inside another, is listed once. Symlinks to folders below them are not
  followed (a warning names each), so a file has one uri and a symlink loop cannot recurse.
- **Nothing silent.** Only regular files become rows. A file that cannot be read is still a row,
  without content type or hash (its embedding status says why). Dangling symlinks, symlink loops,
  FIFOs, sockets, devices, folders that cannot be listed and pseudo filesystems (/proc, /sys, /dev)
  are warnings, each with its reason.
- **No hang.** A file is opened without blocking, checked to be regular and read no further than
  the size it had; files over the endpoint's 20 MB limit are never hashed (``md5_hash`` NULL, as
  for Cloud Storage's composite objects). Pseudo filesystems are never entered.
- **Every rewrite seen.** ``generation`` is derived from inode, ctime, mtime and size, so it
  changes when a file is rewritten even with the same size and mtime, as Cloud Storage's changes on
  every overwrite. The hash cache is keyed on it.
- **Not its own input.** Files in ``exclude`` (the engine's database, its .wal and temp folder)
  are never listed.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import stat
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union
from urllib.parse import quote_from_bytes, unquote_to_bytes, urlsplit

from embed.engines.local.models.images import (
    MAX_IMAGE_BYTES,
    OPEN_FLAGS,
    SNIFF_BYTES,
    read_chunks,
    sniff_content_type,
)

if TYPE_CHECKING:
    import pyarrow

__all__ = [
    "Listing",
    "Walk",
    "ObjectFile",
    "canonical_roots",
    "display_path",
    "generation_of",
    "object_schema",
    "path_of",
    "scan",
    "sniff_content_type",
    "to_arrow",
    "uri_of",
]

# Filesystems whose files are the kernel's, not data: never entered.
PSEUDO_FILESYSTEMS = frozenset(
    {
        "autofs",
        "binfmt_misc",
        "bpf",
        "cgroup",
        "cgroup2",
        "configfs",
        "debugfs",
        "devfs",
        "devpts",
        "devtmpfs",
        "efivarfs",
        "fdescfs",
        "fusectl",
        "hugetlbfs",
        "mqueue",
        "nsfs",
        "proc",
        "pstore",
        "rpc_pipefs",
        "securityfs",
        "selinuxfs",
        "sysfs",
        "tracefs",
    }
)
_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_CONTROL = {**{i: f"\\x{i:02x}" for i in range(0x20)}, 0x7F: "\\x7f", 0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r"}

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ObjectFile:
    """One file's object-table row (``metadata`` is always empty here).

    ``content_type`` and ``md5_hash`` are None for a file that could not be read; ``md5_hash``
    alone is None for a file over 20 MB.
    """

    uri: str
    generation: int
    content_type: str | None
    size: int
    md5_hash: str | None
    updated_ns: int


@dataclass
class Listing:
    """What a scan found: the rows, and a warning for each thing met but not listed."""

    files: list[ObjectFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def display_path(path: PathLike) -> str:
    """``path`` as printable text: bytes that are not UTF-8 as ``\\xNN``, control characters escaped."""
    return os.fsencode(path).decode("utf-8", "backslashreplace").translate(_CONTROL)


def _uri(path: str) -> str:
    return "file://" + quote_from_bytes(os.fsencode(path))


def uri_of(path: PathLike) -> str:
    """The ``file://`` uri a listing gives the file at ``path``: its folder canonical, its own name kept."""
    text = os.fspath(path)
    folder, name = os.path.split(text)
    if name in ("", ".", ".."):
        return _uri(os.path.realpath(text))
    return _uri(os.path.join(os.path.realpath(folder or "."), name))


def path_of(uri: str) -> Path | None:
    """The local path of a ``file://`` URI (any bytes, percent-encoded), or None for any other scheme."""
    parsed = urlsplit(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    return Path(os.fsdecode(unquote_to_bytes(parsed.path)))


def generation_of(found: os.stat_result) -> int:
    """A positive 63-bit generation that changes whenever the file is rewritten (inode, ctime, mtime, size)."""
    packed = struct.pack("<Qqqq", found.st_ino, found.st_ctime_ns, found.st_mtime_ns, found.st_size)
    return int.from_bytes(hashlib.blake2b(packed, digest_size=8).digest(), "big") >> 1


def canonical_roots(roots: Iterable[PathLike]) -> tuple[list[str], list[str]]:
    """(the distinct canonical folders to list, a note for each folder folded into another)."""
    kept: list[str] = []
    notes: list[str] = []
    for root in sorted({os.path.realpath(os.fspath(r)) for r in roots}):
        outer = next((k for k in kept if root.startswith(k.rstrip(os.sep) + os.sep)), None)
        if outer is None:
            kept.append(root)
        else:
            notes.append(f"{display_path(root)} is inside {display_path(outer)}: its files are listed once")
    return kept, notes


def pseudo_filesystems() -> dict[int, str]:
    """Device number -> type of each mounted pseudo filesystem (/proc/self/mountinfo; else /proc, /sys, /dev)."""
    found: dict[int, str] = {}
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            lines = handle.read(1 << 22).splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        separator = fields.index("-", 6)
        kind = fields[separator + 1] if separator + 1 < len(fields) else ""
        major, _, minor = fields[2].partition(":")
        if kind in PSEUDO_FILESYSTEMS and major.isdigit() and minor.isdigit():
            found[os.makedev(int(major), int(minor))] = kind
    if not lines:
        try:
            top = os.stat("/").st_dev
            for where in ("/proc", "/sys", "/dev"):
                device = os.stat(where).st_dev
                if device != top:
                    found[device] = where.lstrip("/")
        except OSError:
            pass
    return found


def _identities(paths: Iterable[PathLike]) -> set[tuple[int, int]]:
    """(device, inode) of each of ``paths`` that exists."""
    found = set()
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue
        found.add((info.st_dev, info.st_ino))
    return found


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


class Walk:
    """One listing's walk: :meth:`files` yields (path, stat) of regular files; ``warnings`` holds the rest."""

    def __init__(self, exclude: Iterable[PathLike]) -> None:
        self.warnings: list[str] = []
        self.excluded = _identities(exclude)
        self.pseudo = pseudo_filesystems()
        self.folders: dict[tuple[int, int], str] = {}  # (device, inode) -> the path it was listed under

    def files(self, roots: list[str]) -> Iterator[tuple[str, os.stat_result]]:
        """Regular files under ``roots`` (each a folder or a file), in a stable order."""
        for root in roots:
            try:
                info = os.stat(root)
            except OSError as exc:
                self.warnings.append(
                    f"{display_path(root)}: cannot be read ({_reason(exc)}); nothing under it is listed"
                )
                continue
            if self._skipped(root, info, via_link=False):
                continue
            if stat.S_ISDIR(info.st_mode):
                yield from self._tree(root)
            else:
                yield root, info

    def _tree(self, top: str) -> Iterator[tuple[str, os.stat_result]]:
        folders = [top]
        while folders:
            folder = folders.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except OSError as exc:
                self.warnings.append(
                    f"{display_path(folder)}: cannot list this folder ({_reason(exc)}); the files in it are not objects"
                )
                continue
            below = []
            for entry in entries:
                try:
                    via_link = entry.is_symlink()
                    info = entry.stat(follow_symlinks=True)
                except OSError as exc:
                    self._unfollowable(entry.path, exc)
                    continue
                if self._skipped(entry.path, info, via_link):
                    continue
                if stat.S_ISDIR(info.st_mode):
                    below.append(entry.path)
                else:
                    yield entry.path, info
            folders.extend(reversed(below))

    def _skipped(self, path: str, info: os.stat_result, via_link: bool) -> bool:
        """Whether ``path`` is not listed (recording why, unless it is one of the engine's own files)."""
        if (info.st_dev, info.st_ino) in self.excluded:
            return True
        if stat.S_ISREG(info.st_mode) and info.st_dev not in self.pseudo:
            return False  # the common case: listed, nothing to say
        shown = display_path(path)
        if info.st_dev in self.pseudo:
            self.warnings.append(f"{shown}: on a {self.pseudo[info.st_dev]} pseudo filesystem; not listed")
            return True
        if stat.S_ISDIR(info.st_mode):
            if via_link:
                self.warnings.append(
                    f"{shown}: a symlink to a folder ({self._target(path)}), not followed;"
                    " pass the folder to --images to list it"
                )
                return True
            first = self.folders.setdefault((info.st_dev, info.st_ino), path)
            if first != path:  # a bind mount or a filesystem that loops
                self.warnings.append(f"{shown}: the same folder as {display_path(first)}, listed there; skipped")
                return True
            return False
        kind = next((name for test, name in _SPECIAL_KINDS if test(info.st_mode)), "a special file")
        self.warnings.append(f"{shown}: {kind}, not a regular file; skipped")
        return True

    def _unfollowable(self, path: str, exc: OSError) -> None:
        """Record why ``path`` could not be looked at (a file that vanished meanwhile is simply gone)."""
        shown = display_path(path)
        if exc.errno == errno.ELOOP:
            self.warnings.append(f"{shown}: a symlink loop ({self._target(path)}); skipped")
        elif exc.errno == errno.ENOENT and os.path.islink(path):
            self.warnings.append(f"{shown}: a dangling symlink ({self._target(path)}, which does not exist); skipped")
        elif exc.errno != errno.ENOENT:
            self.warnings.append(f"{shown}: cannot be looked at ({_reason(exc)}); skipped")

    @staticmethod
    def _target(path: str) -> str:
        try:
            return "-> " + display_path(os.readlink(path))
        except OSError:
            return "target unknown"


def _read(path: str, listed: os.stat_result, cache: Mapping[str, ObjectFile]) -> ObjectFile:
    """The row of the regular file at ``path``: from ``cache`` when its generation is unchanged, else read."""
    uri = _uri(path)
    generation = generation_of(listed)
    known = cache.get(uri)
    if known is not None and known.generation == generation and known.size == listed.st_size:
        return ObjectFile(uri, generation, known.content_type, listed.st_size, known.md5_hash, listed.st_mtime_ns)
    unreadable = ObjectFile(uri, generation, None, listed.st_size, None, listed.st_mtime_ns)
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError:
        return unreadable
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            return unreadable  # replaced by something else since it was listed
        size, generation = opened.st_size, generation_of(opened)
        if size > MAX_IMAGE_BYTES:  # never an image: its kind from its first bytes, and no hash
            return ObjectFile(
                uri, generation, sniff_content_type(os.read(fd, SNIFF_BYTES)), size, None, opened.st_mtime_ns
            )
        md5 = hashlib.md5()  # noqa: S324 - the object-table checksum, as Cloud Storage reports it
        head = b""
        for chunk in read_chunks(fd, size):
            head = head or chunk[:SNIFF_BYTES]
            md5.update(chunk)
    except OSError:
        return unreadable
    finally:
        os.close(fd)
    digest = base64.b64encode(md5.digest()).decode("ascii")
    return ObjectFile(uri, generation, sniff_content_type(head), size, digest, opened.st_mtime_ns)


def scan(roots: Iterable[PathLike], cache: Mapping[str, ObjectFile], *, exclude: Iterable[PathLike] = ()) -> Listing:
    """The object-table rows of the files under ``roots`` and the warnings of the walk.

    Files whose generation is unchanged since ``cache`` are not read again; files in ``exclude``
    are never listed.
    """
    folders, notes = canonical_roots(roots)
    walk = Walk(exclude)
    listing = Listing(warnings=notes)
    seen: set[str] = set()
    for path, info in walk.files(folders):
        row = _read(path, info, cache)
        if row.uri not in seen:
            seen.add(row.uri)
            listing.files.append(row)
    listing.warnings.extend(walk.warnings)
    return listing


def object_schema() -> pyarrow.Schema:
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


def to_arrow(files: list[ObjectFile]) -> pyarrow.Table:
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
