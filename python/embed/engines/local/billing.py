"""What BigQuery on-demand billing would charge for a statement, by its documented rules.

A model, not a bill: it follows the rules of BigQuery's pricing and DML reference
("On-demand query size calculation"), applied to the tables in the embedded engine:

- a query bills the logical bytes of the **columns it references** in each table it reads,
  over the partitions its filters on the partitioning column leave (``col >= @p``, ``col > @p``,
  ``col = @p``); a column referenced twice in one statement is billed once;
- a filter ``col = @p`` on a table's first clustering column reads only the rows holding that
  value. BigQuery prunes storage blocks by such filters; counting only the matching rows is an
  idealization (the real figure is at least that, and at most the unpruned one);
- logical sizes: INT64, FLOAT64, NUMERIC, TIMESTAMP, DATE 8 bytes; BOOL 1; STRING, BYTES and
  JSON 2 + their UTF-8 length; ARRAY the sum of its elements; STRUCT the sum of its fields; NULL 0;
- each table referenced bills at least 10 MB, rounded up to a whole MB;
- DDL bills nothing; INSERT bills *q* (what the statement reads); UPDATE and DELETE bill
  *q + t*, where *t* is the size of the table being modified (every column), or of the
  partitions the statement modifies when the table is partitioned; MERGE bills *q* when it only
  inserts and *q + t* when it has an UPDATE or DELETE clause.

A statement names BigQuery tables (``project.dataset.table``); ``resolve`` maps one to its
DuckDB relation, or None for names that are not tables (CTEs, the engine's own relations).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    from sqlglot import exp

__all__ = ["MB", "MIN_BILLED_PER_TABLE", "Billing", "Estimate", "Layout", "TableScan", "logical_size_sql"]

MB = 2**20
MIN_BILLED_PER_TABLE = 10 * MB
_FIXED = {
    "BIGINT": 8,
    "INTEGER": 8,
    "SMALLINT": 8,
    "TINYINT": 8,
    "HUGEINT": 8,
    "UBIGINT": 8,
    "UINTEGER": 8,
    "DOUBLE": 8,
    "FLOAT": 8,
    "DECIMAL": 16,
    "DATE": 8,
    "TIMESTAMP": 8,
    "TIMESTAMP WITH TIME ZONE": 8,
    "TIME": 8,
    "INTERVAL": 16,
    "BOOLEAN": 1,
}


def logical_size_sql(expr: str, kind: Any) -> str:
    """DuckDB SQL for the BigQuery logical size, in bytes, of ``expr`` whose DuckDB type is ``kind`` (0 for NULL)."""
    type_id = str(kind.id)
    if type_id == "list":
        child = kind.child
        if str(child.id) not in ("list", "struct") and str(child) in _FIXED:
            return f"coalesce({_FIXED[str(child)]} * len({expr}), 0)"
        inner = logical_size_sql("x", child)
        return f"coalesce(list_sum(list_transform({expr}, lambda x: {inner})), 0)"
    if type_id == "struct":
        parts = [logical_size_sql(f'{expr}."{name}"', child) for name, child in kind.children]
        return f"(CASE WHEN {expr} IS NULL THEN 0 ELSE {' + '.join(parts) or '0'} END)"
    name = str(kind)
    if name in _FIXED:
        return f"(CASE WHEN {expr} IS NULL THEN 0 ELSE {_FIXED[name]} END)"
    # VARCHAR, BLOB, JSON and anything else: 2 bytes plus its length in bytes.
    return f"coalesce(2 + strlen(CAST({expr} AS VARCHAR)), 0)"


@dataclass(frozen=True)
class Layout:
    """How a table is stored: the column it is partitioned by day on, and its first clustering column."""

    partition_column: str | None = None
    cluster_column: str | None = None


@dataclass
class TableScan:
    """The columns one statement reads of one table, and the partitions and clustered value it keeps."""

    table: str
    columns: set[str] = field(default_factory=set)
    all_columns: bool = False
    since: dt.datetime | None = None  # keep partitions from this day on
    pruned: bool = True  # False once any reference reads every partition
    cluster_value: Any = None  # keep rows whose first clustering column holds this
    clustered: bool = True  # False once any reference reads every clustered value


@dataclass(frozen=True)
class Estimate:
    """Bytes billed for one statement, and the bytes read of each table before the 10 MB minimum."""

    bytes_billed: int
    scanned: Mapping[str, int]


@dataclass(frozen=True)
class _Source:
    table: str | None  # project.dataset.table, or None for a derived relation
    alias: str


class Billing:
    """Estimates bytes billed for statements run on one DuckDB connection."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        resolve: Callable[[exp.Table], str | None],
        duck_name: Callable[[str], str],
        layout: Callable[[str], Layout],
        to_sql: Callable[[exp.Expression, Mapping[str, Any]], tuple[str, Any]],
    ) -> None:
        self.con = con
        self._sql = to_sql  # a BigQuery tree and its parameters -> DuckDB text and its arguments
        self.resolve = resolve  # a table node -> project.dataset.table when it names a stored table
        self.duck_name = duck_name  # project.dataset.table -> quoted DuckDB relation
        self._layout = layout
        self._seen: dict[tuple[str, str], Any] | None = None  # per estimate: tables' types and layouts

    # --- the public estimate ---------------------------------------------------------

    def estimate(self, tree: exp.Expression, params: Mapping[str, Any]) -> Estimate:
        """Bytes billed for BigQuery statement ``tree`` with ``params`` (name -> QueryParameter), on the tables now."""
        from sqlglot import exp

        if isinstance(tree, (exp.Create, exp.Drop, exp.Alter)) and tree.args.get("expression") is None:
            return Estimate(0, {})
        self._seen = {}  # the tables do not change while one statement is priced
        try:
            scans: dict[str, TableScan] = {}
            self._collect(tree, params, scans)
            scanned = {name: self._bytes(scan) for name, scan in scans.items()}
            billed = sum(_rounded(b) for b in scanned.values())
            target = self._modified(tree, params)
            if target is not None:
                name, modified = target
                billed += _rounded(modified) if modified else 0
                scanned = {**scanned, f"{name} (modified)": modified}
        finally:
            self._seen = None
        return Estimate(billed, scanned)

    def _remembered(self, kind: str, table: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per estimate for ``kind`` of ``table`` (every call outside an estimate)."""
        if self._seen is None:
            return compute()
        key = (kind, table)
        if key not in self._seen:
            self._seen[key] = compute()
        return self._seen[key]

    def layout(self, table: str) -> Layout:
        """How stored ``table`` is partitioned and clustered."""
        return self._remembered("layout", table, lambda: self._layout(table))

    # --- references ------------------------------------------------------------------

    def _collect(self, tree: exp.Expression, params: Mapping[str, Any], scans: dict[str, TableScan]) -> None:
        """Add every stored table ``tree`` reads, with the columns it references there."""
        from sqlglot import exp

        scopes = [n for n in tree.walk() if isinstance(n, (exp.Select, exp.Delete, exp.Update, exp.Merge))]
        for scope in scopes:
            sources = self._sources(scope)
            for source, _ in sources:
                if source.table is None:
                    continue
                scan = scans.setdefault(source.table, TableScan(source.table))
                since, value = self._filters(scope, source, params)
                if since is None:
                    scan.pruned = False
                elif scan.pruned:
                    scan.since = since if scan.since is None else min(scan.since, since)
                if value is None or (scan.cluster_value is not None and scan.cluster_value != value):
                    scan.clustered = False
                else:
                    scan.cluster_value = value
                if self._reads_all(scope, source):
                    scan.all_columns = True
        for column in tree.find_all(exp.Column):
            if _written(column):
                continue
            resolved = self._resolve_column(column)
            if resolved is not None:
                scans.setdefault(resolved, TableScan(resolved)).columns.add(column.name.lower())

    def _sources(self, scope: exp.Expression) -> list[tuple[_Source, exp.Expression]]:
        """The relations ``scope`` reads directly: (source, its node)."""
        from sqlglot import exp

        nodes: list[exp.Expression] = []
        if isinstance(scope, exp.Select):
            if scope.args.get("from_") is not None:
                nodes.append(scope.args["from_"].this)
            nodes += [j.this for j in scope.args.get("joins") or []]
        elif isinstance(scope, exp.Merge):
            nodes += [scope.this, scope.args.get("using")]
        else:  # DELETE / UPDATE: the target
            nodes.append(scope.this)
            if scope.args.get("from_") is not None:
                nodes.append(scope.args["from_"].this)
        out = []
        for node in nodes:
            if node is None:
                continue
            alias = node.alias_or_name if hasattr(node, "alias_or_name") else ""
            table = (
                self.resolve(node) if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier) else None
            )
            out.append((_Source(table, alias.lower()), node))
        return out

    def _reads_all(self, scope: exp.Expression, source: _Source) -> bool:
        """True when ``scope`` selects every column of ``source`` (``*`` or ``alias.*``)."""
        from sqlglot import exp

        if isinstance(scope, exp.Select):
            for item in scope.expressions:
                if isinstance(item, exp.Star):
                    return True
                if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
                    if item.table.lower() in (source.alias, ""):
                        return True
        return False

    def _resolve_column(self, column: exp.Column) -> str | None:
        """The stored table a column belongs to: the nearest enclosing scope with a source that has it."""
        from sqlglot import exp

        qualifier = column.table.lower()
        name = column.name.lower()
        if not name or isinstance(column.this, exp.Star):
            return None
        node: exp.Expression | None = column.parent
        while node is not None:
            if isinstance(node, (exp.Select, exp.Delete, exp.Update, exp.Merge)):
                sources = self._sources(node)
                for source, _ in sources:
                    if qualifier:
                        if source.alias == qualifier:
                            return source.table
                    elif source.table is not None and name in self._column_names(source.table):
                        return source.table
                if not qualifier and any(s.table is None and name in _derived_names(n) for s, n in sources):
                    return None  # a column of a derived relation of this scope
            node = node.parent
        return None

    def _column_names(self, table: str) -> set[str]:
        """Lower-cased column names of stored ``table``."""
        return set(self._types(table))

    def _filters(
        self, scope: exp.Expression, source: _Source, params: Mapping[str, Any]
    ) -> tuple[dt.datetime | None, Any]:
        """(the earliest day ``scope`` keeps by the partitioning column, the value it keeps of the clustering one)."""
        from sqlglot import exp

        layout = self.layout(source.table) if source.table else Layout()
        where = scope.args.get("where")
        since, value = None, None
        if where is None:
            return since, value
        for condition in _conjuncts(where.this):
            if not isinstance(condition, (exp.GTE, exp.GT, exp.EQ)):
                continue
            left, right = condition.this, condition.expression
            if not isinstance(left, exp.Column) or (left.table and left.table.lower() != source.alias):
                continue
            constant = _constant(right, params)
            name = left.name.lower()
            if name == layout.partition_column and isinstance(constant, dt.datetime):
                since = constant
            elif name == layout.cluster_column and isinstance(condition, exp.EQ) and constant is not None:
                value = constant
        return since, value

    # --- sizes ---------------------------------------------------------------------------

    def _types(self, table: str) -> dict[str, Any]:
        """Column name (lower case) -> DuckDB type of stored ``table``."""

        def read() -> dict[str, Any]:
            relation = self.con.sql(f"SELECT * FROM {self.duck_name(table)} LIMIT 0")
            return {name.lower(): kind for name, kind in zip(relation.columns, relation.types)}

        return self._remembered("types", table, read)

    def _bytes(self, scan: TableScan, *, days: list[Any] | None = None) -> int:
        """Logical bytes of the scanned columns over the rows the scan keeps."""
        types = self._types(scan.table)
        names = list(types) if scan.all_columns else [c for c in types if c in scan.columns]
        if not names:
            return 0
        sizes = " + ".join(logical_size_sql(f'"{n}"', types[n]) for n in names)
        conditions, args = ["TRUE"], []
        layout = self.layout(scan.table)
        column = layout.partition_column
        if column is not None and days is not None:
            conditions.append(f"date_trunc('day', \"{column}\") IN (SELECT unnest(?))")
            args.append(days)
        elif column is not None and scan.pruned and scan.since is not None:
            conditions.append(f"date_trunc('day', \"{column}\") >= date_trunc('day', CAST(? AS TIMESTAMPTZ))")
            args.append(scan.since)
        if layout.cluster_column is not None and scan.clustered and scan.cluster_value is not None:
            conditions.append(f'"{layout.cluster_column}" = ?')
            args.append(scan.cluster_value)
        where = " WHERE " + " AND ".join(conditions)
        rows = self.con.execute(f"SELECT sum({sizes}) FROM {self.duck_name(scan.table)}{where}", args).fetchall()
        row = rows[0] if rows else None
        return int(row[0] or 0) if row else 0

    def _modified(self, tree: exp.Expression, params: Mapping[str, Any]) -> tuple[str, int] | None:
        """(table, t) for DML that bills the modified table: UPDATE, DELETE, MERGE with UPDATE or DELETE."""
        from sqlglot import exp

        if isinstance(tree, exp.Merge):
            whens = tree.args.get("whens")
            clauses = whens.expressions if whens is not None else []
            if all(isinstance(w.args.get("then"), exp.Insert) for w in clauses):
                return None
        elif not isinstance(tree, (exp.Update, exp.Delete)):
            return None
        target = tree.this
        name = self.resolve(target) if isinstance(target, exp.Table) else None
        if name is None:
            return None
        scan = TableScan(name, all_columns=True, pruned=False, clustered=False)
        if self.layout(name).partition_column is None or not isinstance(tree, exp.Delete):
            return name, self._bytes(scan)
        return name, self._bytes(scan, days=self._days_modified(tree, name, params))

    def _days_modified(self, tree: exp.Expression, name: str, params: Mapping[str, Any]) -> list[Any]:
        """The partitions (days) holding rows a DELETE removes."""
        from sqlglot import exp

        column = self.layout(name).partition_column
        probe = exp.select(
            exp.func("date_trunc", exp.Literal.string("day"), exp.column(column, table=tree.this.alias_or_name))
        )
        probe = probe.from_(tree.this.copy()).distinct()
        if tree.args.get("where") is not None:
            probe = probe.where(tree.args["where"].this.copy())
        text, args = self._sql(probe, params)
        return [row[0] for row in self.con.execute(text, args).fetchall()]


def _derived_names(node: exp.Expression) -> set[str]:
    """Lower-cased column names a derived relation exposes: a subquery's, or a CTE's it names."""
    from sqlglot import exp

    query: exp.Expression | None = None
    if isinstance(node, exp.Subquery):
        query = node.this
    elif isinstance(node, exp.Table) and not node.db:
        ancestor = node.parent
        while ancestor is not None and query is None:
            with_ = ancestor.args.get("with_") if isinstance(ancestor, exp.Expression) else None
            for cte in with_.expressions if with_ is not None else []:
                if cte.alias_or_name.lower() == node.name.lower():
                    query = cte.this
            ancestor = ancestor.parent
    if isinstance(query, exp.Query):
        return {name.lower() for name in query.named_selects}
    return set()


def _written(column: exp.Column) -> bool:
    """True for a column a statement writes without reading it: MERGE's INSERT (cols) and UPDATE SET col = …."""
    from sqlglot import exp

    parent = column.parent
    if isinstance(parent, exp.Tuple) and isinstance(parent.parent, exp.Insert) and parent.parent.this is parent:
        return True
    return isinstance(parent, exp.EQ) and parent.this is column and isinstance(parent.parent, exp.Update)


def _rounded(scanned: int) -> int:
    """A table's billed bytes: at least 10 MB, rounded up to a whole MB."""
    return max(MIN_BILLED_PER_TABLE, math.ceil(scanned / MB) * MB)


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    """The AND-ed conditions of a WHERE clause."""
    from sqlglot import exp

    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


def _constant(node: exp.Expression, params: Mapping[str, Any]) -> Any:
    """The value of a parameter or TIMESTAMP literal, or None."""
    from sqlglot import exp

    if isinstance(node, exp.Parameter):
        param = params.get(node.name)
        return getattr(param, "value", None)
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_string:
        try:
            value = dt.datetime.fromisoformat(node.this)
        except ValueError:
            return None
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return None
