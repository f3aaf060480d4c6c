"""BigQuery's rules that a statement can break and DuckDB would not notice: the embedded engine refuses them.

Each rule is a fact from ``reference/bqml-facts.md`` (BigQuery's reference), checked before a
statement runs, with BigQuery's wording where it is known:

- query parameters: every ``@name`` needs a value, and each value must fit its declared type
  (and the declared type must fit how the statement uses it, for ``col = @p`` and
  ``col IN UNNEST(@p)``);
- the query argument of ML.GENERATE_EMBEDDING over an object table may hold only WHERE,
  ORDER BY and LIMIT: no join, subquery, grouping, DISTINCT, window or set operation;
- one job embeds at most ``ROWS_PER_JOB`` rows (the Vertex AI rows-per-job quota);
- a MERGE (or UPDATE) must match at most one source row for each target row (checked by the
  engine on the data, just before the statement runs: see :func:`merge_duplicates_sql`);
- a query's result must be small enough to return (``RESPONSE_LIMIT`` logical bytes), or
  BigQuery answers "Response too large to return".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from embed.engines.base import QueryParameter, StatementError, parse_type

if TYPE_CHECKING:
    from sqlglot import exp

__all__ = [
    "MERGE_ERROR",
    "RESPONSE_LIMIT",
    "ROWS_PER_JOB",
    "check_object_table_query",
    "check_parameter_use",
    "check_parameters",
    "duckdb_type",
    "merge_duplicates_sql",
]

# Rows ML.GENERATE_EMBEDDING processes per job (216,000; 43,200 in some European single regions).
ROWS_PER_JOB = 216_000
# Query results returned to a client (no destination table) are capped at about 10 GB.
RESPONSE_LIMIT = 10 * 2**30
MERGE_ERROR = "UPDATE/MERGE must match at most one source row for each target row"
_OBJECT_TABLE_RULE = "You can only specify WHERE, ORDER BY, and LIMIT clauses in the query"
_DUCK_SCALARS = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "BYTES": "BLOB",
    "DATE": "DATE",
    "JSON": "JSON",
}


# --- query parameters ---------------------------------------------------------------------


def check_parameters(tree: exp.Expression, params: tuple[QueryParameter, ...]) -> dict[str, QueryParameter]:
    """Refuse a ``@name`` with no value, or a value that does not fit its type; return the parameters by name."""
    from sqlglot import exp

    given = {p.name: p for p in params}
    for node in tree.find_all(exp.Parameter):
        if node.name not in given:
            raise StatementError(f"Query parameter '{node.name}' not found")
    for param in params:
        try:
            kind = parse_type(param.type)
        except ValueError as exc:
            raise StatementError(f"Query parameter '{param.name}': {exc}") from None
        problem = _misfit(kind, param.value)
        if problem is not None:
            raise StatementError(f"Query parameter '{param.name}' of type {param.type}: {problem}")
    return given


def _misfit(kind: Any, value: Any) -> str | None:
    """Why ``value`` is not a value of BigQuery type ``kind`` (from parse_type), or None (NULL fits any type)."""
    if value is None:
        return None
    if isinstance(kind, tuple) and kind[0] == "ARRAY":
        if not isinstance(value, (list, tuple)):
            return f"{value!r} is not an array"
        for item in value:
            if item is None:
                return "an array cannot hold a NULL element"
            problem = _misfit(kind[1], item)
            if problem is not None:
                return problem
        return None
    if isinstance(kind, tuple) and kind[0] == "STRUCT":
        if not isinstance(value, Mapping):
            return f"{value!r} is not a STRUCT"
        names = [name for name, _ in kind[1]]
        if sorted(value) != sorted(names):
            return f"{value!r} does not have exactly the fields {', '.join(names)}"
        for name, field_kind in kind[1]:
            problem = _misfit(field_kind, value[name])
            if problem is not None:
                return f"field {name}: {problem}"
        return None
    fits = {
        "STRING": lambda v: isinstance(v, str),
        "INT64": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63,
        "FLOAT64": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "BOOL": lambda v: isinstance(v, bool),
        "TIMESTAMP": lambda v: isinstance(v, dt.datetime) and v.tzinfo is not None,
        "BYTES": lambda v: isinstance(v, bytes),
        "DATE": lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime),
        "JSON": lambda v: True,
    }[kind]
    if not fits(value):
        return f"{value!r} is not a valid {kind}" + (" (a timestamp needs a time zone)" if kind == "TIMESTAMP" else "")
    return None  # BigQuery accepts NaN and infinities in FLOAT64 too


def duckdb_type(kind: Any) -> str:
    """The DuckDB type for BigQuery type ``kind`` (from parse_type)."""
    if isinstance(kind, tuple) and kind[0] == "ARRAY":
        return duckdb_type(kind[1]) + "[]"
    if isinstance(kind, tuple) and kind[0] == "STRUCT":
        return "STRUCT(" + ", ".join(f'"{name}" {duckdb_type(k)}' for name, k in kind[1]) + ")"
    return _DUCK_SCALARS[kind]


def _type_text(kind: Any) -> str:
    """BigQuery's spelling of type ``kind``."""
    if isinstance(kind, tuple) and kind[0] == "ARRAY":
        return f"ARRAY<{_type_text(kind[1])}>"
    if isinstance(kind, tuple) and kind[0] == "STRUCT":
        return "STRUCT<" + ", ".join(f"{name} {_type_text(k)}" for name, k in kind[1]) + ">"
    return str(kind)


def check_parameter_use(tree: exp.Expression, params: tuple[QueryParameter, ...], column_type: Any) -> None:
    """Refuse ``col = @p`` / ``col IN UNNEST(@p)`` (and <, >, ...) where @p's type cannot be compared with col's.

    ``column_type(column_node)`` gives a column's BigQuery type name (``STRING``, ``INT64`` ...), or None
    when it cannot tell (a derived column): such uses are left to BigQuery's analyzer.
    """
    from sqlglot import exp

    declared = {p.name: parse_type(p.type) for p in params}
    comparisons = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
    for node in tree.find_all(exp.In, *comparisons):
        if isinstance(node, exp.In):
            unnest = node.args.get("unnest")
            inner = unnest.expressions[0] if unnest is not None and unnest.expressions else None
            if not isinstance(inner, exp.Parameter) or inner.name not in declared:
                continue
            pairs = [(node.this, inner, "IN UNNEST")]
            kind = declared[inner.name]
            if not (isinstance(kind, tuple) and kind[0] == "ARRAY"):
                raise StatementError(
                    f"Values referenced in UNNEST must be arrays. UNNEST contains expression of type {_type_text(kind)}"
                )
            wanted = {inner.name: kind[1]}
        else:
            pairs = [(node.this, node.expression, node.key.upper()), (node.expression, node.this, node.key.upper())]
            wanted = declared
        for column, param, operator in pairs:
            if not isinstance(column, exp.Column) or not isinstance(param, exp.Parameter):
                continue
            if param.name not in wanted:
                continue
            have = column_type(column)
            want = wanted[param.name]
            if have is None or _comparable(have, want):
                continue
            raise StatementError(
                f"No matching signature for operator {operator} for argument types: {have},"
                f" {_type_text(declared[param.name])}"
            )


def _comparable(column: str, kind: Any) -> bool:
    """True when a column of BigQuery type ``column`` can be compared with a value of type ``kind``."""
    numbers = ("INT64", "FLOAT64", "NUMERIC", "BIGNUMERIC")
    if isinstance(kind, tuple):
        return False
    return column == kind or (column in numbers and kind in numbers)


# --- the object-table query of ML.GENERATE_EMBEDDING ---------------------------------------


def check_object_table_query(query: exp.Expression, table: str) -> None:
    """Refuse anything but SELECT … FROM <object table> [WHERE] [ORDER BY] [LIMIT]."""
    from sqlglot import exp

    where = f"ML.GENERATE_EMBEDDING over object table {table}: {_OBJECT_TABLE_RULE}"
    if not isinstance(query, exp.Select):
        raise StatementError(f"{where}; found {type(query).__name__.upper()}")
    allowed = {"expressions", "from_", "where", "order", "limit", "kind", "hint", "operation_modifiers"}
    for key, value in query.args.items():
        if value in (None, [], False) or key in allowed:
            continue
        raise StatementError(f"{where}; found {_clause(key)}")
    found = {
        exp.Subquery: "a subquery",
        exp.Select: "a subquery",
        exp.Exists: "a subquery (EXISTS)",
        exp.Window: "a window function",
        exp.AggFunc: "an aggregate function",
    }
    for node in query.walk():
        if node is query:
            continue
        for kind, what in found.items():
            if isinstance(node, kind):
                raise StatementError(f"{where}; found {what}: {node.sql('bigquery')[:120]}")
        if isinstance(node, exp.In) and node.args.get("query") is not None:
            raise StatementError(f"{where}; found a subquery (IN (SELECT …))")


def _clause(key: str) -> str:
    """A query clause's name for a message."""
    return {
        "joins": "a JOIN",
        "group": "GROUP BY",
        "having": "HAVING",
        "qualify": "QUALIFY",
        "distinct": "SELECT DISTINCT",
        "with_": "a WITH clause",
        "windows": "a WINDOW clause",
        "laterals": "a LATERAL join",
        "offset": "OFFSET",
    }.get(key, key.upper())


# --- MERGE: at most one source row per target row -------------------------------------------


def merge_duplicates_sql(merge: exp.Merge) -> exp.Expression | None:
    """A query counting target rows a MERGE's ON matches to more than one source row (None: no MATCHED clause).

    The target is read through its ``rowid`` (DuckDB's row identity); the caller transpiles it.
    """
    from sqlglot import exp

    whens = merge.args.get("whens")
    clauses = whens.expressions if whens is not None else []
    if not any(w.args.get("matched") for w in clauses):
        return None
    target = merge.this.copy()
    alias = target.alias_or_name
    source = merge.args["using"].copy()
    on = merge.args["on"].copy()
    rowid = exp.column("rowid", table=alias)
    inner = (
        exp.select(rowid.as_("target_row"))
        .from_(target)
        .join(source, on=on, join_type="inner")
        .group_by(rowid)
        .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
    )
    return exp.select(exp.Count(this=exp.Star()).as_("target_rows")).from_(inner.subquery("matched"))
