"""Run settings: the Terraform output ``embed`` turned into typed, validated values.

Each field is taken from the first of these sources that has it:

1. explicit overrides (command-line flags such as ``--project-id`` or ``--batch-size``);
2. environment variables ``EMBED_<FIELD>``, e.g. ``EMBED_PROJECT_ID`` or ``EMBED_BATCH_SIZE``;
3. the ``embed`` output: from ``--outputs FILE`` (JSON as ``terraform output -json`` writes it,
   or the bare object ``terraform output -json embed`` writes) when given, otherwise from
   ``terraform output -json`` run in ``terraform/`` (or ``--tf-dir``);
4. built-in defaults (``endpoint`` and the run-tuning fields only).

Terraform is not run when flags and environment variables already supply every output field.
Anything missing, mistyped or invalid raises :class:`EmbedError` before any query runs.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from embed import identifiers as ids
from embed.errors import EmbedError
from embed.outputs import DEFAULT_TF_DIR, OUTPUT_FIELDS, read_outputs_file, read_terraform_outputs, terraform_binary

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_TF_DIR",
    "ENV_PREFIX",
    "LOCAL_OUTPUTS",
    "MAX_BATCH_SIZE",
    "OUTPUT_FIELDS",
    "Settings",
    "load_settings",
]

ENV_PREFIX = "EMBED_"
DEFAULT_ENDPOINT = "multimodalembedding@001"
# ML.GENERATE_EMBEDDING processes about 216,000 rows per job (43,200 in some European regions).
MAX_BATCH_SIZE = 216_000
OUTPUT_DIMENSIONS = (128, 256, 512, 1408)
_OUTPUT_DEFAULTS: dict[str, str] = {"endpoint": DEFAULT_ENDPOINT}
# What the embedded engine (--engine local) uses in place of the `embed` output: no Terraform.
LOCAL_OUTPUTS: dict[str, str] = {
    "project_id": "local",
    "location": "US",
    "dataset_id": "embed",
    "connection": "local.us.local",
    "connection_service_account": "embedded@local.invalid",
    "object_table": "local.embed.images",
    "model": "local.embed.embedding_model",
    "results_table": "local.embed.image_embeddings",
    "endpoint": "local/efficientnet-lite0-int8",
}


@dataclass(frozen=True)
class Settings:
    """Everything a run needs: where things are, and how to run."""

    project_id: str
    location: str
    dataset_id: str
    connection: ids.ConnectionRef
    connection_service_account: str
    object_table: ids.TableRef
    model: ids.ModelRef
    results_table: ids.TableRef
    endpoint: str = DEFAULT_ENDPOINT
    batch_size: int | None = None  # None: sized per run from the cost of a batch (see pipeline.auto_batch_size)
    max_retries: int = 3
    flatten_json_output: bool = True
    output_dimensionality: int | None = None
    start_second: float | None = None
    end_second: float | None = None
    interval_seconds: float | None = None

    def __post_init__(self) -> None:
        _check_consistency(self)
        _check_tuning(self)

    @property
    def is_video(self) -> bool:
        """True when any video option is set: objects are embedded as video segments."""
        return any(v is not None for v in (self.start_second, self.end_second, self.interval_seconds))


_TUNING_FIELDS = tuple(f.name for f in fields(Settings) if f.name not in OUTPUT_FIELDS)


def _check_consistency(s: Settings) -> None:
    """Refuse a model, tables or connection that are not where the settings say."""
    home = f"{s.project_id}.{s.dataset_id}"
    for name, ref in (("object_table", s.object_table), ("model", s.model), ("results_table", s.results_table)):
        if f"{ref.project}.{ref.dataset}" != home:
            raise EmbedError(
                f"{name} {str(ref)!r} is not in dataset {home!r} (location {s.location}): the kit keeps the"
                " object table, model and results together so they share one location, as"
                " ML.GENERATE_EMBEDDING requires. Fix the `embed` output or the override."
            )
    if str(s.results_table) == str(s.object_table):
        raise EmbedError(
            f"results_table {str(s.results_table)!r} is the object table: the embeddings need a table of their own"
            " (the object table lists the images and is rebuilt from them). Give results_table another name."
        )
    if s.connection.location.lower() != s.location.lower():
        raise EmbedError(
            f"connection {str(s.connection)!r} is in location {s.connection.location!r} but the dataset is in"
            f" {s.location!r}: the remote model, connection and tables must share one location."
            " Create the connection in the dataset's location (or fix `location`)."
        )


def _check_tuning(s: Settings) -> None:
    """Refuse run-tuning values BigQuery would reject."""
    if s.batch_size is not None and not 1 <= s.batch_size <= MAX_BATCH_SIZE:
        raise EmbedError(
            f"batch_size must be between 1 and {MAX_BATCH_SIZE:,} rows (the per-job quota), got {s.batch_size}."
        )
    if not 0 <= s.max_retries <= 100:
        raise EmbedError(f"max_retries must be between 0 and 100, got {s.max_retries}.")
    if s.output_dimensionality is not None:
        if s.output_dimensionality not in OUTPUT_DIMENSIONS:
            raise EmbedError(
                f"output_dimensionality must be one of 128, 256, 512 or 1408, got {s.output_dimensionality}."
            )
        if s.is_video:
            raise EmbedError(
                "output_dimensionality applies to images and text only; BigQuery refuses it for video."
                " Unset it, or unset start_second/end_second/interval_seconds."
            )
    for name in ("start_second", "end_second", "interval_seconds"):
        value = getattr(s, name)
        if value is not None and not math.isfinite(value):
            raise EmbedError(f"{name} must be a finite number of seconds, got {value}.")
    start = 0.0 if s.start_second is None else s.start_second
    end = 120.0 if s.end_second is None else s.end_second
    if start < 0:
        raise EmbedError(f"start_second must be 0 or more, got {start}.")
    if end > 120:
        raise EmbedError(f"end_second must be at most 120 (only a video's first 2 minutes are used), got {end}.")
    if start >= end:
        raise EmbedError(f"start_second ({start}) must be less than end_second ({end}).")
    if s.interval_seconds is not None and not 4 <= s.interval_seconds < 120:
        raise EmbedError(f"interval_seconds must be at least 4 and less than 120, got {s.interval_seconds}.")


def _env_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the ``EMBED_<FIELD>`` variables that name a settings field, keyed by field."""
    names = OUTPUT_FIELDS + _TUNING_FIELDS
    return {name: environ[ENV_PREFIX + name.upper()] for name in names if ENV_PREFIX + name.upper() in environ}


def _as_int(name: str, value: object, optional: bool = False) -> int | None:
    """Coerce ``value`` (an int or its text) to int, naming ``name`` on failure."""
    if optional and (value is None or (isinstance(value, str) and value.strip().lower() in ("", "none"))):
        return None
    if isinstance(value, bool):
        raise EmbedError(f"{name} must be a whole number, got {value!r}.")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise EmbedError(f"{name} must be a whole number, got {value!r}.")


def _as_float(name: str, value: object) -> float | None:
    """Coerce ``value`` (a number or its text, or empty) to float or None."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise EmbedError(f"{name} must be a number of seconds, got {value!r}.")


def _as_bool(name: str, value: object) -> bool:
    """Coerce ``value`` (a bool or true/false/1/0/yes/no) to bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return value.strip().lower() in ("true", "1", "yes", "on")
    raise EmbedError(f"{name} must be true or false, got {value!r}.")


def _tuning(raw: Mapping[str, object], label: Mapping[str, str]) -> dict[str, Any]:
    """Typed run-tuning values from the raw merged sources; a bad value is named by ``label`` (its flag or variable)."""
    out: dict[str, Any] = {}
    if "batch_size" in raw:
        out["batch_size"] = _as_int(label["batch_size"], raw["batch_size"], optional=True)
    if "max_retries" in raw:
        out["max_retries"] = _as_int(label["max_retries"], raw["max_retries"])
    if "flatten_json_output" in raw:
        out["flatten_json_output"] = _as_bool(label["flatten_json_output"], raw["flatten_json_output"])
    if "output_dimensionality" in raw:
        out["output_dimensionality"] = _as_int(
            label["output_dimensionality"], raw["output_dimensionality"], optional=True
        )
    for name in ("start_second", "end_second", "interval_seconds"):
        if name in raw:
            out[name] = _as_float(label[name], raw[name])
    return out


def _naming_the_source(error: EmbedError, sources: Mapping[str, str]) -> EmbedError:
    """``error`` about tuning fields, saying which flag or variable set each field it names (``EMBED_BATCH_SIZE``)."""
    words = set(re.findall(r"\w+", str(error)))
    named = [source for field, source in sources.items() if field in words]
    if not named:
        return error
    return EmbedError(f"{str(error).rstrip('.')} (set by {' and '.join(named)}).", error.exit_code)


def _source_of(name: str, overrides: Mapping[str, object], env: Mapping[str, str], origin: str) -> str:
    """Say where the value of ``name`` came from, for error messages."""
    if name in overrides:
        return f"--{name.replace('_', '-')}"
    if name in env:
        return ENV_PREFIX + name.upper()
    return f"`embed` output field {name} ({origin})"


def load_settings(
    overrides: Mapping[str, object] | None = None,
    *,
    outputs_file: Path | None = None,
    tf_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    terraform_bin: str | None = None,
    local: bool = False,
) -> Settings:
    """Merge overrides, environment and Terraform outputs (in that precedence) into validated Settings.

    With ``local``, :data:`LOCAL_OUTPUTS` (the embedded engine's names) stand in for the outputs.
    ``terraform_bin`` defaults to ``TERRAFORM`` in ``environ`` (e.g. ``tofu``), else ``terraform``.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(OUTPUT_FIELDS + _TUNING_FIELDS))
    if unknown:
        raise EmbedError(f"unknown setting(s): {', '.join(unknown)}.")
    environ = os.environ if environ is None else environ
    env = _env_values(environ)
    required = set(OUTPUT_FIELDS) - set(_OUTPUT_DEFAULTS)
    if local:
        output, origin = dict(LOCAL_OUTPUTS), "the embedded engine's defaults"
    elif outputs_file is not None:
        output, origin = read_outputs_file(outputs_file), f"outputs file {str(outputs_file)!r}"
    elif not required <= set(overrides) | set(env):
        directory = DEFAULT_TF_DIR if tf_dir is None else tf_dir
        binary = terraform_bin or terraform_binary(environ)
        output, origin = read_terraform_outputs(directory, binary), f"terraform output in {str(directory)!r}"
    else:
        output, origin = {}, "flags and environment"
    raw: dict[str, object] = {**_OUTPUT_DEFAULTS, **{k: v for k, v in output.items() if k in OUTPUT_FIELDS}}
    raw.update(env)
    raw.update(overrides)
    missing = [name for name in OUTPUT_FIELDS if name not in raw]
    if missing:
        flags = ", ".join(f"{ENV_PREFIX}{m.upper()}" for m in missing)
        raise EmbedError(
            f"the `embed` output ({origin}) has no field(s) {', '.join(missing)}: update the stack and run"
            f" `make apply` so the output matches the kit, or set {flags}."
        )
    where = {name: _source_of(name, overrides, env, origin) for name in OUTPUT_FIELDS + _TUNING_FIELDS}
    tuning = _tuning(raw, where)
    given = {name: where[name] for name in _TUNING_FIELDS if name in overrides or name in env}
    try:
        return _settings(raw, where, tuning)
    except EmbedError as exc:
        raise _naming_the_source(exc, given) from None


def _settings(raw: Mapping[str, Any], where: Mapping[str, str], tuning: dict[str, Any]) -> Settings:
    """Settings from the merged raw values, each identifier checked and named by where it came from."""
    return Settings(
        project_id=ids.check_project_id(raw["project_id"], where["project_id"]),
        location=ids.check_location(raw["location"], where["location"]),
        dataset_id=ids.check_dataset_id(raw["dataset_id"], where["dataset_id"]),
        connection=ids.parse_connection(raw["connection"], where["connection"]),
        connection_service_account=ids.check_service_account(
            raw["connection_service_account"], where["connection_service_account"]
        ),
        object_table=ids.parse_table(raw["object_table"], where["object_table"]),
        model=ids.parse_model(raw["model"], where["model"]),
        results_table=ids.parse_table(raw["results_table"], where["results_table"]),
        endpoint=ids.check_endpoint(raw["endpoint"], where["endpoint"]),
        **tuning,
    )
