"""The README tables of variables and outputs stay in step with the ``.tf`` files (tests/support/docs.py).

Regenerate stale tables with ``python -m tests.support.docs --write``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.docs import (
    COMMAND,
    Documented,
    documented,
    one_line,
    parse_body,
    read_outputs,
    read_variables,
    regenerate,
    stale,
    string_value,
)
from tests.support.plans import PlanResult, assert_subset, module_configs


@pytest.mark.parametrize("doc", documented(), ids=lambda d: str(d.readme.relative_to(REPO)))
def test_readme_tables_match_the_tf_files(doc: Documented) -> None:
    message = stale(doc)
    assert message is None, message


def test_every_module_and_the_root_stack_are_documented() -> None:
    docs = {d.folder.relative_to(REPO).as_posix(): d.kinds for d in documented()}
    modules = {f"modules/{p.name}" for p in (REPO / "modules").iterdir() if (p / "main.tf").is_file()}
    assert set(docs) == modules | {"terraform"}
    assert docs["terraform"] == ("variables",)
    assert all(docs[m] == ("variables", "outputs") for m in modules)


def test_the_reader_agrees_with_terraform(example_plan: PlanResult) -> None:
    """Names, descriptions, required, defaults and sensitivity as Terraform itself read them."""
    folders = {"": REPO / "terraform"}
    for module in module_configs(example_plan.raw)[1:]:
        folders[module.prefix] = (REPO / "terraform" / module.source).resolve()
    checked = 0
    for module in module_configs(example_plan.raw):
        folder = folders[module.prefix]
        terraform_vars = module.body.get("variables", {})
        ours = read_variables(folder / "variables.tf")
        assert sorted(v.name for v in ours) == sorted(terraform_vars), folder
        for var in ours:
            theirs = terraform_vars[var.name]
            assert var.description == theirs.get("description"), f"{folder.name}: var.{var.name}"
            assert (var.default is None) == ("default" not in theirs), f"{folder.name}: var.{var.name}"
            assert var.sensitive == bool(theirs.get("sensitive")), f"{folder.name}: var.{var.name}"
            if var.default is not None:
                try:
                    value = json.loads(var.default)
                except ValueError:
                    continue  # HCL-only syntax ({ a = 1 }); shown as written
                # Terraform fills in an object default's optional() attributes: ours is a subset.
                assert_subset(value, theirs["default"], f"{folder.name}: var.{var.name}")
                checked += 1
        terraform_outputs = module.body.get("outputs", {})
        outputs = read_outputs(folder / "outputs.tf")
        assert sorted(o.name for o in outputs) == sorted(terraform_outputs), folder
        for out in outputs:
            theirs = terraform_outputs[out.name]
            assert (out.description, out.sensitive) == (theirs.get("description"), bool(theirs.get("sensitive")))
    assert checked >= 20, "too few defaults compared: the reader no longer yields JSON-like defaults"


TRICKY = r"""
# A comment with variable "fake" { default = 1 }
variable "tricky" {
  description = "Quotes \"inside\", a tab\there, \u00e9, a brace } and # not a comment; $${literal}"
  type = object({
    a = optional(string, "x # y") // trailing comment
    /* block
       comment */
    b = list(number)
  })
  default = { a = "}" }
  validation {
    condition     = var.tricky.a != "{"
    error_message = "default = 2 ${var.tricky.a} must not open a brace."
  }
}

variable "heredoc" {
  description = <<-EOT
    Two lines,
    kept as written.
  EOT
  type        = string
  nullable    = false
  default     = null
  sensitive   = true
}

output "templated" {
  description = "Made from ${var.tricky.a}."
  value       = { for k, v in var.tricky : k => v }
  sensitive   = true
}
"""


def test_the_reader_skips_strings_comments_heredocs_and_nested_blocks(tmp_path: Path) -> None:
    (tmp_path / "variables.tf").write_text(TRICKY)
    tricky, heredoc = read_variables(tmp_path / "variables.tf")
    assert tricky.name == "tricky"
    assert tricky.description == 'Quotes "inside", a tab\there, é, a brace } and # not a comment; ${literal}'
    assert tricky.type == 'object({ a = optional(string, "x # y"), b = list(number) })'
    assert tricky.default == '{ a = "}" }'  # not the validation's text
    assert heredoc.description == "Two lines,\nkept as written."
    assert heredoc.default is None, "a non-nullable variable with a null default is required"
    assert heredoc.sensitive
    [output] = read_outputs(tmp_path / "variables.tf")
    assert (output.name, output.description, output.sensitive) == ("templated", '"Made from ${var.tricky.a}."', True)


def test_expressions_fold_onto_one_line() -> None:
    assert one_line('[\n  "a",\n  "b",\n]') == '["a", "b"]'
    assert one_line("object({\n  id       = string\n  location = string # where\n})") == (
        "object({ id = string, location = string })"
    )
    assert string_value('"a ${b}"') is None and string_value("var.x") is None
    assert [b.type for b in parse_body('a = 1\nb "x" "y" {\n  c = [1,\n 2]\n}\n').blocks] == ["b"]


def test_tables_escape_what_markdown_would_read(tmp_path: Path) -> None:
    (tmp_path / "variables.tf").write_text(
        'variable "glob" {\n  description = "gs://b/*.png or a|b, `x*y` kept"\n  type = string\n  default = "a|b"\n}\n'
    )
    (tmp_path / "README.md").write_text("# A module\n")
    doc = Documented(tmp_path / "README.md", tmp_path, ("variables",))
    text = regenerate(doc, "# A module\n")
    assert '| `glob` | gs://b/\\*.png or a\\|b, `x*y` kept | `string` | `"a\\|b"` |' in text


def module_copy(tmp_path: Path) -> Documented:
    folder = tmp_path / "bigquery-dataset"
    shutil.copytree(REPO / "modules" / "bigquery-dataset", folder)
    return Documented(folder / "README.md", folder, ("variables", "outputs"))


def test_a_new_variable_makes_the_table_stale_until_regenerated(tmp_path: Path) -> None:
    doc = module_copy(tmp_path)
    assert stale(doc) is None
    with (doc.folder / "variables.tf").open("a") as tf:
        tf.write('\nvariable "retention" {\n  description = "Days kept."\n  type = number\n  default = 7\n}\n')
    message = stale(doc)
    assert message is not None and COMMAND in message
    assert "+| `retention` | Days kept. | `number` | `7` |" in message
    doc.readme.write_text(regenerate(doc, doc.readme.read_text()))
    assert stale(doc) is None
    readme = doc.readme.read_text()
    assert readme.count("| `retention` |") == 1
    assert readme.index("## Variables") < readme.index("`retention`") < readme.index("## Outputs")


def test_a_readme_without_tables_gets_its_sections(tmp_path: Path) -> None:
    doc = module_copy(tmp_path)
    doc.readme.write_text("# Dataset\n\nProse only.\n")
    fresh = regenerate(doc, doc.readme.read_text())
    assert fresh.startswith("# Dataset\n\nProse only.\n\n## Variables\n\n<!-- BEGIN TFDOC variables")
    assert "## Outputs\n\n<!-- BEGIN TFDOC outputs" in fresh
    assert regenerate(doc, fresh) == fresh


def test_the_command_reports_then_rewrites(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", ".terraform*")
    for name in ("tests/support", "modules", "terraform"):
        shutil.copytree(REPO / name, repo / name, ignore=ignore)
    for name in ("tests/__init__.py", "README.md"):
        shutil.copy(REPO / name, repo / name)
    variables = repo / "terraform" / "variables.tf"
    variables.write_text(
        variables.read_text().replace("Project that hosts the dataset", "Project that holds the dataset")
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tests.support.docs", *args], cwd=repo, capture_output=True, text=True, timeout=60
        )

    check = run()
    assert check.returncode == 1
    assert f"README.md: tables out of step with terraform/variables.tf; regenerate them: {COMMAND}" in check.stderr
    assert run("--write").stdout == "rewrote README.md\n"
    assert "| `project_id` | Project that holds the dataset" in (repo / "README.md").read_text()
    assert run().returncode == 0
