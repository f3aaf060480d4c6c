"""One GoogleSQL instance per process: the WebAssembly module (compiled once, then cached), BigQuery's
language options, and BigQuery type names resolved into GoogleSQL types.

Everything from the `zetasql` package is imported inside functions, so importing this is free.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from embed.errors import EmbedError

__all__ = [
    "EXTRA",
    "FEATURES",
    "RESERVED_KEYWORDS",
    "STATEMENT_KINDS",
    "Runtime",
    "cache_dir",
    "load_module",
    "instance",
    "require",
    "reset",
    "type_name",
]

EXTRA = "check"
ZETASQL_VERSION = "0.1.5"  # the extra pins it; the module cache below relies on how it loads its module
_INSTALL = f"pip install 'embed-kit[{EXTRA}]' (in a checkout, `make venv` installs it)"

# BigQuery's dialect of GoogleSQL: external product mode (no INT32, UINT64, FLOAT32 or protos) and
# the language features BigQuery supports, after Google's own BigQuery options for this analyzer
# (zetasql-toolkit), plus RANGE and pipe syntax. A statement using a feature left out is refused.
FEATURES = tuple(
    """
    ADDITIONAL_STRING_FUNCTIONS ALLOW_DASHES_IN_TABLE_NAME ALLOW_MISSING_PATH_EXPRESSION_IN_ALTER_DDL
    ALLOW_REGEXP_EXTRACT_OPTIONALS ALTER_COLUMN_SET_DATA_TYPE ALTER_TABLE_RENAME_COLUMN ANALYTIC_FUNCTIONS
    ANNOTATION_FRAMEWORK ANONYMIZATION ARRAY_AGGREGATION_FUNCTIONS ARRAY_FIND_FUNCTIONS ARRAY_ZIP
    BARE_ARRAY_ACCESS BIGNUMERIC_TYPE CASE_STMT CBRT_FUNCTIONS CIVIL_TIME COLLATION_IN_EXPLICIT_CAST
    COLLATION_IN_WITH_RECURSIVE COLLATION_SUPPORT COLUMN_DEFAULT_VALUE CONCAT_MIXED_TYPES CORRESPONDING
    CORRESPONDING_FULL CREATE_EXTERNAL_TABLE_WITH_CONNECTION CREATE_EXTERNAL_TABLE_WITH_PARTITION_COLUMNS
    CREATE_EXTERNAL_TABLE_WITH_TABLE_ELEMENT_LIST CREATE_FUNCTION_LANGUAGE_WITH_CONNECTION
    CREATE_MATERIALIZED_VIEW_CLUSTER_BY CREATE_MATERIALIZED_VIEW_PARTITION_BY
    CREATE_MODEL_WITH_ALIASED_QUERY_LIST CREATE_SNAPSHOT_TABLE CREATE_TABLE_AS_SELECT_COLUMN_LIST
    CREATE_TABLE_CLONE CREATE_TABLE_CLUSTER_BY CREATE_TABLE_COPY CREATE_TABLE_FIELD_ANNOTATIONS
    CREATE_TABLE_FUNCTION CREATE_TABLE_LIKE CREATE_TABLE_NOT_NULL CREATE_TABLE_PARTITION_BY
    CREATE_VIEW_WITH_COLUMN_LIST DATE_ARITHMETICS DATE_TIME_CONSTRUCTORS DECIMAL_ALIAS DISABLE_FLOAT32
    DML_UPDATE_WITH_JOIN DOT_PRODUCT ENABLE_EDIT_DISTANCE_BYTES ENABLE_FLOAT_DISTANCE_FUNCTIONS ENCRYPTION
    ENFORCE_CONDITIONAL_EVALUATION EXTENDED_DATE_TIME_SIGNATURES EXTENDED_GEOGRAPHY_PARSERS
    FIRST_AND_LAST_N FOREIGN_KEYS FORMAT_IN_CAST FOR_IN GEOGRAPHY GROUPING_BUILTIN GROUPING_SETS
    GROUP_BY_ALL GROUP_BY_ROLLUP HAVING_IN_AGGREGATE INTERVAL_TYPE INVERSE_TRIG_FUNCTIONS IS_DISTINCT
    JSON_ARRAY_FUNCTIONS JSON_ARRAY_VALUE_EXTRACTION_FUNCTIONS JSON_MORE_VALUE_EXTRACTION_FUNCTIONS
    JSON_TYPE JSON_VALUE_EXTRACTION_FUNCTIONS L1_NORM L2_NORM LIKE_ANY_SOME_ALL LIKE_ANY_SOME_ALL_ARRAY
    LIKE_ANY_SOME_ALL_SUBQUERY LIMIT_IN_AGGREGATE LIMIT_OFFSET_EXPRESSIONS LITERAL_CONCATENATION
    LOAD_DATA_PARTITIONS LOAD_DATA_TEMP_TABLE MANHATTAN_DISTANCE MULTIWAY_UNNEST NAMED_ARGUMENTS
    NULLIFZERO_ZEROIFNULL NULLS_FIRST_LAST_IN_ORDER_BY NULL_HANDLING_MODIFIER_IN_AGGREGATE
    NULL_HANDLING_MODIFIER_IN_ANALYTIC NUMERIC_TYPE OMIT_INSERT_COLUMN_LIST ORDER_BY_IN_AGGREGATE
    PARAMETERIZED_TYPES PARAMETERS_IN_GRANTEE_LIST PIPES PIVOT PI_FUNCTIONS
    PRESERVE_ANNOTATION_IN_IMPLICIT_CAST_IN_SCAN QUALIFY RANGE_TYPE REMOTE_FUNCTION REMOTE_MODEL REPEAT
    ROUND_WITH_ROUNDING_MODE SAFE_FUNCTION_CALL SAFE_FUNCTION_CALL_WITH_LAMBDA_ARGS SCRIPT_LABEL
    SELECT_STAR_EXCEPT_REPLACE SEQUENCE_ARG SINGLETON_UNNEST_INFERS_ALIAS SINGLE_TABLE_NAME_ARRAY_PATH
    STRUCT_BRACED_CONSTRUCTORS STRUCT_POSITIONAL_ACCESSOR TABLESAMPLE TABLE_VALUED_FUNCTIONS
    TEMPLATE_FUNCTIONS TIMESTAMP_NANOS TIME_BUCKET_FUNCTIONS UNENFORCED_PRIMARY_KEYS
    UNNEST_AND_FLATTEN_ARRAYS UNPIVOT USE_OPERATION_COLLATION_FOR_NULLIF WEEK_WITH_WEEKDAY
    WITH_GROUP_ROWS WITH_ON_SUBQUERY WITH_RECURSIVE WITH_RECURSIVE_DEPTH_MODIFIER
    """.split()
)
# The statements BigQuery has; any other kind is refused ("Statement not supported").
STATEMENT_KINDS = tuple(
    """
    ADD_CONSTRAINT_ACTION ALTER_ENTITY_STMT ALTER_MATERIALIZED_VIEW_STMT ALTER_MODEL_STMT ALTER_SCHEMA_STMT
    ALTER_TABLE_STMT ALTER_VIEW_STMT ASSERT_STMT ASSIGNMENT_STMT AUX_LOAD_DATA_STMT BEGIN_STMT CALL_STMT
    COMMIT_STMT CREATE_ENTITY_STMT CREATE_EXTERNAL_TABLE_STMT CREATE_FUNCTION_STMT CREATE_INDEX_STMT
    CREATE_MATERIALIZED_VIEW_STMT CREATE_MODEL_STMT CREATE_PROCEDURE_STMT CREATE_ROW_ACCESS_POLICY_STMT
    CREATE_SCHEMA_STMT CREATE_SNAPSHOT_TABLE_STMT CREATE_TABLE_AS_SELECT_STMT CREATE_TABLE_FUNCTION_STMT
    CREATE_TABLE_STMT CREATE_VIEW_STMT DELETE_STMT DROP_CONSTRAINT_ACTION DROP_FUNCTION_STMT
    DROP_MATERIALIZED_VIEW_STMT DROP_ROW_ACCESS_POLICY_STMT DROP_SNAPSHOT_TABLE_STMT DROP_STMT
    DROP_TABLE_FUNCTION_STMT EXECUTE_IMMEDIATE_STMT EXPORT_DATA_STMT EXPORT_MODEL_STMT GRANT_STMT
    INSERT_STMT MERGE_STMT QUERY_STMT REVOKE_STMT ROLLBACK_STMT TRUNCATE_STMT UPDATE_STMT
    """.split()
)
RESERVED_KEYWORDS = ("QUALIFY",)

# A BigQuery type as parameters and schemas write it: INT64, ARRAY<STRUCT<uri STRING, n INT64>> ...
_TYPE_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9_<>, ]*")
# GoogleSQL's internal type names that BigQuery spells otherwise.
_BIGQUERY_TYPE_NAMES = {"DOUBLE": "FLOAT64", "FLOAT": "FLOAT32"}


def require() -> None:
    """Raise an EmbedError (exit 2) saying how to install the analyzer, unless the extra is installed."""
    try:
        import wasmtime  # noqa: F401
        import zetasql
    except ImportError:
        raise EmbedError(f"GoogleSQL analysis needs the `{EXTRA}` extra: {_INSTALL}.") from None
    if zetasql.__version__ != ZETASQL_VERSION:
        raise EmbedError(
            f"GoogleSQL analysis needs zetasql {ZETASQL_VERSION}, found {zetasql.__version__}: {_INSTALL}."
        )


def cache_dir() -> Path:
    """Where the compiled analyzer is kept: $XDG_CACHE_HOME/embed-kit, else ~/.cache/embed-kit."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "embed-kit"


def load_module(engine: Any, wasm: Path, cache: Path | None) -> Any:
    """``wasm`` compiled for ``engine``: loaded from ``cache`` when compiled there before, else compiled and saved.

    The file name carries the module's hash and the wasmtime version, so an upgrade compiles
    again; a file wasmtime cannot load is replaced. The two builds used last are kept (two
    environments on one machine do not evict each other). Only the user's own cache is loaded.
    """
    import wasmtime

    if cache is None:
        return wasmtime.Module.from_file(engine, str(wasm))
    digest = hashlib.sha256(wasm.read_bytes()).hexdigest()[:16]
    path = cache / f"{wasm.stem}-{digest}-wasmtime-{metadata.version('wasmtime')}.cwasm"
    if path.is_file():
        try:
            module = wasmtime.Module.deserialize_file(engine, str(path))
        except (wasmtime.WasmtimeError, OSError):
            pass  # built for another engine configuration, or damaged: compile again
        else:
            with contextlib.suppress(OSError):
                os.utime(path)  # marks it used, for _save's eviction
            return module
    print(f"Compiling the GoogleSQL analyzer once (about 20 s); kept in {cache}.", file=sys.stderr)
    module = wasmtime.Module.from_file(engine, str(wasm))
    _save(path, module.serialize(), builds=f"{wasm.stem}-*.cwasm")
    return module


def _save(path: Path, data: bytes, builds: str) -> None:
    """Write ``data`` to ``path`` atomically, then keep only the two builds (``builds``, a glob) used last.

    Only warns when the cache cannot be written: the analyzer then compiles in each process.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
            tmp.write(data)
        os.replace(tmp.name, path)
        others = sorted((p for p in path.parent.glob(builds) if p != path), key=lambda p: p.stat().st_mtime)
        for old in others[:-1]:
            old.unlink(missing_ok=True)
    except OSError as exc:
        print(
            f"warning: cannot keep the compiled analyzer in {path.parent} ({exc}); it compiles each time.",
            file=sys.stderr,
        )


class Runtime:
    """The process's GoogleSQL: the module's instance, BigQuery's options, resolved types, registered catalogs."""

    def __init__(self) -> None:
        import wasmtime
        from zetasql.core import wasm_client
        from zetasql.core.exceptions import ServerError, StatusCode
        from zetasql.core.local_service import ZetaSqlLocalService

        self.ServerError = ServerError
        self.INTERNAL = StatusCode.INTERNAL
        # A trap inside the module (a failed internal check) leaves its instance in an undefined state.
        self.Crashed = (wasmtime.Trap, wasmtime.WasmtimeError)

        class CachedModule:
            """Stands in for wasmtime.Module while the package loads its module, so the cache is used."""

            @staticmethod
            def from_file(engine: Any, path: str) -> Any:
                return load_module(engine, Path(path), cache_dir())

        compile_module, wasm_client.Module = wasm_client.Module, CachedModule
        try:
            self.service = ZetaSqlLocalService()
        finally:
            wasm_client.Module = compile_module
        self.language = _language_options()
        self._types: dict[str, Any] = {}
        self._catalogs: dict[tuple[Any, ...], int] = {}

    def types(self, names: Iterable[str]) -> dict[str, Any]:
        """GoogleSQL types of BigQuery type names, resolved by the analyzer itself (one call for all new ones)."""
        import zetasql.types as zt

        names = list(names)
        new = sorted({n for n in names if n not in self._types})
        for name in new:
            if not _TYPE_TEXT.fullmatch(name):
                raise ValueError(f"not a BigQuery type: {name!r}")
        if new:
            query = "SELECT " + ", ".join(f"CAST(NULL AS {n}) AS c{i}" for i, n in enumerate(new))
            catalog = zt.SimpleCatalog(name="types", builtin_function_options=self._builtins())
            try:
                resolved = self.service.analyze(sql_statement=query, options=self.options({}), simple_catalog=catalog)
            except self.ServerError as exc:
                raise ValueError(f"not a BigQuery type among {new}: {exc.message}") from None
            for name, column in zip(new, resolved.resolved_statement.output_column_list):
                self._types[name] = column.column.type
        return {n: self._types[n] for n in names}

    def options(self, params: Mapping[str, Any]) -> Any:
        """Analyzer options: BigQuery's language, named parameters of GoogleSQL types, errors with a caret."""
        import zetasql.types as zt

        return zt.AnalyzerOptions(
            language_options=self.language,
            parameter_mode=zt.ParameterMode.PARAMETER_NAMED,
            query_parameters=[zt.AnalyzerOptions.QueryParameter(name=n, type=t) for n, t in params.items()],
            error_message_mode=zt.ErrorMessageMode.ERROR_MESSAGE_MULTI_LINE_WITH_CARET,
        )

    def catalog(self, key: tuple[Any, ...], build: Callable[[Runtime], Any]) -> int:
        """The id of the catalog registered under ``key``, built and registered on first use."""
        if key not in self._catalogs:
            catalog = build(self)
            catalog.builtin_function_options = self._builtins()
            self._catalogs[key] = self.service.register_catalog(simple_catalog=catalog).registered_id
        return self._catalogs[key]

    def analyze(self, sql: str, options: Any, catalog: int) -> Any:
        """The resolved tree of ``sql`` over a registered catalog, as a protobuf message; ServerError if refused.

        The tree stays a protobuf message: the package's own models would cost several times the analysis.
        """
        import zetasql.types as zt
        from zetasql.wasi._pb2.zetasql.local_service import local_service_pb2

        request = zt.AnalyzeRequest(sql_statement=sql, options=options, registered_catalog_id=catalog)
        response = self.service.wasm_client.call_grpc_func(
            "ZetaSqlLocalService_Analyze", request.to_proto(), local_service_pb2.AnalyzeResponse
        )
        return response.resolved_statement

    def message(self, error: Any) -> str:
        """The analyzer's whole message: the reason, then the statement's line with a caret under the column."""
        return re.sub(r"^Code: \d+, Message: ", "", error.raw_error or "", count=1) or error.message

    def _builtins(self) -> Any:
        """GoogleSQL's built-in functions, limited to BigQuery's language features."""
        import zetasql.types as zt

        return zt.ZetaSQLBuiltinFunctionOptions(language_options=self.language)


_RUNTIME: Runtime | None = None


def instance() -> Runtime:
    """The process's GoogleSQL, started on first use (a fraction of a second once the module is cached)."""
    global _RUNTIME
    if _RUNTIME is None:
        require()
        _RUNTIME = Runtime()
        atexit.register(_release)
    return _RUNTIME


def reset() -> None:
    """Forget the process's GoogleSQL; the next use starts another instance."""
    global _RUNTIME
    _RUNTIME = None


def _release() -> None:
    """Free the instance at exit while wasmtime can still free it (later, its own functions are gone)."""
    import gc

    reset()
    gc.collect()


def _language_options() -> Any:
    """BigQuery's language options: external product mode, BigQuery's features, statements and keywords."""
    import zetasql.types as zt

    return zt.LanguageOptions(
        name_resolution_mode=zt.NameResolutionMode.NAME_RESOLUTION_DEFAULT,
        product_mode=zt.ProductMode.PRODUCT_EXTERNAL,
        enabled_language_features=[zt.LanguageFeature[f"FEATURE_{name}"] for name in FEATURES],
        supported_statement_kinds=[zt.ResolvedNodeKind[f"RESOLVED_{kind}"] for kind in STATEMENT_KINDS],
        reserved_keywords=list(RESERVED_KEYWORDS),
    )


def type_name(type_: Any) -> str:
    """A GoogleSQL type as BigQuery writes it: ``ARRAY<STRUCT<name STRING, value STRING>>``."""
    import zetasql.types as zt

    kind = zt.TypeKind(type_.type_kind).name.removeprefix("TYPE_")
    if kind == "ARRAY":
        return f"ARRAY<{type_name(type_.array_type.element_type)}>"
    if kind == "STRUCT":
        fields = ", ".join(f"{f.field_name} {type_name(f.field_type)}" for f in type_.struct_type.field)
        return f"STRUCT<{fields}>"
    return _BIGQUERY_TYPE_NAMES.get(kind, kind)
