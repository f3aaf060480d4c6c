"""Generate provider schemas from a cdktf jsii assembly.

A prebuilt cdktf provider package on PyPI (``cdktf-cdktf-provider-google``,
``cdktf-cdktf-provider-time``) ships a jsii assembly (an npm
tarball) whose ``lib/<name>/index.js`` files carry inline source maps.  The
source maps hold the generated TypeScript, which cdktf wrote from the real
provider's ``terraform providers schema -json`` output.  This module reads
that TypeScript and rebuilds a Terraform schema from it:

* every attribute and block, at every nesting level, has a comment line
  ``// <tf_name> - computed: X, optional: Y, required: Z``;
* ``synthesizeHclAttributes`` / ``<struct>ToHclTerraform`` tell, for every
  configurable name, whether it is a block and its list/set/map/struct kind;
* a block held as ``new <Struct>OutputReference(...)`` (config type without
  ``[]``) has at most one item; a required block needs at least one;
* computed-only names are not configurable: their type comes from the getter
  (``getStringAttribute``, ``new <Struct>List(this, "x", wrapsSet)``, ...).

Pure standard library: it runs in any Python 3.10+ interpreter.

Output (JSON)::

    {"provider": BLOCK, "resources": {type: BLOCK}, "data_sources": {type: BLOCK}}
    BLOCK = {"attributes": {name: {"type": CTY_TYPE, "required"|"optional"|"computed": true}},
             "blocks": {name: {"nesting": "list"|"set"|"single", "min_items": int,
                               "max_items": int, "block": BLOCK}}}

CTY_TYPE is Terraform's JSON type notation (``"string"``, ``["list", "string"]``,
``["object", {...}]``), which is also what the plugin protocol expects.
"""

from __future__ import annotations

import base64
import json
import re
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

_SOURCE_MAP = re.compile(rb"//# sourceMappingURL=data:application/json;base64,([A-Za-z0-9+/=]+)")
_LIB_JS = re.compile(r"^package/lib/([^/]+)/(index\.js|index-structs/[^/]+\.js)$")

_CLASS = re.compile(r"^export class (\w+) extends ([\w.]+)(?:<[^>\n]*>)? \{\n(.*?)^\}$", re.M | re.S)
_INTERFACE = re.compile(r"^export interface (\w+)(?: extends [\w., ]+)? \{\n(.*?)^\}$", re.M | re.S)
_HCL_FUNC = re.compile(r"^export function (\w+)ToHclTerraform\(struct\?: ([^)]*)\): any \{\n(.*?)^\}$", re.M | re.S)
_HCL_MAIN = re.compile(r"protected synthesizeHclAttributes\(\): \{ \[name: string\]: any \} \{\n(.*?)\n  \}\n", re.S)
_HCL_ENTRY = re.compile(
    r'^\s*"?(\w+)"?: \{\n\s*value: (.*?),\n\s*isBlock: (true|false),\n\s*type: "(\w+)",\n'
    r'\s*storageClassType: "(\w+)",\n\s*\},?$',
    re.M | re.S,
)
_PROP = re.compile(r"^  readonly (\w+)(\??): ([^;]+);$", re.M)
_SECTION = re.compile(r"^  // (\w+) - computed: (true|false), optional: (true|false), required: (true|false)$", re.M)
_TF_TYPE = re.compile(r'public static readonly tfResourceType = "(\w+)";')
_VALUE_PROP = re.compile(r"(?:struct!\.|this\._)(\w+)")

_MAIN_BASES = {
    "cdktf.TerraformResource": "resources",
    "cdktf.TerraformDataSource": "data_sources",
    "cdktf.TerraformProvider": "provider",
}
_PRIMITIVES = {"string": "string", "number": "number", "boolean": "bool", "any": "dynamic"}


class SchemaError(Exception):
    """The TypeScript did not match what the generator understands."""


# ----------------------------------------------------------------------------
# reading the assembly
# ----------------------------------------------------------------------------


def find_jsii_tgz(wheel: zipfile.ZipFile) -> str:
    names = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
    if len(names) != 1:
        raise SchemaError(f"expected one .jsii.tgz in the wheel, found {names}")
    return names[0]


def iter_typescript(wheel_path: Path, wanted: set[str] | None = None) -> Iterator[tuple[str, str]]:
    """Yield (lib directory, TypeScript source) for every generated .js file.

    ``wanted`` limits which ``lib/<dir>`` directories are decoded (None: all).
    The tarball is read as a stream straight out of the wheel zip.
    """
    with zipfile.ZipFile(wheel_path) as wheel:
        with wheel.open(find_jsii_tgz(wheel)) as raw:
            with tarfile.open(fileobj=raw, mode="r|gz") as tar:
                for member in tar:
                    m = _LIB_JS.match(member.name)
                    if not m or not member.isfile():
                        continue
                    if wanted is not None and m.group(1) not in wanted:
                        continue
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    sm = _SOURCE_MAP.search(data)
                    if not sm:
                        continue
                    source_map = json.loads(base64.b64decode(sm.group(1)))
                    for content in source_map.get("sourcesContent") or ():
                        if content:
                            yield m.group(1), content


def group_by_directory(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for directory, source in items:
        out.setdefault(directory, []).append(source)
    return {d: "\n".join(parts) for d, parts in out.items()}


# ----------------------------------------------------------------------------
# parsing one lib/<dir>
# ----------------------------------------------------------------------------


@dataclass
class HclEntry:
    name: str
    prop: str | None
    is_block: bool
    kind: str  # simple | list | set | map | struct
    storage: str


@dataclass
class Section:
    name: str
    computed: bool
    optional: bool
    required: bool
    body: str


@dataclass
class Module:
    """The parsed TypeScript of one resource, data source or the provider."""

    directory: str
    classes: dict[str, tuple[str, list[Section], str]] = field(default_factory=dict)  # name -> (base, sections, body)
    interfaces: dict[str, dict[str, tuple[bool, str]]] = field(
        default_factory=dict
    )  # name -> prop -> (optional, ts type)
    hcl: dict[str, dict[str, HclEntry]] = field(default_factory=dict)  # struct or main class -> tf name -> entry


def _sections(body: str) -> list[Section]:
    marks = list(_SECTION.finditer(body))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        out.append(
            Section(m.group(1), m.group(2) == "true", m.group(3) == "true", m.group(4) == "true", body[m.end() : end])
        )
    return out


def _hcl_entries(text: str) -> dict[str, HclEntry]:
    out = {}
    for m in _HCL_ENTRY.finditer(text):
        props = _VALUE_PROP.findall(m.group(2))
        out[m.group(1)] = HclEntry(
            m.group(1), props[-1] if props else None, m.group(3) == "true", m.group(4), m.group(5)
        )
    return out


def parse_module(directory: str, text: str) -> Module:
    mod = Module(directory)
    for m in _CLASS.finditer(text):
        mod.classes[m.group(1)] = (m.group(2), _sections(m.group(3)), m.group(3))
        if m.group(2) in _MAIN_BASES:
            hm = _HCL_MAIN.search(m.group(3))
            if hm:
                mod.hcl[m.group(1)] = _hcl_entries(hm.group(1))
    for m in _INTERFACE.finditer(text):
        mod.interfaces[m.group(1)] = {p.group(1): (p.group(2) == "?", p.group(3)) for p in _PROP.finditer(m.group(2))}
    for m in _HCL_FUNC.finditer(text):
        names = [n.strip() for n in m.group(2).split("|")]
        structs = [n for n in names if not n.startswith("cdktf.") and not n.endswith("OutputReference")]
        if len(structs) != 1:
            raise SchemaError(f"{directory}: cannot tell the struct of {m.group(1)}ToHclTerraform({m.group(2)})")
        mod.hcl[structs[0]] = _hcl_entries(m.group(3))
    return mod


# ----------------------------------------------------------------------------
# building schemas
# ----------------------------------------------------------------------------


def _primitive_collection(entry: HclEntry, where: str):
    storage = entry.storage
    if entry.kind == "simple" and storage in _PRIMITIVES:
        return _PRIMITIVES[storage]
    for suffix, kinds in (("List", ("list", "set")), ("Map", ("map",))):
        if storage.endswith(suffix) and storage[: -len(suffix)] in _PRIMITIVES and entry.kind in kinds:
            return [entry.kind, _PRIMITIVES[storage[: -len(suffix)]]]
    raise SchemaError(f"{where}: unsupported attribute kind {entry.kind}/{storage}")


class Builder:
    def __init__(self, mod: Module):
        self.mod = mod

    # -- computed-only attribute types, from getters --------------------------

    def getter_type(self, body: str, where: str):
        m = re.search(r'new (\w+)List\(this, "\w+", (true|false)\)', body)
        if m and not m.group(1).startswith("cdktf."):
            return ["set" if m.group(2) == "true" else "list", self.object_type(m.group(1), where)]
        m = re.search(r'new (\w+)OutputReference\(this, "\w+"\)', body)
        if m:
            return ["list", self.object_type(m.group(1), where)]
        m = re.search(r'new cdktf\.(String|Number|Boolean|Any)MapList\(this, "\w+", (true|false)\)', body)
        if m:
            return ["set" if m.group(2) == "true" else "list", ["map", _PRIMITIVES[m.group(1).lower()]]]
        m = re.search(r'new cdktf\.(String|Number|Boolean|Any)Map\(this, "\w+"\)', body)
        if m:
            return ["map", _PRIMITIVES[m.group(1).lower()]]
        m = re.search(r"return (cdktf\.Fn\.tolist\()?this\.get(String|Number|Boolean|Any)?(List|Map)?Attribute\(", body)
        if m:
            prim = _PRIMITIVES[(m.group(2) or "String").lower()]
            if m.group(3) == "List":
                return ["set" if m.group(1) else "list", prim]
            if m.group(3) == "Map":
                return ["map", prim]
            if m.group(2):
                return prim
        raise SchemaError(f"{where}: cannot tell the type of a computed attribute from {body[:200]!r}")

    def object_type(self, struct: str, where: str):
        cls = self.mod.classes.get(struct + "OutputReference")
        if cls is None:
            raise SchemaError(f"{where}: no class {struct}OutputReference")
        return ["object", {s.name: self.getter_type(s.body, f"{where}.{s.name}") for s in cls[1]}]

    # -- blocks -----------------------------------------------------------------

    def block(self, struct: str, class_name: str | None, iface_name: str, where: str) -> dict:
        hcl = self.mod.hcl.get(struct, {})
        iface = self.mod.interfaces.get(iface_name, {})
        cls = self.mod.classes.get(class_name) if class_name else None
        if cls is not None:
            sections = cls[1]
        else:  # no output reference class (the provider's own blocks): config interface only
            sections = []
            for name, entry in hcl.items():
                optional = iface.get(entry.prop or "", (True, ""))[0]
                sections.append(Section(name, False, optional, not optional, ""))
        attributes: dict[str, dict] = {}
        blocks: dict[str, dict] = {}
        for sec in sections:
            path = f"{where}.{sec.name}"
            flags = {k: True for k in ("required", "optional", "computed") if getattr(sec, k)}
            entry = hcl.get(sec.name)
            if entry is None:
                if sec.optional or sec.required:
                    raise SchemaError(f"{path}: configurable but not synthesized")
                attributes[sec.name] = {"type": self.getter_type(sec.body, path), **flags}
            elif not entry.is_block:
                attributes[sec.name] = {"type": _primitive_collection(entry, path), **flags}
            else:
                blocks[sec.name] = self.nested(struct, iface, sec, entry, path)
        missing = set(hcl) - {s.name for s in sections}
        if missing:
            raise SchemaError(f"{where}: synthesized but undocumented: {sorted(missing)}")
        return {"attributes": attributes, "blocks": blocks}

    def nested(self, parent: str, iface: dict, sec: Section, entry: HclEntry, where: str) -> dict:
        if entry.kind == "struct":
            child, nesting, max_items = entry.storage, "single", 0
        elif entry.kind in ("list", "set") and entry.storage.endswith("List"):
            child, nesting = entry.storage[: -len("List")], entry.kind
            max_items = self.max_items(parent, iface, sec, entry, child, where)
        else:
            raise SchemaError(f"{where}: unsupported block kind {entry.kind}/{entry.storage}")
        # A required block needs at least one item; Terraform wants NestingSingle
        # limits to be both 0 (optional) or both 1 (required).
        min_items = 1 if sec.required else 0
        if nesting == "single":
            max_items = min_items
        return {
            "nesting": nesting,
            "min_items": min_items,
            "max_items": max_items,
            "block": self.block(child, child + "OutputReference", child, where),
        }

    @staticmethod
    def max_items(parent: str, iface: dict, sec: Section, entry: HclEntry, child: str, where: str) -> int:
        """1 for a block cdktf models as a single object, else 0 (no limit)."""
        if re.search(rf'new {child}OutputReference\(this, "{sec.name}"\)', sec.body):
            return 1
        if re.search(rf'new {child}List\(this, "{sec.name}", (true|false)\)', sec.body):
            return 0
        field_type = re.search(r"private _\w+\??: ([^;]+);", sec.body)
        ts_type = field_type.group(1) if field_type else iface.get(entry.prop or "", (True, ""))[1]
        if child not in ts_type:
            raise SchemaError(f"{where}: cannot tell how many {child} blocks {parent} takes")
        return 0 if f"{child}[]" in ts_type else 1


def build_module(mod: Module) -> tuple[str, str, dict] | None:
    """Return (section, terraform type name, block) for the main class of a module."""
    mains = [(name, base, body) for name, (base, _, body) in mod.classes.items() if base in _MAIN_BASES]
    if not mains:
        return None
    if len(mains) != 1:
        raise SchemaError(f"{mod.directory}: several main classes {[m[0] for m in mains]}")
    name, base, body = mains[0]
    tf = _TF_TYPE.search(body)
    if not tf:
        raise SchemaError(f"{mod.directory}: no tfResourceType")
    block = Builder(mod).block(name, name, name + "Config", tf.group(1))
    if base == "cdktf.TerraformProvider":
        # cdktf exposes the ``alias`` meta-argument as a provider property; it is
        # not part of the provider's configuration schema.
        block["attributes"].pop("alias", None)
    return _MAIN_BASES[base], tf.group(1), block


# ----------------------------------------------------------------------------
# entry points
# ----------------------------------------------------------------------------


def directory_for(kind: str, type_name: str) -> str:
    """lib/<dir> of a resource or data source type (cdktf's naming)."""
    stem = type_name.removeprefix("google_").replace("_", "-")
    return f"data-google-{stem}" if kind == "data" else stem


def generate(wheel_path: Path, only: Iterable[tuple[str, str]] | None = None) -> dict:
    """Build the schema document from the wheel.

    ``only``: (kind, type) pairs with kind ``resource`` or ``data``; None means
    every resource and data source in the package.  The provider's own
    configuration schema is always included.
    """
    wanted = None
    if only is not None:
        wanted = {"provider"} | {directory_for(k, t) for k, t in only}
    doc: dict = {"provider": None, "resources": {}, "data_sources": {}}
    for directory, text in sorted(group_by_directory(iter_typescript(wheel_path, wanted)).items()):
        built = build_module(parse_module(directory, text))
        if built is None:
            continue
        section, type_name, block = built
        if section == "provider":
            doc["provider"] = block
        else:
            doc[section][type_name] = block
    if doc["provider"] is None:
        raise SchemaError("the provider configuration schema was not found")
    if only is not None:
        have = {("resource", t) for t in doc["resources"]} | {("data", t) for t in doc["data_sources"]}
        missing = sorted(set(only) - have)
        if missing:
            raise SchemaError(f"not in {Path(wheel_path).name}: {missing}")
    return doc


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - debugging aid
    import argparse
    import sys

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", type=Path)
    ap.add_argument("type", nargs="*", help="resource types, or data.<type> for data sources")
    args = ap.parse_args(argv)
    only = None
    if args.type:
        only = [("data", t[5:]) if t.startswith("data.") else ("resource", t) for t in args.type]
    json.dump(generate(args.wheel, only), sys.stdout, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
