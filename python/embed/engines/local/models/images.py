"""Image inputs as the multimodal embedding endpoint sees them: accepted formats, limits, decoding.

Inputs Vertex AI would refuse get a non-retryable row status from :func:`rejection_status` or
:func:`decode_image`, never an exception that stops a run. The statuses read like BigQuery's.
Pillow and numpy are imported inside the functions that decode.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy
    from PIL import Image

__all__ = [
    "ACCEPTED_CONTENT_TYPES",
    "MAX_IMAGE_BYTES",
    "ImageRejected",
    "decode_image",
    "empty_image_status",
    "not_an_image_status",
    "rejection_status",
    "sniff_content_type",
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
# Bytes needed to recognise every signature below.
SNIFF_BYTES = 16


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
        f"Image is larger than the 20 MB limit ({size:,} bytes > {MAX_IMAGE_BYTES:,} bytes);"
        " resize or recompress it."
    )


def undecodable_status(reason: object) -> str:
    """Status for a corrupt or truncated image."""
    return f"Cannot decode image: {str(reason).rstrip('.')}."


def unreadable_status(reason: object) -> str:
    """Status for an object that cannot be read (gone, or no permission)."""
    return f"Cannot read object: {str(reason).rstrip('.')}."


def sniff_content_type(head: bytes) -> str | None:
    """The image MIME type its first bytes announce, or None when they announce no image format."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"BM"):
        return "image/bmp"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "image/heic"
    if head.startswith((b"\x00\x00\x00\x0cjP  ", b"\xff\x4f\xff\x51")):
        return "image/jp2"
    if head.startswith(b"\x00\x00\x01\x00"):
        return "image/x-icon"
    if head.startswith(b"8BPS"):
        return "image/vnd.adobe.photoshop"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "image/jxl"
    return None


def rejection_status(path: Path, content_type: str | None = None) -> str | None:
    """The non-retryable status for an input the endpoint would refuse before decoding, else None.

    Checks, reading at most 16 bytes: readable, not empty, at most 20 MB, and a BMP, GIF, JPEG or
    PNG signature (sniffed from the bytes; ``content_type`` only names what a non-image is).
    """
    try:
        size = os.stat(path).st_size
        if size == 0:
            return empty_image_status()
        if size > MAX_IMAGE_BYTES:
            return too_large_status(size)
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        return unreadable_status(exc.strerror or exc)
    sniffed = sniff_content_type(head)
    if sniffed is None:
        return not_an_image_status(content_type)
    if sniffed not in ACCEPTED_CONTENT_TYPES:
        return unsupported_format_status(sniffed)
    return None


def decode_image(path: Path, side: int) -> "numpy.ndarray":
    """Decode an accepted image to ``side`` x ``side`` RGB uint8 (HWC).

    The shorter edge is scaled to ``side`` and the centre cropped, in one Pillow resize; JPEGs are
    first decoded at a reduced scale with ``Image.draft``. Raises :class:`ImageRejected`.
    """
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    status = rejection_status(path)
    if status is not None:
        raise ImageRejected(status)
    try:
        with Image.open(path, formats=tuple(_PILLOW_FORMATS)) as img:
            if img.format in ("JPEG", "MPO"):  # MPO: a camera JPEG with extra frames
                img.draft("RGB", (side, side))
                if img.getexif().get(_EXIF_ORIENTATION, 1) != 1:
                    img = ImageOps.exif_transpose(img)
            img.load()
            img = _grey_or_rgb(img)
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


def _grey_or_rgb(img: "Image.Image") -> "Image.Image":
    """The image in mode L or RGB, ready for a bilinear resize (16-bit grey scaled to 8 bits)."""
    import numpy as np
    from PIL import Image

    if img.mode in ("RGB", "L"):
        return img
    if img.mode.startswith(("I", "F")):
        values = np.asarray(img, dtype=np.float32)
        peak = 65535.0 if values.max(initial=0.0) > 255.0 else 255.0
        return Image.fromarray(np.clip(values * (255.0 / peak), 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("1", "LA"):
        return img.convert("L")
    return img.convert("RGB")
