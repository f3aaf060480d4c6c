"""Lay out the demo's sample images: ``python -m embed.demo DIR``.

Real photos from the scikit-image wheel (nothing is committed), two views of the same scene
(skimage's stereo pair, and a cropped, flipped copy of one photo), and a few files Vertex AI
would refuse, to show their row statuses: a zero-byte file, a truncated PNG, text named .jpg
and a WebP. Files already there are left alone, so a second run of the demo embeds nothing new.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["BAD_FILES", "PHOTOS", "SAME_SCENE", "lay_out", "main"]

# skimage/data photos; the motorcycle pair is one scene seen by two cameras.
PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "no_time_for_that_tiny.gif",
)
SAME_SCENE = (("motorcycle_left.png", "motorcycle_right.png"), ("coffee.png", "views/coffee-cropped-flipped.jpg"))
BAD_FILES = ("bad/empty.png", "bad/truncated.png", "bad/notes.jpg", "bad/photo.webp")


def _skimage_data() -> Path:
    """The folder of photos inside the installed scikit-image wheel."""
    try:
        import skimage
    except ImportError:
        from embed.errors import EmbedError

        raise EmbedError("the sample photos come from scikit-image: pip install -e '.[local,demo]'") from None
    return Path(skimage.__file__).parent / "data"


def _write_new(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it exists; True when written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def lay_out(dest: Path, photos: Iterable[str] | None = None, bad: bool = True, views: bool = True) -> list[Path]:
    """Put the sample set under ``dest`` (files already there are kept as they are); return the files written."""
    import io

    from PIL import Image, ImageOps

    source = _skimage_data()
    dest = Path(dest)
    written: list[Path] = []

    def put(name: str, data: bytes) -> None:
        if _write_new(dest / name, data):
            written.append(dest / name)

    for name in PHOTOS if photos is None else photos:
        put(name, (source / name).read_bytes())
    if views:
        with Image.open(source / "coffee.png") as photo:
            width, height = photo.size
            view = ImageOps.mirror(photo.convert("RGB").crop((width // 10, height // 10, width, height)))
            view = view.resize((view.width * 3 // 4, view.height * 3 // 4))
            buffer = io.BytesIO()
            view.save(buffer, "JPEG", quality=90)
        put("views/coffee-cropped-flipped.jpg", buffer.getvalue())
    if bad:
        png = (source / "chelsea.png").read_bytes()
        put("bad/empty.png", b"")
        put("bad/truncated.png", png[: len(png) // 3])
        put("bad/notes.jpg", b"These are notes, not a photo, whatever the name says.\n")
        with Image.open(source / "astronaut.png") as photo:
            buffer = io.BytesIO()
            photo.convert("RGB").resize((128, 128)).save(buffer, "WEBP")
        put("bad/photo.webp", buffer.getvalue())
    return written


def main(argv: list[str] | None = None) -> int:
    """Lay out the sample set in the folder given as the only argument."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m embed.demo DIR", file=sys.stderr)
        return 2
    dest = Path(args[0])
    written = lay_out(dest)
    total = sum(1 for p in dest.rglob("*") if p.is_file())
    print(f"sample images in {dest}: {total} files ({len(written)} new)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
