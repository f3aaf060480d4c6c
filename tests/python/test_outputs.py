"""The `embed` output read from what Terraform writes: saved files in any encoding Terraform users meet,
stdin, and `terraform output -json` itself, whose own messages reach the user."""

from __future__ import annotations

import codecs
import io
import json
import shutil
import stat
import sys
from pathlib import Path

import pytest

from embed import outputs
from embed.errors import EmbedError
from embed.settings import load_settings
from tests.support import REPO
from tests.support.outputs import EXAMPLE_OUTPUTS

EXAMPLE = EXAMPLE_OUTPUTS.read_text(encoding="utf-8")
VALUE = json.loads(EXAMPLE)["embed"]["value"]


def refused(path: Path) -> str:
    """The message of the EmbedError (exit 2) that reading ``path`` raises."""
    with pytest.raises(EmbedError) as info:
        outputs.read_outputs_file(path)
    assert info.value.exit_code == 2
    return str(info.value)


def saved(tmp_path: Path, data: bytes, name: str = "outputs.json") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def fake_terraform(tmp_path: Path, script: str, name: str = "terraform") -> str:
    """An executable stand-in for a Terraform binary; returns its path."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


# --- saved files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding",
    [
        "utf-16",  # PowerShell 5's `>`: UTF-16 LE with a byte-order mark
        "utf-16-be",
        "utf-8-sig",  # PowerShell 7's Out-File -Encoding utf8BOM
        "utf-32",
    ],
)
def test_outputs_in_the_encodings_shells_write_are_read(tmp_path: Path, encoding: str) -> None:
    data = EXAMPLE.replace("\n", "\r\n").encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    assert outputs.read_outputs_file(saved(tmp_path, data)) == VALUE


def test_utf16_outputs_give_the_same_settings(tmp_path: Path) -> None:
    path = saved(tmp_path, EXAMPLE.encode("utf-16"))
    assert load_settings(outputs_file=path, environ={}) == load_settings(outputs_file=EXAMPLE_OUTPUTS, environ={})


def test_outputs_that_are_not_utf8_name_the_byte(tmp_path: Path) -> None:
    message = refused(saved(tmp_path, EXAMPLE.replace("my-project", "my-proj\u00e9ct").encode("latin-1")))
    assert "not text in UTF-8" in message and "byte 0xe9 at offset" in message
    assert "terraform output -json > FILE" in message


def test_binary_outputs_are_refused(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    message = refused(saved(tmp_path, png, "outputs.png"))
    assert "outputs.png" in message and ("not text" in message or "not valid JSON" in message)


def test_deeply_nested_outputs_are_refused_without_a_recursion_error(tmp_path: Path) -> None:
    depth = 100_000
    message = refused(saved(tmp_path, b'{"embed": ' + b"[" * depth + b"]" * depth + b"}"))
    assert "nests JSON too deeply" in message


def test_empty_outputs_file(tmp_path: Path) -> None:
    assert "is empty" in refused(saved(tmp_path, b"\n"))


def test_outputs_far_larger_than_any_stack_are_not_read_whole(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(outputs, "MAX_OUTPUTS_BYTES", 1000)
    assert "larger than" in refused(saved(tmp_path, b" " * 1001 + EXAMPLE.encode()))


def test_a_folder_given_as_outputs(tmp_path: Path) -> None:
    assert "cannot read outputs file" in refused(tmp_path)


def test_outputs_without_embed_list_the_outputs_found(tmp_path: Path) -> None:
    document = {"bucket": {"value": "b"}, "dataset_id": {"value": "d"}, "table_ids": {"value": ["t"]}}
    message = refused(saved(tmp_path, json.dumps(document).encode()))
    assert "no `embed` output" in message and "`bucket`, `dataset_id`, `table_ids`" in message
    assert "make apply" in message


# --- standard input -------------------------------------------------------------------


def test_outputs_from_stdin(monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(EXAMPLE.encode("utf-16"))))
    assert outputs.read_outputs_file(Path("-")) == VALUE


def test_outputs_from_a_terminal_say_to_pipe_them(monkeypatch) -> None:
    class Terminal(io.TextIOWrapper):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(io.BytesIO(b"")))
    assert "pipe them in" in refused(Path("-"))


# --- terraform output -json -----------------------------------------------------------


def test_terraform_warnings_reach_the_user_and_the_outputs_are_read(tmp_path: Path, capsys) -> None:
    binary = fake_terraform(tmp_path, f"echo 'Warning: Deprecated parameter' >&2\ncat '{EXAMPLE_OUTPUTS}'\n")
    assert outputs.read_terraform_outputs(tmp_path, binary) == VALUE
    assert "Warning: Deprecated parameter" in capsys.readouterr().err


def test_the_terraform_variable_picks_the_binary(tmp_path: Path) -> None:
    """TERRAFORM=tofu, as the Makefile takes it: OpenTofu writes the same outputs."""
    tofu = fake_terraform(tmp_path, f'[ "$1 $2" = "output -json" ] && cat "{EXAMPLE_OUTPUTS}"\n', name="tofu")
    settings = load_settings(tf_dir=tmp_path, environ={"TERRAFORM": tofu})
    assert settings == load_settings(outputs_file=EXAMPLE_OUTPUTS, environ={})
    assert outputs.terraform_binary({}) == "terraform"


def test_a_missing_terraform_binary_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(EmbedError) as info:
        load_settings(tf_dir=tmp_path, environ={"TERRAFORM": str(tmp_path / "tofu")})
    assert "was not found" in str(info.value) and "TERRAFORM=tofu" in str(info.value)


def test_terraform_output_that_is_not_json_names_the_binary(tmp_path: Path) -> None:
    binary = fake_terraform(tmp_path, "echo 'Usage: tofu [global options]'\n", name="notterraform")
    with pytest.raises(EmbedError) as info:
        outputs.read_terraform_outputs(tmp_path, binary)
    assert "did not print JSON" in str(info.value) and "TERRAFORM=" in str(info.value)


def test_module_folder_is_named_as_a_module(tmp_path: Path) -> None:
    module = tmp_path / "modules" / "object-table"
    module.mkdir(parents=True)
    binary = fake_terraform(tmp_path, "echo '{}'\n")
    with pytest.raises(EmbedError) as info:
        outputs.read_terraform_outputs(module, binary)
    message = str(info.value)
    assert "is a module, not a root stack" in message and "--tf-dir terraform" in message


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not on PATH")
def test_tf_dir_on_one_of_the_kits_modules_with_real_terraform(tmp_path: Path) -> None:
    module = tmp_path / "modules" / "object-table"
    shutil.copytree(REPO / "modules" / "object-table", module)
    with pytest.raises(EmbedError) as info:
        load_settings(tf_dir=module, environ={})
    assert "is a module, not a root stack" in str(info.value)
