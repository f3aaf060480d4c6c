"""Image inputs as the multimodal embedding endpoint sees them: accepted formats, limits, decoding.

Inputs Vertex AI would refuse get a non-retryable row status from :func:`rejection_status` or
:func:`decode_image`, never an exception that stops a run. The statuses read like BigQuery's.

Reading and decoding are bounded: a file is opened without blocking and read only when it is a
regular file of at most 20 MB. A JPEG is decoded at a reduced scale (``Image.draft``); another
format whose shorter edge is at least ``REDUCE_MARGIN`` times the model's side is box-reduced, band
by band, right after it is decoded, so pixel-mode conversions never copy the full image. Decodes
whose pixels need more than ``LARGE_DECODE_BYTES`` run one at a time (:data:`large_decodes`).
Pillow and numpy are imported inside the functions that decode.
"""

from __future__ import annotations

import os
import stat
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy
    from PIL import Image

__all__ = [
    "ACCEPTED_CONTENT_TYPES",
    "LARGE_DECODE_BYTES",
    "MAX_IMAGE_BYTES",
    "OPEN_FLAGS",
    "REDUCE_MARGIN",
    "SNIFF_BYTES",
    "DecodeGate",
    "ImageRejected",
    "decode_image",
    "empty_image_status",
    "large_decodes",
    "not_an_image_status",
    "read_chunks",
    "read_image",
    "rejection_status",
    "sniff_content_type",
    "sniff_image_type",
    "too_large_status",
    "undecodable_status",
    "unreadable_status",
    "unsupported_format_status",
]

# The endpoint's limit: 20 MB per image.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
ACCEPTED_CONTENT_TYPES = ("image/bmp", "image/gif", "image/jpeg", "image/png")
_ACCEPTED_WORDS = "the multimodal embedding endpoint accepts BMP, GIF, JPEG and PNG"
_PILLOW_FORMATS = {"BMP": "image/bmp", "DIB": "image/bmp", "GIF": "image/gif", "JPEG": "image/jpeg", "PNG": "image/png"}
# Bytes read to tell a file's kind: enough for an SVG's XML prolog.
SNIFF_BYTES = 512
# A decode whose pixels take more than this runs alone (see DecodeGate); ~4,100 x 4,100 RGB.
LARGE_DECODE_BYTES = 64 * 1024 * 1024
# An image is box-reduced after decoding only while it keeps this many times the model's side,
# so the model's own bilinear resize still does the last step (embeddings barely move).
REDUCE_MARGIN = 4
# Pixels converted at once when a large image is reduced band by band.
_BAND_PIXELS = 4 * 1024 * 1024
# How objects are opened: never blocking on a FIFO or device, never becoming a controlling terminal.
OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
_CHUNK = 1 << 20


class ImageRejected(Exception):
    """An input the endpoint would refuse; ``status`` is its non-retryable row status."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def unsupported_format_status(content_type: str) -> str:
    """Status for an image in a format outside BMP, GIF, JPEG and PNG."""
    return f"Unsupported image format: {content_type}; {_ACCEPTED_WORDS}."


def not_an_image_status(content_type: str | None) -> str:
    """Status for content that is not an image at all."""
    what = f"not an image ({content_type})" if content_type else "not an image"
    return f"Unsupported image format: the content is {what}; {_ACCEPTED_WORDS}."


def empty_image_status() -> str:
    """Status for a zero-byte object."""
    return "Cannot decode image: the object is empty (0 bytes)."


def too_large_status(size: int) -> str:
    """Status for an image over the 20 MB limit."""
    return (
        f"Image is larger than the 20 MB limit ({size:,} bytes > {MAX_IMAGE_BYTES:,} bytes); resize or recompress it."
    )


def undecodable_status(reason: object) -> str:
    """Status for a corrupt or truncated image."""
    return f"Cannot decode image: {str(reason).rstrip('.')}."


def unreadable_status(reason: object) -> str:
    """Status for an object that cannot be read (gone, no permission, or not a regular file)."""
    return f"Cannot read object: {str(reason).rstrip('.')}."


# Image formats told by the bytes a file starts with.
_PREFIXES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    ((b"GIF87a", b"GIF89a"), "image/gif"),
    (b"BM", "image/bmp"),
    ((b"II*\x00", b"MM\x00*"), "image/tiff"),
    ((b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51"), "image/jp2"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"8BPS", "image/vnd.adobe.photoshop"),
    ((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n"), "image/jxl"),
)
# ISO base media files (bytes 4-8 "ftyp") by their major brand.
_BRANDS = {b"avif": "image/avif", b"avis": "image/avif"} | dict.fromkeys(
    (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"), "image/heic"
)


def sniff_image_type(head: bytes) -> str | None:
    """The image MIME type its first bytes announce, or None when they announce no image format."""
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _BRANDS:  # before the prefixes: a box of 256 bytes looks like an icon
        return _BRANDS[head[8:12]]
    for prefix, kind in _PREFIXES:
        if head.startswith(prefix):
            return kind
    markup = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if markup.startswith((b"<svg", b"<?xml", b"<!doctype svg", b"<!--")) and b"<svg" in markup:
        return "image/svg+xml"
    return None


def sniff_content_type(head: bytes) -> str:
    """The content type told by a file's first bytes: an image format, a document type, text/plain,
    or application/octet-stream."""
    image = sniff_image_type(head)
    if image is not None:
        return image
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    markup = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if markup.startswith((b"<!doctype html", b"<html")):
        return "text/html"
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


def _judge(head: bytes, content_type: str | None) -> str | None:
    """The status for a file that starts with ``head`` and is not an accepted image, else None."""
    sniffed = sniff_image_type(head)
    if sniffed is None:
        described = content_type or sniff_content_type(head)
        if described.startswith("image/"):
            return unsupported_format_status(described)
        return not_an_image_status(described)
    if sniffed not in ACCEPTED_CONTENT_TYPES:
        return unsupported_format_status(sniffed)
    return None


def read_chunks(fd: int, limit: int) -> Iterator[bytes]:
    """Up to ``limit`` bytes of the open file ``fd``, a chunk at a time; fewer when it ends sooner."""
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, _CHUNK))
        if not chunk:
            return
        yield chunk
        left -= len(chunk)


def _read_accepted(path: Path, limit: int, content_type: str | None = None) -> bytes:
    """Up to ``limit`` bytes of the accepted image at ``path``, opened once without blocking.

    Raises :class:`ImageRejected` for what is not a regular file, empty, over 20 MB, unreadable,
    or not a BMP, GIF, JPEG or PNG by its bytes.
    """
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        raise ImageRejected(unreadable_status(exc.strerror or exc)) from None
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise ImageRejected(unreadable_status("not a regular file"))
        if found.st_size == 0:
            raise ImageRejected(empty_image_status())
        if found.st_size > MAX_IMAGE_BYTES:
            raise ImageRejected(too_large_status(found.st_size))
        data = b"".join(read_chunks(fd, min(limit, MAX_IMAGE_BYTES + 1)))
    except OSError as exc:
        raise ImageRejected(unreadable_status(exc.strerror or exc)) from None
    finally:
        os.close(fd)
    if not data:
        raise ImageRejected(empty_image_status())
    if len(data) > MAX_IMAGE_BYTES:  # it grew after it was opened
        raise ImageRejected(too_large_status(len(data)))
    status = _judge(data[:SNIFF_BYTES], content_type)
    if status is not None:
        raise ImageRejected(status)
    return data


def rejection_status(path: Path, content_type: str | None = None) -> str | None:
    """The non-retryable status for an input the endpoint would refuse before decoding, else None.

    Checks, reading at most 512 bytes: a readable regular file, not empty, at most 20 MB, and a
    BMP, GIF, JPEG or PNG signature (sniffed from the bytes; ``content_type`` only names what a
    non-image is).
    """
    try:
        _read_accepted(path, SNIFF_BYTES, content_type)
    except ImageRejected as rejected:
        return rejected.status
    return None


def read_image(path: Path) -> bytes:
    """The whole of the accepted image at ``path`` (at most 20 MB, read once); raises :class:`ImageRejected`."""
    return _read_accepted(path, MAX_IMAGE_BYTES + 1)


class DecodeGate:
    """Lets at most ``limit`` large decodes hold their full-size pixels at once; counts the most seen."""

    def __init__(self, limit: int = 1) -> None:
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the large-decode slots for the duration of the block."""
        with self._slots:
            with self._lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            try:
                yield
            finally:
                with self._lock:
                    self.active -= 1


# The process's gate: on 2 cores, two 13,000 x 13,000 PNGs would otherwise hold ~1.4 GB at once.
large_decodes = DecodeGate(1)
# Pillow allocates pixels in blocks (16 MB by default). malloc serves blocks under 32 MB from its
# heap and keeps them once freed, per thread arena, so two decode threads would each keep a large
# image's worth; blocks of 64 MB are mapped and unmapped, and the memory goes back when freed.
_PILLOW_BLOCK_BYTES = 64 * 1024 * 1024
_pillow_ready = False


def _prepare_pillow() -> None:
    """Give Pillow blocks large enough to be returned to the system when freed (once per process)."""
    global _pillow_ready
    if _pillow_ready:
        return
    from PIL import Image

    if Image.core.get_block_size() < _PILLOW_BLOCK_BYTES:
        Image.core.set_block_size(_PILLOW_BLOCK_BYTES)
    _pillow_ready = True


def _decoded_bytes(img: Image.Image) -> int:
    """Bytes Pillow allocates for ``img``'s pixels (multi-band modes take 4 bytes a pixel)."""
    per_pixel = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}.get(img.mode, 4)
    return img.width * img.height * per_pixel


def decode_image(path: Path, side: int) -> numpy.ndarray:
    """Decode an accepted image to ``side`` x ``side`` RGB uint8 (HWC).

    The shorter edge is scaled to ``side`` and the centre cropped, in one Pillow resize; a JPEG
    is first decoded at a reduced scale with ``Image.draft``, a large image of another format is
    box-reduced to no less than ``REDUCE_MARGIN`` x ``side``. Raises :class:`ImageRejected`.
    """
    import io

    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    data = read_image(path)
    _prepare_pillow()
    try:
        with Image.open(io.BytesIO(data), formats=tuple(_PILLOW_FORMATS)) as opened:
            if opened.format in ("JPEG", "MPO"):  # MPO: a camera JPEG with extra frames
                opened.draft("RGB", (side, side))
            large = _decoded_bytes(opened) > LARGE_DECODE_BYTES
            with large_decodes.slot() if large else nullcontext():
                img = opened
                if opened.format in ("JPEG", "MPO") and opened.getexif().get(_EXIF_ORIENTATION, 1) != 1:
                    img = ImageOps.exif_transpose(opened)
                img.load()
                img = _shrink(img, side)
                if img is not opened:
                    opened.close()  # frees the full-size pixels before the gate opens
            width, height = img.size
            edge = min(width, height)
            left, top = (width - edge) / 2, (height - edge) / 2
            img = img.resize((side, side), Image.Resampling.BILINEAR, box=(left, top, left + edge, top + edge))
            if img.mode != "RGB":
                img = img.convert("RGB")
            return np.asarray(img, dtype=np.uint8)
    except UnidentifiedImageError:
        reason = "the data is corrupt, or not a valid image of the format it announces"
        raise ImageRejected(undecodable_status(reason)) from None
    except Image.DecompressionBombError as exc:
        raise ImageRejected(undecodable_status(exc)) from None
    except OSError as exc:  # Pillow reports truncated and corrupt data as OSError without errno
        if exc.errno is not None:
            raise ImageRejected(unreadable_status(exc.strerror or exc)) from None
        raise ImageRejected(undecodable_status(exc)) from None
    except (ValueError, SyntaxError, EOFError, IndexError, KeyError, struct.error) as exc:
        raise ImageRejected(undecodable_status(str(exc) or type(exc).__name__)) from None


_EXIF_ORIENTATION = 0x0112


def _shrink(img: Image.Image, side: int) -> Image.Image:
    """``img`` in mode L or RGB, box-reduced by the largest factor that keeps ``REDUCE_MARGIN`` x ``side``.

    A reduced image is converted and reduced band by band, so no full-size copy is ever made.
    """
    from PIL import Image

    width, height = img.size
    factor = min(width, height) // (REDUCE_MARGIN * side)
    peak = _peak(img)
    if factor < 2:
        return _grey_or_rgb(img, peak)
    rows = max(1, _BAND_PIXELS // width // factor) * factor
    reduced: Image.Image | None = None
    for top in range(0, height, rows):
        band = _grey_or_rgb(img.crop((0, top, width, min(height, top + rows))), peak).reduce(factor)
        if reduced is None:
            reduced = Image.new(band.mode, (-(-width // factor), -(-height // factor)))
        reduced.paste(band, (0, top // factor))
    assert reduced is not None
    return reduced


def _peak(img: Image.Image) -> float:
    """The white level of a 16- or 32-bit grey image (65535 when values pass 255, else 255); 255 otherwise."""
    if not img.mode.startswith(("I", "F")):
        return 255.0
    extrema = img.getextrema()
    high = extrema[1] if isinstance(extrema, tuple) and not isinstance(extrema[0], tuple) else 0
    return 65535.0 if float(high) > 255.0 else 255.0


def _grey_or_rgb(img: Image.Image, peak: float = 255.0) -> Image.Image:
    """The image in mode L or RGB, ready for a bilinear resize (16- and 32-bit grey scaled by ``peak``)."""
    import numpy as np
    from PIL import Image

    if img.mode in ("RGB", "L"):
        return img
    if img.mode.startswith(("I", "F")):
        values = np.asarray(img, dtype=np.float32)
        return Image.fromarray(np.clip(values * (255.0 / peak), 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("1", "LA"):
        return img.convert("L")
    return img.convert("RGB")
