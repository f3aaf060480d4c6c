"""The embedded engine: runs the kit's BigQuery SQL on a DuckDB file, with a local image model.

A statement is parsed with sqlglot's BigQuery dialect and run as follows:

- ``CREATE [OR REPLACE] MODEL [IF NOT EXISTS] … REMOTE WITH CONNECTION … OPTIONS (ENDPOINT = …)``
  registers the model in the engine's catalog (sqlglot cannot transpile it);
- each ``ML.GENERATE_EMBEDDING(MODEL m, TABLE t | (query), STRUCT(…))`` and
  ``VECTOR_SEARCH(…)`` call is evaluated in Python (its sub-queries on DuckDB), and the call
  is replaced by the name of the Arrow relation holding its result, with BigQuery's columns;
- the rest (MERGE, joins, CREATE TABLE …) is transpiled to DuckDB and runs there.

``project.dataset.table`` is DuckDB table ``"project__dataset"."table"``. An object table is a
set of local folders, re-scanned at the start of each statement that reads it.
"""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embed.engines.base import Column, QueryParameter, QueryResult, Statement, StatementError, parse_type
from embed.engines.local.billing import Billing, Layout
from embed.engines.local.catalog import Catalog, run, schema_name
from embed.engines.local.functions import (
    EmbeddingStats,
    generate_embedding,
    generate_options,
    literal_value,
    vector_search_sql,
)
from embed.engines.local.objects import ObjectFile, canonical_roots, display_path, scan, to_arrow
from embed.engines.local.rules import (
    MERGE_ERROR,
    RESPONSE_LIMIT,
    ROWS_PER_JOB,
    check_object_table_query,
    check_parameter_use,
    check_parameters,
    duckdb_type,
    merge_duplicates_sql,
)
from embed.errors import EmbedError
from embed.identifiers import ModelRef, TableRef

if TYPE_CHECKING:
    import duckdb
    import pyarrow
    from sqlglot import exp

__all__ = ["DEFAULT_DB", "LocalEngine", "database_error"]

DEFAULT_DB = Path("embed-local.duckdb")
_DML = ("Merge", "Insert", "Update", "Delete")
_INT_TYPES = {"tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger", "ubigint"}
_SCALARS = {
    "varchar": "STRING",
    "double": "FLOAT64",
    "float": "FLOAT64",
    "boolean": "BOOL",
    "timestamp with time zone": "TIMESTAMP",
    "timestamp": "DATETIME",
    "date": "DATE",
    "time": "TIME",
    "blob": "BYTES",
    "decimal": "NUMERIC",
    "interval": "INTERVAL",
}


def _bigquery_column(name: str, kind: Any, nullable: bool = True) -> Column:
    """A Column in BigQuery terms from a DuckDB type."""
    type_id = str(kind.id)
    if type_id == "list":
        child = _bigquery_column(name, kind.child)
        return Column(name, child.type, "REPEATED", child.fields)
    if type_id == "struct":
        return Column(
            name,
            "RECORD",
            "NULLABLE" if nullable else "REQUIRED",
            tuple(_bigquery_column(n, t) for n, t in kind.children),
        )
    if str(kind) == "JSON":
        bq = "JSON"
    elif type_id in _INT_TYPES:
        bq = "INT64"
    else:
        bq = _SCALARS.get(type_id, type_id.upper())
    return Column(name, bq, "NULLABLE" if nullable else "REQUIRED")


def _bigquery_integers(rows: pyarrow.Table) -> pyarrow.Table:
    """``rows`` with DuckDB's HUGEINT sums (Arrow decimals of scale 0) as INT64, the type BigQuery returns."""
    import pyarrow as pa

    for index, field in enumerate(rows.schema):
        if pa.types.is_decimal(field.type) and field.type.scale == 0:
            rows = rows.set_column(index, field.name, rows.column(index).cast(pa.int64()))
    return rows


def _dotted(table: exp.Table, default_project: str) -> str:
    """``project.dataset.name`` of a table reference (the project defaults when only two parts are given)."""
    parts = [p for p in (table.catalog, table.db, table.name) if p]
    if len(parts) == 2:
        parts.insert(0, default_project)
    return ".".join(parts)


# How DuckDB words the failures of the file itself, which no statement can fix.
_DAMAGED = ("not a valid DuckDB database file", "Corrupt database file", "Could not read enough bytes")
_NO_SPACE = ("No space left on device", "Disk quota exceeded")
_LOCKED = ("Could not set lock on file", "Conflicting lock")


def database_error(db_path: Path, exc: BaseException) -> EmbedError | None:
    """The EmbedError for a DuckDB (or OS) error about the database file itself, or None for any other error.

    A damaged file, a full disk or another process's lock is for the user to fix; a statement's
    own failure is not (it stays a StatementError).
    """
    said = " ".join(str(exc).split())
    where = repr(str(db_path))
    if any(text in said for text in _NO_SPACE):
        return EmbedError(
            f"no space left for the embedded database {where} ({said}): free some space on its disk, or pass"
            " --db FILE on another disk, then run again; the rows already stored are kept."
        )
    if any(text in said for text in _DAMAGED):
        return EmbedError(
            f"the embedded database {where} is damaged ({said}): restore it from a copy, or move it aside"
            f" (`mv {shlex.quote(str(db_path))} {shlex.quote(f'{db_path}.damaged')}`) and run again, which embeds"
            " every image anew."
        )
    if any(text in said for text in _LOCKED):
        return EmbedError(
            f"the embedded database {where} is in use by another process ({said}): wait for that command to"
            " finish, or pass another --db."
        )
    return None


def _connect(db_path: Path) -> duckdb.DuckDBPyConnection:
    """Open (or create) the DuckDB file ``db_path``; a file that cannot be opened is an EmbedError."""
    import duckdb

    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(db_path))
    except (duckdb.Error, OSError) as exc:
        raise database_error(db_path, exc) or EmbedError(
            f"cannot open the embedded database {str(db_path)!r}: {exc}"
        ) from None


class LocalEngine:
    """Runs the kit's statements on a DuckDB file; implements :class:`~embed.engines.base.Engine`."""

    billing = "estimated by BigQuery's documented on-demand rules (the embedded engine bills nothing)"
    retry_delay = 1.0  # seconds: its model calls cost nothing and its faults are injected

    def __init__(
        self,
        db_path: Path = DEFAULT_DB,
        images: Sequence[Path] = (),
        *,
        object_table: TableRef | None = None,
        default_project: str = "local",
        load_model: Callable[[str], Any] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        """Open (or create) ``db_path``; register ``images`` as ``object_table`` when given.

        ``warn`` receives, once each, the listing's warnings: files and folders met but not listed,
        with the reason (see :mod:`.objects`).
        """
        missing = [display_path(p) for p in images if not Path(p).exists()]
        if missing:
            raise EmbedError(f"image folder(s) not found: {', '.join(missing)}. Pass existing folders to --images.")
        self.db_path = Path(db_path)
        self.con: duckdb.DuckDBPyConnection = _connect(self.db_path)
        self.default_project = default_project
        self._warn = warn
        self.warnings: list[str] = []  # every listing warning so far, in order, each once
        self._warned: set[str] = set()
        with self._database_errors():
            self.catalog = Catalog(self.con)
            if images:
                if object_table is None:
                    raise EmbedError("an object table name is needed to register image folders")
                self._check_not_a_table(str(object_table))
                roots, notes = canonical_roots(images)
                self.catalog.put_object_table(str(object_table), roots)
                for note in notes:
                    self._warning(note)
        self._load_model = load_model
        self._known_tables: set[tuple[str, str]] | None = None
        self.rows_per_job = ROWS_PER_JOB
        self.response_limit = RESPONSE_LIMIT
        self.pricing = Billing(self.con, self._stored_table, self._quoted, self.catalog.layout, self._duck)
        self._names = itertools.count(1)
        # Object-table refreshes: file hashes (read from the catalog once) and each table's last listing.
        self._known_files: dict[str, ObjectFile] | None = None
        self._listings: dict[str, list[ObjectFile]] = {}
        self.stats = EmbeddingStats()

    def _check_not_a_table(self, name: str) -> None:
        """Refuse to make ``name`` an object table when it is a table of another kind (it would be rebuilt)."""
        if name in self.catalog.object_tables():
            return
        schema, table = self._duck_name(name)
        found = run(
            self.con,
            "SELECT 1 FROM information_schema.tables"
            " WHERE lower(table_schema) = lower(?) AND lower(table_name) = lower(?)",
            [schema, table],
        )
        if found:
            raise EmbedError(
                f"{name} already exists in {str(self.db_path)!r} and is not an object table: the image folders"
                " would replace its rows. Pass another --object-table, or another --db."
            )

    def close(self) -> None:
        """Close the database."""
        self.con.close()

    @contextmanager
    def _database_errors(self) -> Iterator[None]:
        """Turn DuckDB's damaged-file and disk-full errors into an EmbedError that says what to do."""
        import duckdb

        try:
            yield
        except duckdb.Error as exc:
            error = database_error(self.db_path, exc)
            if error is None:
                raise
            raise error from None

    # --- names ---------------------------------------------------------------------------

    def _duck_name(self, dotted: str) -> tuple[str, str]:
        """(DuckDB schema, table) of ``project.dataset.table``."""
        project, dataset, table = dotted.rsplit(".", 2)
        return schema_name(project, dataset), table

    def _stored_table(self, table: exp.Table) -> str | None:
        """``project.dataset.table`` of a table node when DuckDB holds such a table, else None."""
        if not table.db:
            return None
        name = _dotted(table, self.default_project)
        schema, short = self._duck_name(name)
        if (schema, short) not in self._tables():
            return None
        return name

    def _tables(self) -> set[tuple[str, str]]:
        """(schema, table) of every table in the database (read once per statement)."""
        if self._known_tables is None:
            rows = run(self.con, "SELECT table_schema, table_name FROM information_schema.tables")
            self._known_tables = {(s, t) for s, t in rows}
        return self._known_tables

    def _quoted(self, dotted: str) -> str:
        """The quoted DuckDB relation of ``project.dataset.table``."""
        schema, table = self._duck_name(dotted)
        return f'"{schema}"."{table}"'

    def _rename(self, tree: exp.Expression) -> exp.Expression:
        """A copy of ``tree`` with every ``project.dataset.table`` pointing at its DuckDB schema."""
        from sqlglot import exp

        tree = tree.copy()
        for table in list(tree.find_all(exp.Table)):
            if not isinstance(table.this, exp.Identifier) or not table.db:
                continue
            schema, name = self._duck_name(_dotted(table, self.default_project))
            table.set("catalog", None)
            table.set("db", exp.to_identifier(schema, quoted=True))
            table.set("this", exp.to_identifier(name, quoted=True))
        return tree

    # --- statements ----------------------------------------------------------------------

    def _parse(self, text: str) -> exp.Expression:
        """The one BigQuery statement in ``text``."""
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import ParseError

        try:
            trees = [t for t in sqlglot.parse(text, read="bigquery") if t is not None]
        except ParseError as exc:
            raise StatementError(f"Syntax error: {exc}") from None
        if len(trees) != 1:
            raise StatementError(f"expected one statement, got {len(trees)}")
        if list(trees[0].find_all(exp.Command)):
            raise StatementError(f"the embedded engine does not understand: {text.strip()[:200]}")
        return trees[0]

    @contextmanager
    def _statement(self) -> Iterator[list[str]]:
        """Turn DuckDB errors into StatementError; drop the relations registered for the statement."""
        import duckdb

        registered: list[str] = []
        try:
            yield registered
        except duckdb.Error as exc:
            raise database_error(self.db_path, exc) or StatementError(str(exc).strip()) from None
        finally:
            for name in registered:
                try:
                    self.con.unregister(name)
                except duckdb.Error:
                    pass

    def _register(self, relation: Any, registered: list[str]) -> str:
        """Register an Arrow table (or DuckDB relation) for this statement; return its name."""
        name = f"__embed_relation_{next(self._names)}"
        self.con.register(name, relation)
        registered.append(name)
        return name

    def _prepare(
        self, tree: exp.Expression, registered: list[str], dry_run: bool, params: dict[str, QueryParameter]
    ) -> exp.Expression:
        """Evaluate the table functions of ``tree``, deepest first; return the tree to transpile."""
        from sqlglot import exp

        tree = tree.copy()
        calls = [n for n in tree.find_all(exp.GenerateEmbedding, exp.VectorSearch)]
        for call in reversed(calls):  # deepest first
            if isinstance(call, exp.GenerateEmbedding):
                result = self._generate(call, registered, dry_run, params)
            else:
                result = self._vector_search(call, registered, params)
            relation = exp.to_table(self._register(result, registered))
            holder = call.parent
            if isinstance(holder, exp.Table) and holder.this is call:
                if holder.args.get("alias") is not None:
                    relation.set("alias", holder.args["alias"])
                holder.replace(relation)
            else:
                call.replace(exp.select("*").from_(relation).subquery())
        return tree

    def execute(self, statement: Statement, *, dry_run: bool = False) -> QueryResult:
        """Run one statement (or only check and price it, with ``dry_run``: nothing runs, the model is not called).

        Every statement is first held to BigQuery's rules (:mod:`.rules`) and priced by its on-demand
        billing rules (:mod:`.billing`), on the tables as they are before it runs.
        """
        from sqlglot import exp

        tree = self._parse(statement.sql)
        self._known_tables = None
        params = check_parameters(tree, statement.params)
        if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "MODEL":
            return self._create_model(tree, dry_run)
        with self._statement() as registered:
            self._refresh_objects(tree)
            check_parameter_use(tree, statement.params, self._column_type)
            estimate = self.pricing.estimate(tree, params)
            created = self._created_table(tree)
            sent_before = self.stats.rows
            prepared = self._prepare(tree, registered, dry_run, params)
            if isinstance(tree, exp.Merge):
                self._check_merge(prepared, params)
            if isinstance(tree, exp.Create):
                self._create_schemas(tree)
            text, args = self._duck(prepared, params)
            result = dict(
                bytes_billed=estimate.bytes_billed,
                bytes_processed=sum(estimate.scanned.values()),
                model_rows=self.stats.rows - sent_before,
            )
            if dry_run:
                self.con.execute("EXPLAIN " + text, args).fetchall()
                return QueryResult(**result)
            if isinstance(tree, exp.Query):
                rows = _bigquery_integers(self.con.sql(text, params=args).to_arrow_table())
                if rows.nbytes > self.response_limit:
                    raise StatementError(
                        "Response too large to return. Consider specifying a destination table in your job"
                        f" configuration ({rows.nbytes:,} bytes; the limit is {self.response_limit:,})."
                    )
                return QueryResult(rows=rows, **result)
            changed = self.con.execute(text, args).fetchall()
            if created is not None:
                self._record_layout(tree, created)
            affected = int(changed[0][0]) if type(tree).__name__ in _DML and changed else None
            return QueryResult(affected_rows=affected, **result)

    def running_jobs(self, table: TableRef) -> tuple[str, ...]:
        """None: a second process cannot open the database while a run holds it (DuckDB's file lock)."""
        return ()

    def schema(self, table: TableRef) -> tuple[Column, ...] | None:
        """The schema of ``table`` in BigQuery type names, or None when it does not exist."""
        with self._database_errors():
            return self._schema(table)

    def _schema(self, table: TableRef) -> tuple[Column, ...] | None:
        """:meth:`schema`, without the translation of DuckDB's file errors."""
        schema, name = self._duck_name(str(table))
        self._refresh_named(str(table))
        nullable = dict(
            run(
                self.con,
                "SELECT column_name, is_nullable = 'YES' FROM information_schema.columns"
                " WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [schema, name],
            )
        )
        if not nullable:
            return None
        described = self.con.sql(f'SELECT * FROM "{schema}"."{name}" LIMIT 0').description
        return tuple(_bigquery_column(d[0], d[1], nullable.get(d[0], True)) for d in described)

    def model_endpoint(self, model: ModelRef) -> str | None:
        """The endpoint of model ``model``, or None when it does not exist."""
        with self._database_errors():
            return self.catalog.model_endpoint(str(model))

    # --- DuckDB text -----------------------------------------------------------------------

    def _duck(self, node: exp.Expression, params: dict[str, QueryParameter]) -> tuple[str, dict[str, Any]]:
        """DuckDB text for a BigQuery tree whose table functions were replaced, and its parameter values.

        ``x IN UNNEST(@p)`` becomes a semi-join (sqlglot would test list membership row by row),
        ``ARRAY_AGG(… LIMIT n)`` a sliced list, ``SAFE.FLOAT64(json)`` a TRY_CAST, and each ``@p`` a
        ``$p`` cast to its declared type.
        """
        from sqlglot import exp
        from sqlglot.errors import ErrorLevel

        tree = self._rename(node)
        for node_in in list(tree.find_all(exp.In)):
            unnest = node_in.args.get("unnest")
            if unnest is not None and len(unnest.expressions) == 1:
                values_of = exp.select(exp.Unnest(expressions=[unnest.expressions[0].copy()]))
                node_in.set("unnest", None)
                node_in.set("query", values_of.subquery())
        for aggregate in list(tree.find_all(exp.ArrayAgg)):
            if isinstance(aggregate.this, exp.Limit):
                limit = aggregate.this.expression.copy()
                aggregate.set("this", aggregate.this.this)
                whole = aggregate.parent if isinstance(aggregate.parent, exp.IgnoreNulls) else aggregate
                sliced = exp.Anonymous(this="list_slice", expressions=[whole.copy(), exp.Literal.number(1), limit])
                whole.replace(sliced)
        for safe in list(tree.find_all(exp.SafeFunc)):  # SAFE.FLOAT64(json), which sqlglot leaves as it is
            if isinstance(safe.this, exp.Float64):
                safe.replace(exp.TryCast(this=safe.this.this.copy(), to=exp.DataType.build("DOUBLE")))
        used: dict[str, Any] = {}
        for parameter in list(tree.find_all(exp.Parameter)):
            param = params[parameter.name]
            used[param.name] = param.value
            kind = exp.DataType.build(duckdb_type(parse_type(param.type)), dialect="duckdb")
            parameter.replace(exp.Cast(this=parameter.copy(), to=kind))
        # Unsupported properties (CLUSTER BY, PARTITION BY, OPTIONS) only concern BigQuery storage.
        return tree.sql("duckdb", unsupported_level=ErrorLevel.IGNORE), used

    # --- BigQuery's rules ------------------------------------------------------------------

    def _column_type(self, column: exp.Column) -> str | None:
        """The BigQuery type of a stored table's column (None when it is not one, or is an array)."""
        table = self.pricing._resolve_column(column)
        if table is None:
            return None
        types = self.pricing._types(table)
        kind = types.get(column.name.lower())
        if kind is None or str(kind.id) in ("list", "struct"):
            return None
        return _bigquery_column(column.name, kind).type

    def _check_merge(self, prepared: exp.Expression, params: dict[str, QueryParameter]) -> None:
        """Refuse a MERGE whose ON matches a target row to more than one source row, as BigQuery does."""
        probe = merge_duplicates_sql(prepared)
        if probe is None:
            return
        text, args = self._duck(probe, params)
        duplicated = self.con.execute(text, args).fetchall()[0]
        if duplicated and duplicated[0]:
            raise StatementError(f"{MERGE_ERROR} ({duplicated[0]} target row(s) match several source rows)")

    def _object_table_of(self, query: exp.Expression) -> str | None:
        """The object table ``query`` reads, if any."""
        from sqlglot import exp

        object_tables = self.catalog.object_tables()
        for table in query.find_all(exp.Table):
            if isinstance(table.this, exp.Identifier) and table.db:
                name = _dotted(table, self.default_project)
                if name in object_tables:
                    return name
        return None

    # --- models --------------------------------------------------------------------------

    def _create_model(self, tree: exp.Expression, dry_run: bool) -> QueryResult:
        """CREATE MODEL … REMOTE WITH CONNECTION … OPTIONS (ENDPOINT = …): register it in the catalog."""
        from sqlglot import exp

        from embed.engines.local.models import DEFAULT_ENDPOINT, ENDPOINTS

        name = _dotted(tree.this, self.default_project)
        properties = tree.args.get("properties")
        items = properties.expressions if properties is not None else []
        remote = [p for p in items if isinstance(p, exp.RemoteWithConnectionModelProperty)]
        options = {p.name.upper(): p.args.get("value") for p in items if isinstance(p, exp.Property)}
        if not remote or "ENDPOINT" not in options:
            raise StatementError(
                "the embedded engine creates remote models only: CREATE MODEL … REMOTE WITH CONNECTION …"
                " OPTIONS (ENDPOINT = 'local/…')"
            )
        endpoint = options["ENDPOINT"].name
        exists = self.catalog.model_endpoint(name) is not None
        if exists and tree.args.get("exists") and not tree.args.get("replace"):
            return QueryResult(bytes_billed=0)  # IF NOT EXISTS: the model there is kept as it is
        if endpoint not in ENDPOINTS:
            raise StatementError(
                f"endpoint {endpoint!r} is not a model the embedded engine has; it offers"
                f" {', '.join(sorted(ENDPOINTS))}. Pass --endpoint {DEFAULT_ENDPOINT} (or leave it out)."
            )
        if exists and not tree.args.get("replace"):
            raise StatementError(f"Already Exists: Model {name}")
        if not dry_run:
            self.catalog.put_model(name, endpoint, _dotted(remote[0].this, self.default_project))
        return QueryResult(bytes_billed=0)

    def _model(self, endpoint: str) -> Any:
        """The loaded local model for ``endpoint`` (loaded once per process)."""
        if self._load_model is not None:
            return self._load_model(endpoint)
        from embed.engines.local.models import load_model

        return load_model(endpoint)

    # --- table functions -----------------------------------------------------------------

    def _relation(
        self, node: exp.Expression, params: dict[str, QueryParameter], *, limit_zero: bool = False
    ) -> pyarrow.Table:
        """The rows of a ``TABLE t`` or ``(query)`` argument, run on DuckDB."""
        from sqlglot import exp

        if isinstance(node, exp.Subquery):
            query = node.this
        elif isinstance(node, exp.Table):
            query = exp.select("*").from_(node.copy())
        elif isinstance(node, exp.Query):
            query = node
        else:
            raise StatementError(f"expected TABLE name or (query), got {node.sql('bigquery')}")
        text, args = self._duck(query, params)
        if limit_zero:
            text = f"SELECT * FROM ({text}) LIMIT 0"
        return self.con.sql(text, params=args).to_arrow_table()

    def _generate(
        self, call: exp.Expression, registered: list[str], dry_run: bool, params: dict[str, QueryParameter]
    ) -> pyarrow.Table:
        """Evaluate ML.GENERATE_EMBEDDING: check and run its input query, embed the rows with the model."""
        from sqlglot import exp

        from embed.engines.local.models import check_output_dimensionality, endpoint_dimension
        from embed.engines.local.models.faults import faults_from_environment

        model_name = _dotted(call.this, self.default_project)
        endpoint = self.catalog.model_endpoint(model_name)
        if endpoint is None:
            raise StatementError(f"Not found: Model {model_name}")
        options = generate_options(call.args.get("params_struct"))
        try:
            check_output_dimensionality(endpoint, endpoint_dimension(endpoint), options.output_dimensionality)
        except EmbedError as exc:
            raise StatementError(str(exc)) from None
        argument = call.expression
        if isinstance(argument, exp.Subquery):
            object_table = self._object_table_of(argument.this)
            if object_table is not None:
                check_object_table_query(argument.this, object_table)
        rows = self._relation(argument, params, limit_zero=dry_run)
        if rows.num_rows > self.rows_per_job:
            raise StatementError(
                f"ML.GENERATE_EMBEDDING was given {rows.num_rows:,} rows; a job processes at most"
                f" {self.rows_per_job:,} (the rows-per-job quota). Embed them in smaller batches."
            )
        model = self._model(endpoint) if rows.num_rows else None
        try:
            result = generate_embedding(
                rows, model, options, self.stats, faults=faults_from_environment(), attempts=self.catalog.next_attempts
            )
        except (ValueError, RuntimeError, EmbedError) as exc:
            raise StatementError(f"ML.GENERATE_EMBEDDING failed: {exc}") from None
        if not options.flatten_json_output:
            name = self._register(result, registered)
            return self.con.sql(
                f"SELECT * REPLACE (CAST(ml_generate_embedding_result AS JSON) AS ml_generate_embedding_result)"
                f" FROM {name}"
            ).to_arrow_table()
        return result

    def _vector_search(
        self, call: exp.Expression, registered: list[str], params: dict[str, QueryParameter]
    ) -> pyarrow.Table:
        """Evaluate VECTOR_SEARCH(base, 'column', query, top_k => k, distance_type => 'COSINE')."""
        names = [
            self._register(self._relation(node, params), registered) for node in (call.this, call.args["query_table"])
        ]

        def kwarg(key: str, default: Any) -> Any:
            node = call.args.get(key)
            if node is None:
                return default
            return literal_value(node.expression if hasattr(node, "expression") and node.expression else node)

        column = literal_value(call.args["column_to_search"])
        query_column = kwarg("query_column_to_search", column)
        top_k = int(kwarg("top_k", 10))
        distance = str(kwarg("distance_type", "EUCLIDEAN")).upper()
        text = vector_search_sql(names[0], names[1], column, query_column, top_k, distance)
        return self.con.sql(text).to_arrow_table()

    # --- object tables -------------------------------------------------------------------

    def _refresh_objects(self, tree: exp.Expression) -> None:
        """Re-scan the folders of every object table ``tree`` reads."""
        from sqlglot import exp

        seen = set()
        for table in tree.find_all(exp.Table):
            if isinstance(table.this, exp.Identifier) and table.db:
                name = _dotted(table, self.default_project)
                if name not in seen:
                    seen.add(name)
                    self._refresh_named(name)

    def _refresh_named(self, name: str) -> None:
        """Re-scan object table ``name`` if it is one (and its folders still exist)."""
        roots = self.catalog.object_tables().get(name)
        if not roots:
            return
        gone = [r for r in roots if not r.exists()]
        for root in gone:
            self._warning(f"{display_path(root)}: this image folder no longer exists; {name} keeps its last listing")
        if gone:
            return
        if self._known_files is None:
            self._known_files = self.catalog.cached_files()
        listing = scan(roots, self._known_files, exclude=self._own_files())
        for message in listing.warnings:
            self._warning(message)
        files = listing.files
        if self._listings.get(name) == files:
            return  # no file added, removed or changed since this engine last built the table
        self.catalog.cache_files(files, self._known_files)
        self._known_files.update((f.uri, f) for f in files)
        schema, table = self._duck_name(name)
        run(self.con, f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        staging = f"__embed_objects_{next(self._names)}"
        self.con.register(staging, to_arrow(files))
        try:
            run(self.con, f'CREATE OR REPLACE TABLE "{schema}"."{table}" AS SELECT * FROM {staging}')
        finally:
            self.con.unregister(staging)
        self._listings[name] = files

    def _created_table(self, tree: exp.Expression) -> str | None:
        """The table a CREATE TABLE statement is about to make (None: not such a statement, or it exists)."""
        from sqlglot import exp

        if not isinstance(tree, exp.Create) or str(tree.args.get("kind", "")).upper() != "TABLE":
            return None
        table = tree.this if isinstance(tree.this, exp.Table) else tree.this.find(exp.Table)
        if table is None:
            return None
        name = _dotted(table, self.default_project)
        exists = self._duck_name(name) in self._tables()
        return None if exists and tree.args.get("exists") else name

    def _record_layout(self, tree: exp.Expression, name: str) -> None:
        """Remember how CREATE TABLE partitions (by day) and clusters a table: the billing model prunes on both."""
        from sqlglot import exp

        partition = tree.find(exp.PartitionedByProperty)
        column = partition.find(exp.Column) if partition is not None else None
        cluster = tree.find(exp.ClusterProperty)
        first = cluster.find(exp.Column) if cluster is not None else None
        self.catalog.put_layout(
            name,
            Layout(
                column.name.lower() if column is not None else None, first.name.lower() if first is not None else None
            ),
        )

    def _own_files(self) -> list[Path]:
        """The engine's database, its write-ahead log and its temporary folder: never objects."""
        return [self.db_path, *(self.db_path.with_name(self.db_path.name + tail) for tail in (".wal", ".tmp"))]

    def _warning(self, message: str) -> None:
        """Pass a listing warning to ``warn``, once per engine."""
        if message in self._warned:
            return
        self._warned.add(message)
        self.warnings.append(message)
        if self._warn is not None:
            self._warn(message)

    def _create_schemas(self, tree: exp.Expression) -> None:
        """Create the DuckDB schema (the BigQuery dataset) a CREATE statement writes into."""
        from sqlglot import exp

        target = tree.this
        table = target if isinstance(target, exp.Table) else target.find(exp.Table)
        if table is not None and table.db:
            schema, _ = self._duck_name(_dotted(table, self.default_project))
            run(self.con, f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
