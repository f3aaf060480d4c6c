"""Offline stand-in for a Terraform provider (hashicorp/google, hashicorp/time): plan only.

Runs inside the provider virtualenv (which has ``tf``); it is copied into each
build directory next to the ``schema-<provider>.json`` files and started by
Terraform through a small shell wrapper (``server.py --schema FILE``).  It
serves the generated schema over the plugin protocol (v6) and:

* validates what the schema tells: Terraform core checks argument names,
  required arguments, types and block counts against it; the stand-in adds the
  real provider's "Computed attributes cannot be set" check;
* plans creates/updates by marking every computed attribute that the
  configuration leaves null as unknown, at every nesting level;
* plans a change to an attribute that forces a new resource in the provider's
  source as a replacement (``requires_replace``), and keeps the prior value of
  an attribute whose diff the provider suppresses case-insensitively;
* answers data source reads with placeholder values for computed attributes
  (they must be known during plan);
* refuses to apply, import or move anything.

``tf`` (PyPI) supplies the go-plugin handshake, TLS and generated protobuf
modules; its own schema and servicer classes are not used because they lack
object types, list/single nesting and nested unknowns.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgpack
import tf.provider
from tf.gen import tfplugin_pb2 as pb
from tf.gen import tfplugin_pb2_grpc as rpc
from tf.runner import run_provider
from tf.types import Unknown
from tf.utils import read_dynamic_value, to_dynamic_value

_NESTING = {
    "single": pb.Schema.NestedBlock.NestingMode.SINGLE,
    "list": pb.Schema.NestedBlock.NestingMode.LIST,
    "set": pb.Schema.NestedBlock.NestingMode.SET,
}

OFFLINE_SUMMARY = "offline stand-in provider: plan only"
OFFLINE_DETAIL = (
    "This provider is an offline stand-in generated from the cdktf provider "
    "schema for `terraform validate` and `terraform plan` in tests. It cannot {what}. "
    "Unset EMBED_TF_PROVIDER or set EMBED_TF_PROVIDER=registry to use the real provider."
)

# Placeholder values a data source read returns for computed attributes that
# a plan may interpolate.  Anything not listed gets a generic value by type.
PLACEHOLDER_PROJECT = "standin-project"
PLACEHOLDER_OVERRIDES: dict[tuple[str, str], Any] = {
    ("google_project", "number"): "123456789012",
    ("google_client_config", "access_token"): "standin-access-token",
}


def is_unknown(value: Any) -> bool:
    return value is Unknown or isinstance(value, msgpack.ExtType)


# ----------------------------------------------------------------------------
# schema -> protobuf
# ----------------------------------------------------------------------------


def block_to_pb(block: dict) -> pb.Schema.Block:
    attrs = [
        pb.Schema.Attribute(
            name=name,
            type=json.dumps(a["type"], separators=(",", ":")).encode(),
            required=a.get("required", False),
            optional=a.get("optional", False),
            computed=a.get("computed", False),
            description_kind=pb.StringKind.PLAIN,
        )
        for name, a in sorted(block["attributes"].items())
    ]
    nested = [
        pb.Schema.NestedBlock(
            type_name=name,
            block=block_to_pb(b["block"]),
            nesting=_NESTING[b["nesting"]],
            min_items=b.get("min_items", 0),
            max_items=b.get("max_items", 0),
        )
        for name, b in sorted(block["blocks"].items())
    ]
    return pb.Schema.Block(attributes=attrs, block_types=nested, description_kind=pb.StringKind.PLAIN)


def schema_to_pb(block: dict) -> pb.Schema:
    return pb.Schema(version=0, block=block_to_pb(block))


# ----------------------------------------------------------------------------
# planning
# ----------------------------------------------------------------------------


def plan_object(block: dict, proposed: Any) -> Any:
    """Planned value for one object of ``block``: computed nulls become unknown."""
    if proposed is None or is_unknown(proposed):
        return proposed
    out = dict(proposed)
    for name, attr in block["attributes"].items():
        if attr.get("computed") and out.get(name) is None:
            out[name] = Unknown
    for name, nested in block["blocks"].items():
        value = out.get(name)
        if value is None or is_unknown(value):
            continue
        if nested["nesting"] == "single":
            out[name] = plan_object(nested["block"], value)
        else:
            out[name] = [plan_object(nested["block"], item) for item in value]
    return out


def _at(value: Any, step: Any) -> Any:
    if isinstance(step, int):
        return value[step] if isinstance(value, list) and step < len(value) else None
    return value.get(step) if isinstance(value, dict) else None


def replace_paths(block: dict, names: list[str], prior: Any, planned: Any, path: tuple = ()) -> list[tuple]:
    """Concrete attribute paths for a dotted force-new path (``a.b`` in list block ``a``) that exist in a value.

    Terraform compares prior and planned values at each returned path and replaces the
    resource when one differs, so every path valid in either value is returned.
    """
    name, rest = names[0], names[1:]
    if name in block["attributes"]:
        return [(*path, name)] if not rest else []
    nested = block["blocks"].get(name)
    if nested is None:
        return []
    here = (*path, name)
    if not rest or nested["nesting"] == "set":  # set elements have no path; compare the whole set
        return [here]
    before, after = _at(prior, name), _at(planned, name)
    if nested["nesting"] == "single":
        return replace_paths(nested["block"], rest, before, after, here) if before or after else []
    lists = [v for v in (before, after) if isinstance(v, list)]
    found = []
    for i in range(max((len(v) for v in lists), default=0)):
        found += replace_paths(nested["block"], rest, _at(before, i), _at(after, i), (*here, i))
    return found


def keep_case_insensitive(planned: Any, prior: Any, paths: list[str]) -> Any:
    """Planned value with the prior value kept where the two differ only in case (a suppressed diff)."""
    for dotted in paths:
        names = dotted.split(".")
        if len(names) != 1:  # only top-level attributes carry such suppressions in the kit's resources
            continue
        old, new = _at(prior, names[0]), _at(planned, names[0])
        if isinstance(old, str) and isinstance(new, str) and old != new and old.lower() == new.lower():
            planned = {**planned, names[0]: old}
    return planned


def placeholder(cty_type: Any, type_name: str, attr: str, provider_config: dict) -> Any:
    override = PLACEHOLDER_OVERRIDES.get((type_name, attr))
    if override is not None:
        return override
    if cty_type == "string":
        if attr in ("project", "project_id"):
            return provider_config.get("project") or PLACEHOLDER_PROJECT
        if attr in ("region", "zone") and provider_config.get(attr):
            return provider_config[attr]
        return f"standin-{attr.replace('_', '-')}"
    if cty_type == "number":
        return 0
    if cty_type == "bool":
        return False
    if isinstance(cty_type, list) and cty_type[0] in ("list", "set"):
        return []
    if isinstance(cty_type, list) and cty_type[0] == "map":
        return {}
    return None


def read_data_object(block: dict, config: Any, type_name: str, provider_config: dict) -> Any:
    if config is None:
        return None
    out = dict(config)
    for name, attr in block["attributes"].items():
        if out.get(name) is not None:
            continue
        # Like the real data sources, fall back to the provider's project even
        # where project/project_id is optional but not computed.
        if attr.get("computed") or (name in ("project", "project_id") and attr["type"] == "string"):
            out[name] = placeholder(attr["type"], type_name, name, provider_config)
    for name, nested in block["blocks"].items():
        value = out.get(name)
        if value is None:
            continue
        if nested["nesting"] == "single":
            out[name] = read_data_object(nested["block"], value, type_name, provider_config)
        else:
            out[name] = [read_data_object(nested["block"], v, type_name, provider_config) for v in value]
    return out


def computed_only_set(block: dict, config: Any, path: list) -> list[pb.Diagnostic]:
    """Errors for computed-only attributes given a value in config, as the real provider reports them."""
    if not isinstance(config, dict):
        return []
    diags = []
    for name, attr in block["attributes"].items():
        if attr.get("computed") and not (attr.get("optional") or attr.get("required")) and config.get(name) is not None:
            steps = path + [name]
            key = ".".join(s if isinstance(s, str) else str(s[0]) for s in steps if s is not None)
            diags.append(
                pb.Diagnostic(
                    severity=pb.Diagnostic.ERROR,
                    summary="Computed attributes cannot be set",
                    detail=f"Computed attributes cannot be set, but a value was set for {json.dumps(key)}.",
                    attribute=pb.AttributePath(steps=[_step(s) for s in steps if s is not None]),
                )
            )
    for name, nested in block["blocks"].items():
        value = config.get(name)
        if value is None or is_unknown(value):
            continue
        if nested["nesting"] == "single":
            diags += computed_only_set(nested["block"], value, path + [name])
        else:
            for i, item in enumerate(value):
                # set elements have no index a diagnostic path could name
                index = (i,) if nested["nesting"] == "list" else None
                diags += computed_only_set(nested["block"], item, path + [name, index])
    return diags


def _step(step: Any) -> pb.AttributePath.Step:
    if isinstance(step, tuple):
        return pb.AttributePath.Step(element_key_int=step[0])
    if isinstance(step, int):
        return pb.AttributePath.Step(element_key_int=step)
    return pb.AttributePath.Step(attribute_name=step)


def _error(summary: str, detail: str = "") -> list[pb.Diagnostic]:
    return [pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary=summary, detail=detail)]


def _offline(what: str) -> list[pb.Diagnostic]:
    return _error(OFFLINE_SUMMARY, OFFLINE_DETAIL.format(what=what))


def _json_or_msgpack(value: pb.DynamicValue) -> Any:
    return read_dynamic_value(value) if (value.json or value.msgpack) else None


# ----------------------------------------------------------------------------
# the gRPC servicer
# ----------------------------------------------------------------------------


class StandinServicer(rpc.ProviderServicer):
    def __init__(self, schema: dict):
        self.schema = schema
        self.replace: dict[str, dict] = schema.get("replace", {})
        self.legacy = bool(schema.get("legacy_type_system"))
        self.provider_config: dict = {}
        self._schema_response: pb.GetProviderSchema.Response | None = None

    def _capabilities(self) -> pb.ServerCapabilities:
        return pb.ServerCapabilities(plan_destroy=True, get_provider_schema_optional=True)

    def _unknown_type(self, kind: str, type_name: str):
        return _error(f"{kind} type {type_name!r} is not in the stand-in schema")

    # -- schema and provider ------------------------------------------------

    def GetMetadata(self, request, context):
        return pb.GetMetadata.Response(
            server_capabilities=self._capabilities(),
            resources=[pb.GetMetadata.ResourceMetadata(type_name=t) for t in self.schema["resources"]],
            data_sources=[pb.GetMetadata.DataSourceMetadata(type_name=t) for t in self.schema["data_sources"]],
        )

    def GetProviderSchema(self, request, context):
        if self._schema_response is None:
            self._schema_response = pb.GetProviderSchema.Response(
                provider=schema_to_pb(self.schema["provider"]),
                provider_meta=pb.Schema(version=0, block=pb.Schema.Block()),
                resource_schemas={t: schema_to_pb(b) for t, b in self.schema["resources"].items()},
                data_source_schemas={t: schema_to_pb(b) for t, b in self.schema["data_sources"].items()},
                server_capabilities=self._capabilities(),
            )
        return self._schema_response

    def ValidateProviderConfig(self, request, context):
        return pb.ValidateProviderConfig.Response()

    def ConfigureProvider(self, request, context):
        config = _json_or_msgpack(request.config) or {}
        self.provider_config = {k: v for k, v in config.items() if isinstance(v, str)}
        return pb.ConfigureProvider.Response()

    def StopProvider(self, request, context):
        return pb.StopProvider.Response()

    def GetFunctions(self, request, context):
        return pb.GetFunctions.Response()

    def CallFunction(self, request, context):
        return pb.CallFunction.Response(error=pb.FunctionError(text=f"{OFFLINE_SUMMARY}: no provider functions"))

    # -- resources ----------------------------------------------------------

    def ValidateResourceConfig(self, request, context):
        block = self.schema["resources"].get(request.type_name)
        if block is None:
            return pb.ValidateResourceConfig.Response(diagnostics=self._unknown_type("resource", request.type_name))
        config = _json_or_msgpack(request.config)
        return pb.ValidateResourceConfig.Response(diagnostics=computed_only_set(block, config, []))

    def ValidateDataResourceConfig(self, request, context):
        block = self.schema["data_sources"].get(request.type_name)
        if block is None:
            return pb.ValidateDataResourceConfig.Response(
                diagnostics=self._unknown_type("data source", request.type_name)
            )
        config = _json_or_msgpack(request.config)
        return pb.ValidateDataResourceConfig.Response(diagnostics=computed_only_set(block, config, []))

    def UpgradeResourceState(self, request, context):
        if request.raw_state.flatmap:
            return pb.UpgradeResourceState.Response(diagnostics=_error("flatmap state is not supported"))
        return pb.UpgradeResourceState.Response(upgraded_state=pb.DynamicValue(json=request.raw_state.json))

    def ReadResource(self, request, context):
        return pb.ReadResource.Response(new_state=request.current_state, private=request.private)

    def PlanResourceChange(self, request, context):
        block = self.schema["resources"].get(request.type_name)
        if block is None:
            return pb.PlanResourceChange.Response(diagnostics=self._unknown_type("resource", request.type_name))
        proposed = _json_or_msgpack(request.proposed_new_state)
        prior = _json_or_msgpack(request.prior_state)
        planned = plan_object(block, proposed)
        requires: list[tuple] = []
        rules = self.replace.get(request.type_name)
        if rules and prior is not None and planned is not None and not is_unknown(planned):
            planned = keep_case_insensitive(planned, prior, rules["case_insensitive"])
            for dotted in rules["force_new"]:
                requires += replace_paths(block, dotted.split("."), prior, planned)
        return pb.PlanResourceChange.Response(
            planned_state=to_dynamic_value(planned) if planned is not None else pb.DynamicValue(msgpack=b"\xc0"),
            planned_private=request.prior_private,
            requires_replace=[pb.AttributePath(steps=[_step(s) for s in path]) for path in requires],
            legacy_type_system=self.legacy,
        )

    def ApplyResourceChange(self, request, context):
        return pb.ApplyResourceChange.Response(diagnostics=_offline("apply changes"))

    def ImportResourceState(self, request, context):
        return pb.ImportResourceState.Response(diagnostics=_offline("import resources"))

    def MoveResourceState(self, request, context):
        return pb.MoveResourceState.Response(diagnostics=_offline("move resource state"))

    # -- data sources -------------------------------------------------------

    def ReadDataSource(self, request, context):
        block = self.schema["data_sources"].get(request.type_name)
        if block is None:
            return pb.ReadDataSource.Response(diagnostics=self._unknown_type("data source", request.type_name))
        config = _json_or_msgpack(request.config)
        state = read_data_object(block, config, request.type_name, self.provider_config)
        return pb.ReadDataSource.Response(state=to_dynamic_value(state))


class _Name:
    """What ``tf.runner.run_provider`` asks of a provider object."""

    def __init__(self, source: str) -> None:
        self.source = source

    def full_name(self) -> str:
        return self.source


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or sys.argv)
    if "--schema" not in argv[1:-1]:
        sys.exit("usage: server.py --schema SCHEMA.json [go-plugin arguments]")
    at = argv.index("--schema")
    schema = json.loads(Path(argv[at + 1]).read_text())
    del argv[at : at + 2]
    # run_provider builds ``tf.provider.ProviderServicer(provider)``; serve ours instead.
    tf.provider.ProviderServicer = lambda _app: StandinServicer(schema)  # type: ignore[assignment]
    run_provider(_Name(schema.get("source", "")), argv)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
