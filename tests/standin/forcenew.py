"""Which attributes force a replacement, read from the providers' Go source.

The cdktf schema the stand-in serves has names and types only. Whether a change
replaces a resource lives in the provider's Go code: ``ForceNew: true`` in a
terraform-plugin-sdk schema (hashicorp/google), or a ``RequiresReplace()`` plan
modifier in a terraform-plugin-framework schema (hashicorp/time). This module
reads those schemas out of git mirrors of the providers (``git show TAG:PATH``;
no work tree needed) and writes ``forcenew.json`` beside it::

    .venv/bin/python -m tests.standin.forcenew \\
        --google /path/to/terraform-provider-google.git --time /path/to/terraform-provider-time.git

For each provider version it records the commit, and for each resource type the
source files read, the attribute paths that force a replacement, the
``DiffSuppressFunc`` of each attribute that has one, and the ``CustomizeDiff``
functions (logic the stand-in does not model). Paths use dots across nested
blocks: ``external_data_configuration.schema``.

Only the standard library and ``git`` are used.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.standin import PROVIDERS

HERE = Path(__file__).resolve().parent
DATA_FILE = HERE / "forcenew.json"

_STANDIN = {provider.name: provider for provider in PROVIDERS}
GOOGLE = _STANDIN["google"].source
TIME = _STANDIN["time"].source
# The versions the stand-in's schemas come from, and for google the newest release inside the
# modules' `>= 6.0, < 8.0` pin.
VERSIONS = {GOOGLE: (f"v{_STANDIN['google'].version}", "v7.45.0"), TIME: (f"v{_STANDIN['time'].version}",)}
# The resource types the kit declares (tests/standin/test_forcenew.py checks modules/ uses no other).
RESOURCES = {
    GOOGLE: (
        "google_bigquery_connection",
        "google_bigquery_dataset",
        "google_bigquery_table",
        "google_project_iam_member",
        "google_project_service",
        "google_storage_bucket",
        "google_storage_bucket_iam_member",
    ),
    TIME: ("time_sleep",),
}
# tpgiamresource.ResourceIamMember(parentSchema, ...) merges this base schema with the parent's.
IAM_BASES = {"ResourceIamMember": "IamMemberBaseSchema"}


class SourceError(Exception):
    """The Go source did not have the shape this extractor reads."""


# ----------------------------------------------------------------------------
# Go text: comments out, balanced braces, top-level elements
# ----------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|\'(?:[^\'\\\n]|\\.)+\'')


def strip_comments(text: str) -> str:
    """Go source with ``//`` and ``/* */`` comments blanked out (strings kept)."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c in "\"`'":
            m = _STRING.match(text, i)
            end = m.end() if m else i + 1
            out.append(text[i:end])
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _walk(text: str, start: int) -> Iterator[tuple[int, int]]:
    """(index, nesting depth before it) of each character outside string literals, from ``start``."""
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c in "\"`'":
            m = _STRING.match(text, i)
            i = m.end() if m else i + 1
            continue
        if c in ")}]":
            depth -= 1
        yield i, depth + (c in ")}]")
        if c in "({[":
            depth += 1
        i += 1


def _scan(text: str, start: int, stop_at: str) -> int:
    """Index of the first ``stop_at`` character at nesting depth 0 from ``start`` (len(text) if none)."""
    for i, depth in _walk(text, start):
        if depth == 0 and text[i] in stop_at:
            return i
    return len(text)


def _top_level_return(body: str) -> int | None:
    """Index just after the first ``return`` at depth 0 of a function body (None if there is none)."""
    for i, depth in _walk(body, 0):
        if depth == 0 and body.startswith("return ", i) and (i == 0 or body[i - 1].isspace()):
            return i + len("return ")
    return None


def braced(text: str, open_index: int) -> str:
    """The text between the ``{`` at ``open_index`` and its matching ``}``."""
    if text[open_index] != "{":
        raise SourceError(f"expected '{{' at {text[open_index : open_index + 40]!r}")
    end = _scan(text, open_index + 1, "}")
    return text[open_index + 1 : end]


def elements(body: str) -> list[str]:
    """The comma-separated top-level elements of a composite literal body."""
    out, i = [], 0
    while i < len(body):
        end = _scan(body, i, ",")
        item = body[i:end].strip()
        if item:
            out.append(item)
        i = end + 1
    return out


def fields(body: str) -> dict[str, str]:
    """``key: value`` elements of a composite literal, keys unquoted."""
    out = {}
    for item in elements(body):
        colon = _scan(item, 0, ":")
        if colon < len(item):
            out[item[:colon].strip().strip('"')] = item[colon + 1 :].strip()
    return out


def literal_body(value: str, prefix: str) -> str | None:
    """The body of ``value`` when it is a composite literal opening with ``prefix`` (which ends with ``{``)."""
    value = value.strip()
    return braced(value, len(prefix) - 1) if value.startswith(prefix) else None


# ----------------------------------------------------------------------------
# reading a git mirror
# ----------------------------------------------------------------------------


@dataclass
class Tree:
    """One tag of a git mirror (a bare repository is enough)."""

    git_dir: Path
    tag: str
    read: list[str] = field(default_factory=list)  # files read for the current resource

    def _git(self, *args: str) -> str:
        done = subprocess.run(["git", "--git-dir", str(self.git_dir), *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise SourceError(f"git {' '.join(args)} in {self.git_dir}: {done.stderr.strip()}")
        return done.stdout

    def commit(self) -> str:
        return self._git("rev-parse", f"{self.tag}^{{commit}}").strip()

    def show(self, path: str, record: bool = True) -> str:
        """A file's text without comments; ``record`` adds it to the files read for the current resource."""
        if record and path not in self.read:
            self.read.append(path)
        return strip_comments(self._git("show", f"{self.tag}:{path}"))

    def grep(self, pattern: str, under: str) -> list[tuple[str, str]]:
        """(path, line) of every non-test .go file under ``under`` matching the extended regex ``pattern``."""
        done = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), "grep", "-n", "-E", pattern, self.tag, "--", f"{under}/*.go"],
            capture_output=True,
            text=True,
        )
        hits = []
        for line in done.stdout.splitlines():
            _, path, _, text = line.split(":", 3)
            if not path.endswith("_test.go"):
                hits.append((path, text))
        return hits


# ----------------------------------------------------------------------------
# terraform-plugin-sdk schemas (google)
# ----------------------------------------------------------------------------

SCHEMA_MAP = "map[string]*schema.Schema{"
RESOURCE_LITERAL = "&schema.Resource{"


@dataclass
class Attribute:
    force_new: bool = False
    diff_suppress: str | None = None
    nested: dict[str, Attribute] = field(default_factory=dict)


def sdk_schema_map(tree: Tree, body: str, path: str) -> dict[str, Attribute]:
    """Attributes of a ``map[string]*schema.Schema{...}`` body."""
    out = {}
    for name, value in fields(body).items():
        call = re.fullmatch(r"(?:\w+\.)?(\w+)\(.*\)", value, re.S)
        if call:  # a helper building a shared entry, e.g. tpgresource.DeletionPolicySchemaEntry("DELETE")
            value = function_return(tree, call.group(1), path, "*schema.Schema")
        inner = literal_body(value, "&schema.Schema{") or (braced(value, 0) if value.startswith("{") else None)
        if inner is None:
            raise SourceError(f"{path}: attribute {name} is not a schema literal: {value[:80]!r}")
        spec = fields(inner)
        suppress = spec.get("DiffSuppressFunc")
        attribute = Attribute(
            force_new=spec.get("ForceNew") == "true",
            diff_suppress="(inline function)" if suppress and suppress.startswith("func(") else suppress,
        )
        elem = spec.get("Elem", "")
        if elem.startswith(RESOURCE_LITERAL) or re.fullmatch(r"[\w.]+\(\)", elem):
            attribute.nested = sdk_resource(tree, elem, path)[0]
        out[name] = attribute
    return out


def sdk_resource(tree: Tree, expression: str, path: str) -> tuple[dict[str, Attribute], list[str]]:
    """Attributes and CustomizeDiff functions of a ``*schema.Resource`` expression."""
    expression = expression.strip()
    body = literal_body(expression, RESOURCE_LITERAL)
    if body is not None:
        spec = fields(body)
        if "Schema" not in spec:
            raise SourceError(f"{path}: schema.Resource without Schema")
        schema = spec["Schema"]
        schema_body = literal_body(schema, SCHEMA_MAP)
        attributes = (
            sdk_schema_map(tree, schema_body, path) if schema_body is not None else sdk_variable(tree, schema, path)
        )
        customize = spec.get("CustomizeDiff", "")
        if customize.startswith("customdiff.All(") and customize.endswith(")"):
            return attributes, elements(customize[len("customdiff.All(") : -1])
        return attributes, [customize] if customize else []
    call = re.fullmatch(r"(?:(\w+)\.)?(\w+)\((.*)\)", expression, re.S)
    if not call:
        raise SourceError(f"{path}: cannot read schema expression {expression[:120]!r}")
    name, args = call.group(2), elements(call.group(3))
    if name in IAM_BASES:
        merged = dict(sdk_variable(tree, IAM_BASES[name], path))
        merged.update(sdk_variable(tree, args[0], path))
        return merged, []
    return sdk_resource(tree, function_return(tree, name, path), path)


def function_return(tree: Tree, name: str, path: str, result: str = "*schema.Resource") -> str:
    """The expression ``func name(...) RESULT`` returns (its first return statement at the top level)."""
    pattern = rf"^func {name}\([^)]*\) {re.escape(result)} \{{"
    hits = tree.grep(pattern, "google")
    if len(hits) != 1:
        raise SourceError(f"{path}: expected one definition of func {name}, found {hits}")
    text = tree.show(hits[0][0])
    start = re.search(pattern, text, re.M)
    body = braced(text, start.end() - 1)
    start = _top_level_return(body)
    if start is None:
        raise SourceError(f"{path}: func {name} has no return statement")
    return body[start : _scan(body, start, "\n")].strip()


def sdk_variable(tree: Tree, name: str, path: str) -> dict[str, Attribute]:
    """Attributes of ``var NAME = map[string]*schema.Schema{...}`` (``pkg.NAME`` accepted)."""
    name = name.split(".")[-1]
    hits = tree.grep(rf"^var {name} = map\[string\]\*schema\.Schema\{{", "google")
    if len(hits) != 1:
        raise SourceError(f"{path}: expected one definition of var {name}, found {hits}")
    text = tree.show(hits[0][0])
    start = re.search(rf"^var {name} = map\[string\]\*schema\.Schema\{{", text, re.M)
    return sdk_schema_map(tree, braced(text, start.end() - 1), path)


def registration(tree: Tree, type_name: str) -> str:
    """The Go expression that builds resource ``type_name``'s schema, from the provider's registration.

    v6: an entry ``"TYPE": EXPR,`` in one of the ``var ...Resources = map[string]*schema.Resource{`` maps;
    v7: ``registry.Schema{Name: "TYPE", Type: registry.SchemaTypeResource (or IAMResource), Schema: EXPR}``.
    """
    found: list[tuple[str, str]] = []
    for path in sorted({p for p, _ in tree.grep(f'"{type_name}"', "google")}):
        text = tree.show(path, record=False)
        for m in re.finditer(r"^var (\w+) = map\[string\]\*schema\.Resource\{", text, re.M):
            if "Resources" in m.group(1) and "Datasource" not in m.group(1):
                entries = fields(braced(text, m.end() - 1))
                if type_name in entries:
                    found.append((path, entries[type_name]))
        for m in re.finditer(r"registry\.Schema\{", text):
            spec = fields(braced(text, m.end() - 1))
            kind = spec.get("Type", "")
            if spec.get("Name") == f'"{type_name}"' and kind.endswith(("SchemaTypeResource", "SchemaTypeIAMResource")):
                found.append((path, spec["Schema"]))
    if len(found) != 1:
        raise SourceError(f"{tree.tag}: expected one registration of resource {type_name}, found {found}")
    tree.show(found[0][0])
    return found[0][1]


# ----------------------------------------------------------------------------
# terraform-plugin-framework schemas (time)
# ----------------------------------------------------------------------------


def framework_resource(tree: Tree, type_name: str) -> dict[str, Attribute]:
    """Attributes of a framework resource whose Metadata sets ``TypeName = ProviderTypeName + "_suffix"``."""
    suffix = type_name.split("_", 1)[1]
    hits = tree.grep(rf'resp\.TypeName = req\.ProviderTypeName \+ "_{suffix}"', "internal")
    if len(hits) != 1:
        raise SourceError(f"{tree.tag}: expected one resource named {type_name}, found {hits}")
    text = tree.show(hits[0][0])
    schema = re.search(r"resp\.Schema = schema\.Schema\{", text)
    if not schema:
        raise SourceError(f"{hits[0][0]}: no resp.Schema = schema.Schema{{")
    return framework_block(braced(text, schema.end() - 1), type_name)


def framework_block(body: str, path: str) -> dict[str, Attribute]:
    out = {}
    spec = fields(body)
    for key in ("Attributes", "Blocks"):
        members = re.match(r"map\[string\]schema\.\w+\{", spec.get(key, ""))
        if not members:
            continue
        for name, value in fields(braced(spec[key], members.end() - 1)).items():
            kind = re.match(r"schema\.(\w+)\{", value)
            if not kind:
                raise SourceError(f"{path}.{name}: not a schema literal: {value[:80]!r}")
            inner = braced(value, kind.end() - 1)
            modifiers = fields(inner).get("PlanModifiers", "")
            attribute = Attribute(force_new=bool(re.search(r"\.RequiresReplace\(\)", modifiers)))
            if kind.group(1).endswith("Block"):
                attribute.nested = framework_block(fields(inner).get("NestedObject", "{}")[1:-1] or inner, path)
            out[name] = attribute
    return out


# ----------------------------------------------------------------------------
# the data file
# ----------------------------------------------------------------------------


def flatten(attributes: dict[str, Attribute], prefix: str = "") -> tuple[list[str], dict[str, str]]:
    """(force-new paths, {path: DiffSuppressFunc}) with dotted paths, sorted."""
    force_new, suppress = [], {}
    for name, attribute in sorted(attributes.items()):
        path = prefix + name
        if attribute.force_new:
            force_new.append(path)
        if attribute.diff_suppress:
            suppress[path] = attribute.diff_suppress
        inner_force, inner_suppress = flatten(attribute.nested, path + ".")
        force_new += inner_force
        suppress.update(inner_suppress)
    return force_new, suppress


def extract(provider: str, git_dir: Path, tag: str) -> dict:
    """The data of one provider version: commit and, per resource type, what forces a replacement."""
    tree = Tree(git_dir, tag)
    resources = {}
    for type_name in RESOURCES[provider]:
        tree.read = []
        customize: list[str] = []
        if provider == TIME:
            attributes = framework_resource(tree, type_name)
        else:
            attributes, customize = sdk_resource(tree, registration(tree, type_name), type_name)
        force_new, suppress = flatten(attributes)
        if not force_new:
            raise SourceError(f"{tag} {type_name}: no attribute forces a replacement; the source was misread")
        resources[type_name] = {
            "sources": sorted(tree.read),
            "force_new": force_new,
            "diff_suppress": suppress,
            "customize_diff": customize,
        }
    return {"commit": tree.commit(), "resources": resources}


def generate(repos: dict[str, Path]) -> dict:
    """The whole document, for every provider in ``repos`` (provider source address -> git dir)."""
    return {
        "about": (
            "Attributes whose change replaces the resource, extracted from each provider's Go source "
            "(ForceNew: true, or a RequiresReplace() plan modifier). Generated by "
            "`python -m tests.standin.forcenew`; do not edit."
        ),
        "providers": {
            provider: {
                "repository": f"github.com/hashicorp/terraform-provider-{provider.rsplit('/', 1)[1]}",
                "versions": {tag.lstrip("v"): extract(provider, repos[provider], tag) for tag in VERSIONS[provider]},
            }
            for provider in sorted(repos)
        },
    }


def load(path: Path = DATA_FILE) -> dict:
    """The committed data file."""
    return json.loads(path.read_text())


def replacement_rules(document: dict, provider: str) -> dict[str, dict]:
    """Per resource type: ``force_new`` paths (union over the recorded versions) and ``case_insensitive`` paths.

    The union is deliberate: the modules allow every version in their pin, and a plan
    review that warns of a replacement only one version makes is the safe mistake.
    """
    rules: dict[str, dict] = {}
    for version in document["providers"].get(provider, {}).get("versions", {}).values():
        for type_name, data in version["resources"].items():
            rule = rules.setdefault(type_name, {"force_new": set(), "case_insensitive": set()})
            rule["force_new"].update(data["force_new"])
            rule["case_insensitive"].update(
                p for p, fn in data["diff_suppress"].items() if fn == "tpgresource.CaseDiffSuppress"
            )
    return {t: {k: sorted(v) for k, v in r.items()} for t, r in rules.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.standin.forcenew", description=__doc__.splitlines()[0])
    ap.add_argument("--google", type=Path, required=True, help="git dir of hashicorp/terraform-provider-google")
    ap.add_argument("--time", type=Path, required=True, help="git dir of hashicorp/terraform-provider-time")
    ap.add_argument("--output", type=Path, default=DATA_FILE, help=f"default: {DATA_FILE.name} beside this file")
    args = ap.parse_args(argv)
    try:
        document = generate({GOOGLE: args.google, TIME: args.time})
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.output.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
