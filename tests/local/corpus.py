"""Helpers of the listing and reliability tests: files of awkward kinds, and code run without root's reach.

Tests may run as root, where ``chmod 000`` stops no read. :func:`as_unprivileged` then runs the
check in a forked child that has given up root (uid and gid ``nobody``), so an unreadable file is
really unreadable; without root it runs the check in-process.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import select
import shutil
import signal
import socket
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")
NOBODY = 65534


def png_bomb_header(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header announces ``width`` x ``height`` pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


def sparse_file(path: Path, size: int, head: bytes = b"") -> Path:
    """A file of ``size`` bytes that starts with ``head`` and is a hole after it (cheap to make)."""
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(size)
    return path


def unix_socket(path: Path) -> socket.socket:
    """A listening Unix socket bound at ``path`` (close it when done)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    return server


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in the main thread after ``seconds``; a read the signal cannot interrupt
    (``/proc/kmsg``) ends the process 30 s later with every thread's traceback: never a silent hang."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds}s: something blocked")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    faulthandler.dump_traceback_later(seconds + 30, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def shared_folder() -> Iterator[Path]:
    """A temporary folder that uid nobody can enter (pytest's own are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="embed-shared-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


def as_unprivileged(call: Callable[[], T], timeout: float = 60.0) -> T:
    """``call()`` without the power to read what ``chmod 000`` denies (in a child as nobody when root)."""
    if os.geteuid() != 0:
        return call()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: give up root, run, send back the result, exit without cleanup
        stage = "dropping root"
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            stage = "the check"
            payload = pickle.dumps(("ok", call()))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            payload = pickle.dumps((stage, f"{type(exc).__name__}: {exc}"))
        view = memoryview(payload)
        while view:
            view = view[os.write(writer, view) :]
        os._exit(0)
    os.close(writer)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([reader], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError(f"the unprivileged check ran over {timeout}s")
            chunk = os.read(reader, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(reader)
        os.waitpid(pid, 0)
    stage, value = pickle.loads(b"".join(chunks))
    if stage == "dropping root":
        pytest.skip(f"running as root, and cannot drop to uid nobody to make a file unreadable: {value}")
    if stage != "ok":
        raise AssertionError(f"the unprivileged check failed: {value}")
    return value
