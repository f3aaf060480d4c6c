"""The Variables and Outputs tables of the READMEs, generated from ``variables.tf`` and ``outputs.tf``.

Each module README documents its own folder; the repository README documents the
root stack's variables (``terraform/``). A table sits between two markers::

    <!-- BEGIN TFDOC variables: python -m tests.support.docs --write -->
    | name | description | type | default |
    ...
    <!-- END TFDOC variables -->

``python -m tests.support.docs`` lists the READMEs whose tables are stale (exit 1);
``--write`` rewrites them, appending a section to a README that has no table yet.
``tests/terraform/test_docs.py`` runs the same check. The ``.tf`` files are read by
the small HCL reader below: top-level blocks and their attributes' source text,
with strings, heredocs and comments skipped as Terraform's own parser skips them.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO

COMMAND = "python -m tests.support.docs --write"
TABLES = {"variables": "variables.tf", "outputs": "outputs.tf"}
BEGIN = re.compile(r"<!-- BEGIN TFDOC (variables|outputs)\b[^>]*-->\n")
END = "<!-- END TFDOC {kind} -->"
_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][\w-]*)[ \t]*\n")
_IDENT = re.compile(r"[A-Za-z_][\w-]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


class HclError(ValueError):
    """A ``.tf`` file this reader cannot follow."""


# --- a small HCL reader -------------------------------------------------------------


def _skip(text: str, i: int) -> int:
    """The index after the comment, string or heredoc that starts at ``i``; ``i`` when none does."""
    if text.startswith("#", i) or text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        if end < 0:
            raise HclError("unterminated /* comment")
        return end + 2
    if text.startswith('"', i):
        return _string_end(text, i)
    heredoc = _HEREDOC.match(text, i)
    if heredoc:
        closing = re.compile(rf"^[ \t]*{re.escape(heredoc.group(2))}[ \t]*$", re.MULTILINE)
        found = closing.search(text, heredoc.end())
        if not found:
            raise HclError(f"unterminated heredoc <<{heredoc.group(2)}")
        return found.end()
    return i


def _string_end(text: str, i: int) -> int:
    """The index after the quoted template that opens at ``i``, interpolations included."""
    j = i + 1
    while j < len(text):
        if text.startswith(("$${", "%%{"), j):
            j += 3
        elif text[j] == "\\":
            j += 2
        elif text[j] == '"':
            return j + 1
        elif text[j] == "\n":
            break
        elif text.startswith(("${", "%{"), j):
            j = _close(text, j + 2, "}") + 1
        else:
            j += 1
    raise HclError(f"unterminated string at offset {i}")


def _code(text: str, i: int, stop: int) -> Iterator[tuple[int, str]]:
    """Each character of ``text[i:stop]`` that is code, with its index: strings, heredocs and comments skipped."""
    while i < stop:
        k = _skip(text, i)
        if k == i:
            yield i, text[i]
            i += 1
        else:
            i = k


def _close(text: str, i: int, closer: str) -> int:
    """The index of the bracket that closes the one just before ``i``."""
    depth = 0
    for j, c in _code(text, i, len(text)):
        if c in "([{":
            depth += 1
        elif c in ")]}" and depth:
            depth -= 1
        elif c in ")]}":
            if c != closer:
                raise HclError(f"{c!r} at offset {j} closes nothing")
            return j
    raise HclError(f"no closing {closer!r} for the bracket before offset {i}")


def _expression_end(text: str, i: int, stop: int) -> int:
    """The end of the expression starting at ``i``: a newline outside brackets, or ``stop``."""
    depth = 0
    for j, c in _code(text, i, stop):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "\n" and depth == 0:
            return j
    return stop


@dataclass
class Block:
    """A block: its type, labels, attributes (expression source text) and nested blocks."""

    type: str
    labels: tuple[str, ...]
    attributes: dict[str, str]
    blocks: list[Block]


def parse_body(text: str, start: int = 0, stop: int | None = None) -> Block:
    """The attributes and blocks of the body ``text[start:stop]`` (a whole file by default)."""
    stop = len(text) if stop is None else stop
    body = Block("", (), {}, [])
    i = start
    while i < stop:
        if text.startswith(("#", "//", "/*"), i):
            i = _skip(text, i)
            continue
        if text[i].isspace():
            i += 1
            continue
        name = _IDENT.match(text, i)
        if not name:
            raise HclError(f"unexpected {text[i]!r} at line {text.count(chr(10), 0, i) + 1}")
        i = name.end()
        while i < stop and text[i] in " \t":
            i += 1
        if text.startswith("=", i) and not text.startswith("==", i):
            end = _expression_end(text, i + 1, stop)
            body.attributes[name.group()] = text[i + 1 : end].strip()
            i = end
            continue
        labels = []
        while i < stop and text[i] != "{":
            if text[i] == '"':
                end = _string_end(text, i)
                labels.append(text[i + 1 : end - 1])
                i = end
            elif text[i].isspace():
                i += 1
            else:
                label = _IDENT.match(text, i)
                if not label:
                    raise HclError(f"unexpected {text[i]!r} in the header of block {name.group()}")
                labels.append(label.group())
                i = label.end()
        close = _close(text, i + 1, "}")
        nested = parse_body(text, i + 1, close)
        body.blocks.append(Block(name.group(), tuple(labels), nested.attributes, nested.blocks))
        i = close + 1
    return body


def string_value(expression: str) -> str | None:
    """The value of a literal string or heredoc; None for any other expression."""
    heredoc = _HEREDOC.match(expression)
    if heredoc:
        lines = expression[heredoc.end() :].splitlines()[:-1]
        if heredoc.group(1):
            indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
            lines = [x[indent:] for x in lines]
        return "\n".join(lines).rstrip("\n")
    if not expression.startswith('"') or _string_end(expression, 0) != len(expression):
        return None
    inner = expression[1:-1]
    if re.search(r"(?<![$%])[$%]\{", inner.replace("$${", "").replace("%%{", "")):
        return None  # a template: its value is known only to Terraform

    def unescape(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "uU":
            return chr(int(code[1:], 16))
        return _ESCAPES[code]

    inner = re.sub(r'\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[nrt"\\])', unescape, inner)
    return inner.replace("$${", "${").replace("%%{", "%{")


def _without_comments(text: str) -> str:
    """``text`` with its comments removed (a ``/* */`` comment leaves a blank, strings are kept)."""
    kept, i, start = [], 0, 0
    while i < len(text):
        k = _skip(text, i)
        if k == i:
            i += 1
        elif text.startswith(("#", "//", "/*"), i):
            kept.append(text[start:i] + " ")
            i = start = k
        else:
            i = k
    return "".join(kept) + text[start:]


def one_line(expression: str) -> str:
    """An expression on one line: comments dropped, runs of blanks squeezed, items joined by commas."""
    lines: list[str] = []
    for raw in _without_comments(expression).splitlines():
        line, i = "", 0
        while i < len(raw):
            k = _skip(raw, i)
            if k != i:
                line, i = line + raw[i:k], k
            elif raw[i].isspace():
                line = line if line.endswith(" ") else line + " "
                i += 1
            else:
                line, i = line + raw[i], i + 1
        if line.strip():
            lines.append(line.strip())
    text = lines[0] if lines else ""
    for line in lines[1:]:
        if line[0] in ")]}":
            text = text.rstrip(", ")
            text += " " if line[0] == "}" and not text.endswith("{") else ""
        elif text.endswith("{"):
            text += " "
        elif not text.endswith(("(", "[")):
            text += " " if text.endswith(",") else ", "
        text += line
    return text


# --- what the tables show -----------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """A variable as its table row shows it."""

    name: str
    description: str
    type: str
    default: str | None  # the default's source on one line; None when the variable is required
    sensitive: bool


@dataclass(frozen=True)
class Output:
    """An output as its table row shows it."""

    name: str
    description: str
    sensitive: bool


def _description(block: Block, path: Path) -> str:
    """The block's description: a literal's value, or the expression as written."""
    source = block.attributes.get("description")
    if source is None:
        raise HclError(f"{path.name}: {block.type} {block.labels[0]} has no description; give it one")
    value = string_value(source)
    return one_line(source) if value is None else value


def _flag(block: Block, name: str, default: bool) -> bool:
    """A boolean attribute written as a literal ``true`` or ``false``."""
    source = block.attributes.get(name)
    return default if source is None else one_line(source) == "true"


def read_variables(path: Path) -> list[Variable]:
    """The variables of ``variables.tf``, in the order they are declared."""
    found = []
    for block in parse_body(path.read_text(encoding="utf-8")).blocks:
        if block.type != "variable":
            continue
        attributes = block.attributes
        default = attributes.get("default")
        # Terraform requires a non-nullable variable whose default is null.
        if default is not None and one_line(default) == "null" and _flag(block, "nullable", default=True) is False:
            default = None
        found.append(
            Variable(
                name=block.labels[0],
                description=_description(block, path),
                type=one_line(attributes.get("type", "any")),
                default=None if default is None else one_line(default),
                sensitive=_flag(block, "sensitive", default=False),
            )
        )
    return found


def read_outputs(path: Path) -> list[Output]:
    """The outputs of ``outputs.tf``, in the order they are declared."""
    return [
        Output(block.labels[0], _description(block, path), _flag(block, "sensitive", default=False))
        for block in parse_body(path.read_text(encoding="utf-8")).blocks
        if block.type == "output"
    ]


def _cell(text: str) -> str:
    """Text on one line, safe in a table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _prose(text: str) -> str:
    """A description in a table cell: ``*`` outside code spans is escaped, so a glob never starts emphasis."""
    parts = re.split(r"(`+[^`]*?`+)", _cell(text))
    return "".join(part if i % 2 else part.replace("*", "\\*") for i, part in enumerate(parts))


def _code_span(text: str) -> str:
    """Text as inline code, fenced with more backticks than it holds."""
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{_cell(text)}{pad}{ticks}"


def _table(columns: list[str], rows: list[list[str]], sensitive: list[bool]) -> str:
    """A Markdown table, with a ``sensitive`` column when any row is sensitive."""
    if any(sensitive):
        columns = [*columns, "sensitive"]
        rows = [[*row, "yes" if flag else ""] for row, flag in zip(rows, sensitive)]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def variables_table(variables: list[Variable]) -> str:
    """The Markdown table of ``variables``: name, description, type, and default or *required*."""
    rows = [
        [
            _code_span(v.name),
            _prose(v.description),
            _code_span(v.type),
            "*required*" if v.default is None else _code_span(v.default),
        ]
        for v in variables
    ]
    return _table(["name", "description", "type", "default"], rows, [v.sensitive for v in variables])


def outputs_table(outputs: list[Output]) -> str:
    """The Markdown table of ``outputs``: name and description."""
    rows = [[_code_span(o.name), _prose(o.description)] for o in outputs]
    return _table(["name", "description"], rows, [o.sensitive for o in outputs])


# --- the READMEs --------------------------------------------------------------------


@dataclass(frozen=True)
class Documented:
    """A README and the folder of ``.tf`` files whose tables it holds."""

    readme: Path
    folder: Path
    kinds: tuple[str, ...]


def documented(repo: Path = REPO) -> list[Documented]:
    """Every module README (variables and outputs) and the repository README (the root stack's variables)."""
    found = [Documented(repo / "README.md", repo / "terraform", ("variables",))]
    for folder in sorted(p for p in (repo / "modules").iterdir() if (p / "main.tf").is_file()):
        kinds = tuple(kind for kind, name in TABLES.items() if (folder / name).is_file())
        found.append(Documented(folder / "README.md", folder, kinds))
    return found


def table(folder: Path, kind: str) -> str:
    """The generated ``kind`` table of ``folder``."""
    path = folder / TABLES[kind]
    return variables_table(read_variables(path)) if kind == "variables" else outputs_table(read_outputs(path))


def begin_marker(kind: str) -> str:
    """The line that opens a generated table, naming the command that writes it."""
    return f"<!-- BEGIN TFDOC {kind}: {COMMAND} -->"


def regenerate(doc: Documented, text: str) -> str:
    """``text`` (the README) with the tables of ``doc`` regenerated; a missing one is appended in its own section."""
    for kind in doc.kinds:
        closing = END.format(kind=kind)
        fresh = f"{begin_marker(kind)}\n{table(doc.folder, kind)}\n{closing}"
        start = next((m for m in BEGIN.finditer(text) if m.group(1) == kind), None)
        if start is None:
            text = text.rstrip("\n") + f"\n\n## {kind.capitalize()}\n\n{fresh}\n"
            continue
        end = text.find(closing, start.end())
        if end < 0:
            raise HclError(f"{_shown(doc.readme)}: {start.group().strip()} has no {closing} after it")
        text = text[: start.start()] + fresh + text[end + len(closing) :]
    return text


def stale(doc: Documented) -> str | None:
    """None when the README's tables are current; otherwise what to do, and the diff."""
    text = doc.readme.read_text(encoding="utf-8") if doc.readme.is_file() else ""
    fresh = regenerate(doc, text)
    if fresh == text:
        return None
    sources = ", ".join(_shown(doc.folder / TABLES[kind]) for kind in doc.kinds)
    diff = difflib.unified_diff(text.splitlines(), fresh.splitlines(), "README", "generated", lineterm="", n=0)
    return f"{_shown(doc.readme)}: tables out of step with {sources}; regenerate them: {COMMAND}\n" + "\n".join(diff)


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the stale tables instead of listing them")
    args = parser.parse_args(argv)
    problems = 0
    for doc in documented():
        message = stale(doc)
        if message is None:
            continue
        if args.write:
            text = doc.readme.read_text(encoding="utf-8") if doc.readme.is_file() else ""
            doc.readme.write_text(regenerate(doc, text), encoding="utf-8")
            print(f"rewrote {_shown(doc.readme)}")
        else:
            print(message, file=sys.stderr)
            problems += 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
