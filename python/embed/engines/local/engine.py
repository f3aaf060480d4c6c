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
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence

from embed.engines.base import Column, QueryResult, StatementError
from embed.engines.local.catalog import Catalog, run, schema_name
from embed.engines.local.functions import (
    EmbeddingStats,
    generate_embedding,
    generate_options,
    literal_value,
    vector_search_sql,
)
from embed.engines.local.objects import ObjectFile, canonical_roots, display_path, scan, to_arrow
from embed.errors import EmbedError
from embed.identifiers import ModelRef, TableRef

if TYPE_CHECKING:
    import duckdb
    import pyarrow
    from sqlglot import exp

__all__ = ["DEFAULT_DB", "LocalEngine"]

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
        return Column(name, "RECORD", "NULLABLE" if nullable else "REQUIRED",
                      tuple(_bigquery_column(n, t) for n, t in kind.children))
    if str(kind) == "JSON":
        bq = "JSON"
    elif type_id in _INT_TYPES:
        bq = "INT64"
    else:
        bq = _SCALARS.get(type_id, type_id.upper())
    return Column(name, bq, "NULLABLE" if nullable else "REQUIRED")


def _dotted(table: "exp.Table", default_project: str) -> str:
    """``project.dataset.name`` of a table reference (the project defaults when only two parts are given)."""
    parts = [p for p in (table.catalog, table.db, table.name) if p]
    if len(parts) == 2:
        parts.insert(0, default_project)
    return ".".join(parts)


class LocalEngine:
    """Runs the kit's statements on a DuckDB file; implements :class:`~embed.engines.base.Engine`."""

    def __init__(
        self,
        db_path: Path = DEFAULT_DB,
        images: Sequence[Path] = (),
        *,
        object_table: Optional[TableRef] = None,
        default_project: str = "local",
        load_model: Optional[Callable[[str], Any]] = None,
        warn: Optional[Callable[[str], None]] = None,
    ) -> None:
        """Open (or create) ``db_path``; register ``images`` as ``object_table`` when given.

        ``warn`` receives, once each, the listing's warnings: files and folders met but not listed,
        with the reason (see :mod:`.objects`).
        """
        import duckdb

        missing = [display_path(p) for p in images if not Path(p).exists()]
        if missing:
            raise EmbedError(f"image folder(s) not found: {', '.join(missing)}. Pass existing folders to --images.", 2)
        db_path = Path(db_path)
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
            self.con: "duckdb.DuckDBPyConnection" = duckdb.connect(str(db_path))
        except (duckdb.Error, OSError) as exc:
            raise EmbedError(f"cannot open the embedded database {str(db_path)!r}: {exc}", 2) from None
        self.db_path = db_path
        self.default_project = default_project
        self.catalog = Catalog(self.con)
        self._warn = warn
        self.warnings: list[str] = []  # every listing warning so far, in order, each once
        self._warned: set[str] = set()
        if images:
            if object_table is None:
                raise EmbedError("an object table name is needed to register image folders", 2)
            self._check_not_a_table(str(object_table))
            roots, notes = canonical_roots(images)
            self.catalog.put_object_table(str(object_table), roots)
            for note in notes:
                self._warning(note)
        self._load_model = load_model
        self._names = itertools.count(1)
        # Object-table refreshes: file hashes (read from the catalog once) and each table's last listing.
        self._known_files: Optional[dict[str, ObjectFile]] = None
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
                " would replace its rows. Pass another --object-table, or another --db.",
                2,
            )

    def close(self) -> None:
        """Close the database."""
        self.con.close()

    # --- names ---------------------------------------------------------------------------

    def _duck_name(self, dotted: str) -> tuple[str, str]:
        """(DuckDB schema, table) of ``project.dataset.table``."""
        project, dataset, table = dotted.rsplit(".", 2)
        return schema_name(project, dataset), table

    def _rename(self, tree: "exp.Expression") -> "exp.Expression":
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

    def _duckdb_sql(self, tree: "exp.Expression") -> str:
        """DuckDB text of a BigQuery tree whose table functions were already replaced."""
        from sqlglot.errors import ErrorLevel

        # Unsupported properties (CLUSTER BY, OPTIONS(description)) only concern BigQuery storage.
        return self._rename(tree).sql("duckdb", unsupported_level=ErrorLevel.IGNORE)

    # --- statements ----------------------------------------------------------------------

    def _parse(self, text: str) -> "exp.Expression":
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
            raise StatementError(str(exc).strip()) from None
        finally:
            for name in registered:
                try:
                    self.con.unregister(name)
                except duckdb.Error:
                    pass

    def _prepare(self, tree: "exp.Expression", registered: list[str], dry_run: bool) -> "exp.Expression":
        """Refresh object tables it reads, evaluate its table functions; return the tree to transpile."""
        from sqlglot import exp

        tree = tree.copy()
        self._refresh_objects(tree)
        calls = [n for n in tree.find_all(exp.GenerateEmbedding, exp.VectorSearch)]
        for call in reversed(calls):  # deepest first
            if isinstance(call, exp.GenerateEmbedding):
                result = self._generate(call, registered, dry_run)
            else:
                result = self._vector_search(call, registered)
            name = f"__embed_relation_{next(self._names)}"
            self.con.register(name, result)
            registered.append(name)
            relation = exp.to_table(name)
            holder = call.parent
            if isinstance(holder, exp.Table) and holder.this is call:
                if holder.args.get("alias") is not None:
                    relation.set("alias", holder.args["alias"])
                holder.replace(relation)
            else:
                call.replace(exp.select("*").from_(relation).subquery())
        return tree

    def execute(self, sql: str, *, dry_run: bool = False) -> QueryResult:
        """Run one statement (or only check it, with ``dry_run``: nothing runs and the model is not called)."""
        from sqlglot import exp

        tree = self._parse(sql)
        if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "MODEL":
            return self._create_model(tree, dry_run)
        with self._statement() as registered:
            prepared = self._prepare(tree, registered, dry_run)
            if isinstance(tree, exp.Create):
                self._create_schemas(tree)
            text = self._duckdb_sql(prepared)
            if dry_run:
                run(self.con, "EXPLAIN " + text)
                return QueryResult(bytes_processed=0)
            rows = run(self.con, text)
            affected = None
            if type(tree).__name__ in _DML:
                affected = int(rows[0][0]) if rows else 0
            return QueryResult(affected_rows=affected)

    def rows(self, sql: str) -> "pyarrow.Table":
        """Run a query and return its rows as an Arrow table."""
        with self._statement() as registered:
            text = self._duckdb_sql(self._prepare(self._parse(sql), registered, False))
            return self.con.sql(text).to_arrow_table()

    def iter_rows(self, sql: str, batch_size: int = 10_000) -> Iterator["pyarrow.RecordBatch"]:
        """Run a query and stream its rows as Arrow record batches of at most ``batch_size`` rows."""
        with self._statement() as registered:
            text = self._duckdb_sql(self._prepare(self._parse(sql), registered, False))
            yield from self.con.sql(text).to_arrow_reader(batch_size)

    def schema(self, table: TableRef) -> tuple[Column, ...] | None:
        """The schema of ``table`` in BigQuery type names, or None when it does not exist."""
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
        return self.catalog.model_endpoint(str(model))

    # --- models --------------------------------------------------------------------------

    def _create_model(self, tree: "exp.Expression", dry_run: bool) -> QueryResult:
        """CREATE MODEL … REMOTE WITH CONNECTION … OPTIONS (ENDPOINT = …): register it in the catalog."""
        from sqlglot import exp

        from embed.engines.local.models import ENDPOINTS

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
            return QueryResult()  # IF NOT EXISTS: the model there is kept as it is
        if endpoint not in ENDPOINTS:
            raise StatementError(
                f"endpoint {endpoint!r} is not a model the embedded engine has; it offers"
                f" {', '.join(sorted(ENDPOINTS))}. Pass --endpoint {sorted(ENDPOINTS)[0]} (or leave it out)."
            )
        if exists and not tree.args.get("replace"):
            raise StatementError(f"Already Exists: Model {name}")
        if not dry_run:
            self.catalog.put_model(name, endpoint, _dotted(remote[0].this, self.default_project))
        return QueryResult()

    def _model(self, endpoint: str) -> Any:
        """The loaded local model for ``endpoint`` (loaded once per process)."""
        if self._load_model is not None:
            return self._load_model(endpoint)
        from embed.engines.local.models import load_model

        return load_model(endpoint)

    # --- table functions -----------------------------------------------------------------

    def _relation_sql(self, node: "exp.Expression") -> str:
        """DuckDB SQL selecting the rows of a ``TABLE t`` or ``(query)`` argument."""
        from sqlglot import exp

        if isinstance(node, exp.Subquery):
            return self._duckdb_sql(node.this)
        if isinstance(node, exp.Table):
            return self._duckdb_sql(exp.select("*").from_(node.copy()))
        if isinstance(node, exp.Query):
            return self._duckdb_sql(node)
        raise StatementError(f"expected TABLE name or (query), got {node.sql('bigquery')}")

    def _generate(self, call: "exp.Expression", registered: list[str], dry_run: bool) -> "pyarrow.Table":
        """Evaluate ML.GENERATE_EMBEDDING: run its input query, embed the rows with the model."""
        from embed.engines.local.models import check_output_dimensionality, endpoint_dimension

        model_name = _dotted(call.this, self.default_project)
        endpoint = self.catalog.model_endpoint(model_name)
        if endpoint is None:
            raise StatementError(f"Not found: Model {model_name}")
        options = generate_options(call.args.get("params_struct"))
        try:
            check_output_dimensionality(endpoint, endpoint_dimension(endpoint), options.output_dimensionality)
        except EmbedError as exc:
            raise StatementError(str(exc)) from None
        text = self._relation_sql(call.expression)
        if dry_run:
            text = f"SELECT * FROM ({text}) LIMIT 0"
        rows = self.con.sql(text).to_arrow_table()
        model = self._model(endpoint) if rows.num_rows else None
        try:
            result = generate_embedding(rows, model, options, self.stats)
        except (ValueError, RuntimeError, EmbedError) as exc:
            raise StatementError(f"ML.GENERATE_EMBEDDING failed: {exc}") from None
        if not options.flatten_json_output:
            name = f"__embed_relation_{next(self._names)}"
            self.con.register(name, result)
            registered.append(name)
            return self.con.sql(
                f"SELECT * REPLACE (CAST(ml_generate_embedding_result AS JSON) AS ml_generate_embedding_result)"
                f" FROM {name}"
            ).to_arrow_table()
        return result

    def _vector_search(self, call: "exp.Expression", registered: list[str]) -> "pyarrow.Table":
        """Evaluate VECTOR_SEARCH(base, 'column', query, top_k => k, distance_type => 'COSINE')."""
        names = []
        for node in (call.this, call.args["query_table"]):
            name = f"__embed_relation_{next(self._names)}"
            self.con.register(name, self.con.sql(self._relation_sql(node)).to_arrow_table())
            registered.append(name)
            names.append(name)

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

    def _refresh_objects(self, tree: "exp.Expression") -> None:
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

    def _create_schemas(self, tree: "exp.Expression") -> None:
        """Create the DuckDB schema (the BigQuery dataset) a CREATE statement writes into."""
        from sqlglot import exp

        target = tree.this
        table = target if isinstance(target, exp.Table) else target.find(exp.Table)
        if table is not None and table.db:
            schema, _ = self._duck_name(_dotted(table, self.default_project))
            run(self.con, f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
