"""The object table's content sniffing, and the names the embedded engine's settings accept."""

from __future__ import annotations

import pytest

from embed.engines.local.objects import sniff_content_type
from embed.errors import EmbedError
from embed.identifiers import check_endpoint, check_project_id


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"BM\x36\x00\x00\x00", "image/bmp"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"II*\x00\x08\x00", "image/tiff"),
        (b"These are notes", "text/plain"),
        (b"", "application/octet-stream"),
        (b"\x00\x01\x02\x03\xfe\xff", "application/octet-stream"),
    ],
)
def test_content_type_is_sniffed_from_the_bytes(head: bytes, kind: str) -> None:
    assert sniff_content_type(head) == kind


def test_local_names_are_accepted_and_injection_still_refused() -> None:
    assert check_endpoint("local/efficientnet-lite0") == "local/efficientnet-lite0"
    assert check_project_id("local") == "local"
    for bad in ("local/x'; DROP TABLE t; --", "local/../x y", "remote/model", "local/"):
        with pytest.raises(EmbedError):
            check_endpoint(bad)
    with pytest.raises(EmbedError):
        check_project_id("loca")
