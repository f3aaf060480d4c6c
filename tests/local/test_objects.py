"""The object table's listing (once, nothing silent, no hang, every rewrite seen), and the local names.

The listing's guarantees are marked ``reliability`` (docs/reliability.md).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from embed.engines.base import Statement
from embed.engines.local.models.images import MAX_IMAGE_BYTES
from embed.engines.local.objects import Walk, path_of, scan, sniff_content_type, uri_of
from embed.errors import EmbedError
from embed.identifiers import check_endpoint, check_project_id
from tests.local.corpus import as_unprivileged, deadline, shared_folder, sparse_file, unix_socket
from tests.local.sample import query

PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"BM\x36\x00\x00\x00", "image/bmp"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"II*\x00\x08\x00", "image/tiff"),
        (b"\x00\x00\x01\x00\x01\x00\x10\x10", "image/x-icon"),
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "image/jp2"),
        (b"GIF87a\x01\x00", "image/gif"),
        (b"MM\x00*\x00\x00\x00\x08", "image/tiff"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "image/avif"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "image/heic"),
        (b"\x00\x00\x01\x00ftypmif1\x00\x00\x00\x00", "image/heic"),  # a 256-byte ftyp box, not an icon
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "application/octet-stream"),  # an MP4: no image brand
        (b"8BPS\x00\x01", "image/vnd.adobe.photoshop"),
        (b"\xff\x0a\x00\x00", "image/jxl"),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "image/jxl"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "text/html"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", "application/pdf"),
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


# --- once -------------------------------------------------------------------------------------


@pytest.mark.reliability
def test_a_folder_given_many_ways_lists_each_file_once(tmp_path: Path, monkeypatch) -> None:
    top = tmp_path / "photos"
    (top / "sub").mkdir(parents=True)
    (top / "a.png").write_bytes(PNG)
    (top / "sub" / "b.png").write_bytes(PNG)
    (tmp_path / "alias").symlink_to(top)
    monkeypatch.chdir(tmp_path)
    roots = [top, top, Path("photos"), top / "sub", top / "sub" / "..", tmp_path / "alias", top / "sub" / "b.png"]
    listing = scan(roots, {})
    assert [f.uri for f in listing.files] == [uri_of(top / "a.png"), uri_of(top / "sub" / "b.png")]
    assert any("sub is inside" in w for w in listing.warnings)
    # A path with `..` or through the symlink names the same object.
    assert uri_of(top / "sub" / ".." / "a.png") == uri_of(tmp_path / "alias" / "a.png") == listing.files[0].uri


@pytest.mark.reliability
@pytest.mark.parametrize(
    "name",
    [b"caf\xe9.png", "café.png".encode(), b"it's.png", b"--help.png", b"line\nbreak.png", b"100%.png", b"a #?b.png"],
)
def test_any_file_name_gets_a_uri_that_maps_back_to_it(tmp_path: Path, name: bytes) -> None:
    path = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), name)))
    path.write_bytes(PNG)
    (row,) = scan([tmp_path], {}).files
    assert row.uri == uri_of(path) and row.uri.isascii() and "\n" not in row.uri
    assert path_of(row.uri) == path and path_of(row.uri).read_bytes() == PNG


# --- every rewrite seen -----------------------------------------------------------------------


@pytest.mark.reliability
def test_a_rewrite_with_the_same_size_and_mtime_gets_a_new_generation_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "photo.bmp"
    path.write_bytes(b"BM" + b"\x01" * 100)
    first = scan([tmp_path], {}).files[0]
    before = path.stat()
    path.write_bytes(b"BM" + b"\x02" * 100)  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns
    second = scan([tmp_path], {first.uri: first}).files[0]
    assert second.generation != first.generation
    assert second.md5_hash != first.md5_hash  # read again, not taken from the cache
    assert second.updated_ns == first.updated_ns


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(PNG)
    first = scan([tmp_path], {}).files[0]
    planted = type(first)(first.uri, first.generation, "image/planted", first.size, "planted", 0)
    again = scan([tmp_path], {first.uri: planted}).files[0]
    assert (again.content_type, again.md5_hash, again.updated_ns) == ("image/planted", "planted", first.updated_ns)


# --- no hang, nothing silent ------------------------------------------------------------------


@pytest.mark.reliability
def test_files_over_20_mb_are_never_hashed(tmp_path: Path) -> None:
    sparse_file(tmp_path / "huge.png", MAX_IMAGE_BYTES + 1, PNG)
    (row,) = scan([tmp_path], {}).files
    assert row.size == MAX_IMAGE_BYTES + 1 and row.md5_hash is None and row.content_type == "image/png"


@pytest.mark.reliability
def test_what_is_not_a_regular_file_is_named_in_a_warning_and_never_read(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(PNG)
    os.mkfifo(tmp_path / "pipe.png")
    server = unix_socket(tmp_path / "socket.png")
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "loop.png").symlink_to("loop.png")
    (tmp_path / "proc.png").symlink_to("/proc/self/status")  # a regular file on a pseudo filesystem
    (tmp_path / "up").symlink_to(tmp_path)
    (tmp_path / "null.png").symlink_to("/dev/null")
    try:
        with deadline(30):
            listing = scan([tmp_path], {})
    finally:
        server.close()
    assert [f.uri for f in listing.files] == [uri_of(tmp_path / "photo.png")]
    expected = {
        "pipe.png": "FIFO",
        "socket.png": "socket",
        "dangling.png": "dangling symlink",
        "loop.png": "symlink loop",
        "proc.png": "pseudo filesystem",
        "up": "symlink to a folder",
        "null.png": "",  # /dev: a pseudo filesystem (devtmpfs) or a character device, both skipped
    }
    for name, reason in expected.items():
        said = [w for w in listing.warnings if w.startswith(f"{tmp_path / name}: ")]
        assert len(said) == 1 and reason in said[0], (name, listing.warnings)


@pytest.mark.reliability
def test_walking_the_root_never_enters_proc_or_sys() -> None:
    walk = Walk(())
    with deadline(60):
        for path, _ in walk.files(["/"]):
            if os.path.dirname(path) != "/":
                break  # the root's own entries are all judged before any folder below is listed
    for pseudo in ("/proc", "/sys"):
        if os.path.ismount(pseudo):
            assert any(w.startswith(f"{pseudo}: on a ") and "pseudo filesystem" in w for w in walk.warnings), pseudo


@pytest.mark.reliability
def test_unreadable_files_are_objects_and_unreadable_folders_are_warned() -> None:
    with shared_folder() as folder:
        (folder / "photo.png").write_bytes(PNG)
        (folder / "secret.png").write_bytes(PNG)
        (folder / "secret.png").chmod(0)
        (folder / "locked").mkdir()
        (folder / "locked" / "inside.png").write_bytes(PNG)
        (folder / "locked").chmod(0)
        listing = as_unprivileged(lambda: scan([folder], {}))
    rows = {path_of(f.uri).name: f for f in listing.files}
    assert set(rows) == {"photo.png", "secret.png"}
    assert rows["secret.png"].size == len(PNG) and rows["secret.png"].md5_hash is None
    assert rows["secret.png"].content_type is None and rows["photo.png"].md5_hash is not None
    assert [w for w in listing.warnings if "locked" in w] == [
        f"{folder / 'locked'}: cannot list this folder (Permission denied); the files in it are not objects"
    ]


@pytest.mark.reliability
def test_the_engine_never_lists_its_own_files_and_warns_once(tmp_path: Path) -> None:
    from embed.engines.local.engine import LocalEngine
    from embed.identifiers import TableRef

    (tmp_path / "photo.png").write_bytes(PNG)
    (tmp_path / "dangling.png").symlink_to("nowhere.png")
    table = TableRef("local", "embed", "images")
    heard: list[str] = []
    engine = LocalEngine(tmp_path / "embed.duckdb", [tmp_path, tmp_path], object_table=table, warn=heard.append)
    try:
        engine.execute(Statement("t", "CREATE TABLE `local.embed.t` AS SELECT 1 AS x"))  # the .wal exists now
        for _ in range(2):
            uris = query(engine, "SELECT uri FROM `local.embed.images`").column("uri").to_pylist()
    finally:
        engine.close()
    assert uris == [uri_of(tmp_path / "photo.png")]
    assert len(heard) == 1 and "dangling symlink" in heard[0] and engine.warnings == heard


def test_a_copy_of_a_listed_tree_is_listed_in_full(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.png").write_bytes(PNG)
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    listing = scan([tmp_path], {})
    assert len(listing.files) == 2 and len({f.md5_hash for f in listing.files}) == 1 and not listing.warnings


@pytest.mark.reliability
def test_a_folder_mounted_inside_itself_is_listed_once(tmp_path: Path) -> None:
    import subprocess

    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "a" / "photo.png").write_bytes(PNG)
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("bind mounts need root and mount(8)")
    mount = subprocess.run(
        ["mount", "--bind", str(tmp_path / "a"), str(tmp_path / "a" / "sub")], capture_output=True, text=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root): {mount.stderr.strip()}")
    try:
        with deadline(30):
            listing = scan([tmp_path / "a"], {})
    finally:
        subprocess.run(["umount", str(tmp_path / "a" / "sub")], check=True)
    assert [f.uri for f in listing.files] == [uri_of(tmp_path / "a" / "photo.png")]
    assert listing.warnings == [f"{tmp_path / 'a' / 'sub'}: the same folder as {tmp_path / 'a'}, listed there; skipped"]


def test_a_folder_that_disappears_keeps_the_last_listing_and_says_so(tmp_path: Path) -> None:
    from embed.engines.local.engine import LocalEngine
    from embed.identifiers import TableRef

    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "photo.png").write_bytes(PNG)
    heard: list[str] = []
    table = TableRef("local", "embed", "images")
    engine = LocalEngine(tmp_path / "embed.duckdb", [tmp_path / "images"], object_table=table, warn=heard.append)
    try:
        text = "SELECT uri FROM `local.embed.images`"
        assert query(engine, text).num_rows == 1
        shutil.rmtree(tmp_path / "images")
        assert query(engine, text).num_rows == 1
    finally:
        engine.close()
    assert heard == [
        f"{tmp_path / 'images'}: this image folder no longer exists; local.embed.images keeps its last listing"
    ]
