"""The catalog GoogleSQL resolves names in, built from the kit's own definitions, never a copy.

Tables: the object table's columns and the results table from :mod:`embed.schema`. The model and
the connection: the settings' names. Functions: the BigQuery ML functions the statements call,
declared with the signatures and output columns of BigQuery's reference. A statement that reads
another table or calls another BigQuery-only function needs it declared here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from embed.googlesql.runtime import Runtime
from embed.schema import OBJECT_TABLE_COLUMNS, expected_schema
from embed.settings import Settings

__all__ = ["FORMS", "builder", "key"]

# ML.GENERATE_EMBEDDING with a multimodal model reads one of two inputs: an object table's rows, or
# text in a column named `content`. GoogleSQL's table functions have one output schema, so each
# input is its own form of the function, in its own catalog; a statement is analyzed over each.
FORMS = {"objects": "over an object table", "text": "over text (a `content` column)"}
_TEXT_INPUT = [("content", "STRING")]
# VECTOR_SEARCH returns each query row and base row as STRUCTs of their columns, and the distance.
_VECTOR_SEARCH_BODY = (
    "SELECT query_row AS query, base_row AS base, CAST(NULL AS FLOAT64) AS distance"
    " FROM query_table AS query_row CROSS JOIN base_table AS base_row"
)


def key(settings: Settings) -> tuple[Any, ...]:
    """What the catalog depends on: the names of things and the embedding column's type."""
    return (
        str(settings.object_table),
        str(settings.results_table),
        str(settings.model),
        str(settings.connection),
        settings.flatten_json_output,
    )


def builder(settings: Settings, form: str) -> Callable[[Runtime], Any]:
    """A builder of the catalog ``settings`` describe, with ML.GENERATE_EMBEDDING in ``form`` (one of FORMS)."""

    def build(runtime: Runtime) -> Any:
        import zetasql.types as zt

        schema = expected_schema(settings, dimension=1)  # the embedding's length does not change the columns
        objects = [(c.name, c.sql_type) for c in OBJECT_TABLE_COLUMNS]
        # A results table has what the kit creates; a column it only tolerates may be absent.
        results = [(c.name, c.sql_type) for c in schema.columns if c.required]
        out = schema.result
        embedding = [(n, schema.column(n).sql_type) for n in (out.embedding, out.status, out.start_sec, out.end_sec)]
        generate_input = objects if form == "objects" else _TEXT_INPUT
        types = runtime.types(t for _, t in [*objects, *results, *embedding, *_TEXT_INPUT])

        def table(name: str, columns: list[tuple[str, str]]) -> Any:
            return zt.SimpleTable(
                name=name,
                column=[zt.SimpleColumn(name=c, type=types[t], is_writable_column=True) for c, t in columns],
            )

        def relation(columns: list[tuple[str, str]]) -> Any:
            return zt.TVFRelation(column=[zt.TVFRelationColumn(name=c, type=types[t]) for c, t in columns])

        ml = zt.SimpleCatalog(
            name="ML",
            custom_tvf=[_generate_embedding(relation(generate_input), relation(generate_input + embedding))],
            custom_function=[_distance(runtime)],
        )
        return zt.SimpleCatalog(
            name="bigquery",
            # A backquoted `project.dataset.table` resolves to the table named by the whole path.
            table=[table(str(settings.object_table), objects), table(str(settings.results_table), results)],
            model=[zt.SimpleModel(id=1, name=str(settings.model))],
            connection=[zt.SimpleConnection(name=str(settings.connection))],
            custom_tvf=[_vector_search(runtime)],
            catalog=[ml],
        )

    return build


def _argument(kind: str, name: str, type_: Any = None, *, default: Any = None) -> Any:
    """One argument of a signature; with a default it is optional and may only be given by name."""
    import zetasql.types as zt

    options = zt.FunctionArgumentTypeOptions(argument_name=name)
    if default is not None:
        options.cardinality = zt.FunctionEnums.ArgumentCardinality.OPTIONAL
        options.named_argument_kind = zt.FunctionEnums.NamedArgumentKind.NAMED_ONLY
        options.default_value = default
    # Every argument needs its number of occurrences, or the analyzer fails an internal check.
    return zt.FunctionArgumentType(kind=zt.SignatureArgumentKind[kind], type=type_, num_occurrences=1, options=options)


def _generate_embedding(input_schema: Any, output_schema: Any) -> Any:
    """ML.GENERATE_EMBEDDING(MODEL m, {TABLE t | (query)} [, STRUCT(options)]) over one input form.

    The input must have exactly the form's columns; the output is those columns, then the embedding's.
    GoogleSQL's pass-through table functions need the table first, so the output is declared whole.
    """
    import zetasql.types as zt

    source = _argument("ARG_TYPE_RELATION", "source")
    source.options.relation_input_schema = input_schema
    source.options.extra_relation_input_columns_allowed = False
    options = _argument("ARG_STRUCT_ANY", "options")
    options.options.cardinality = zt.FunctionEnums.ArgumentCardinality.OPTIONAL
    result = zt.FunctionArgumentType(
        kind=zt.SignatureArgumentKind.ARG_TYPE_RELATION,
        num_occurrences=1,
        options=zt.FunctionArgumentTypeOptions(relation_input_schema=output_schema),
    )
    return zt.TableValuedFunction(
        name_path=["GENERATE_EMBEDDING"],
        type=zt.FunctionEnums.TableValuedFunctionType.FIXED_OUTPUT_SCHEMA_TVF,
        signature=zt.FunctionSignature(
            argument=[_argument("ARG_TYPE_MODEL", "model"), source, options],
            return_type=result,
        ),
    )


def _vector_search(runtime: Runtime) -> Any:
    """VECTOR_SEARCH(base, column_to_search, query [, query_column_to_search =>, top_k =>, distance_type =>,
    options =>]), its output computed from its inputs by a SQL body (a templated table function)."""
    import zetasql.types as zt

    types = runtime.types(["STRING", "INT64"])
    string, int64 = types["STRING"], types["INT64"]
    arguments = [
        _argument("ARG_TYPE_RELATION", "base_table"),
        _argument("ARG_TYPE_FIXED", "column_to_search", string),
        _argument("ARG_TYPE_RELATION", "query_table"),
        # A templated table function's optional arguments need defaults: BigQuery's.
        _argument("ARG_TYPE_FIXED", "query_column_to_search", string, default=zt.Value()),
        _argument("ARG_TYPE_FIXED", "top_k", int64, default=zt.Value(int64_value=10)),
        _argument("ARG_TYPE_FIXED", "distance_type", string, default=zt.Value(string_value="EUCLIDEAN")),
        _argument("ARG_TYPE_FIXED", "options", string, default=zt.Value(string_value="{}")),
    ]
    return zt.TableValuedFunction(
        name_path=["VECTOR_SEARCH"],
        type=zt.FunctionEnums.TableValuedFunctionType.TEMPLATED_SQL_TVF,
        signature=zt.FunctionSignature(
            argument=arguments,
            return_type=zt.FunctionArgumentType(kind=zt.SignatureArgumentKind.ARG_TYPE_RELATION, num_occurrences=1),
        ),
        argument_name=[a.options.argument_name for a in arguments],
        parse_resume_location=zt.ParseResumeLocation(input=_VECTOR_SEARCH_BODY),
    )


def _distance(runtime: Runtime) -> Any:
    """ML.DISTANCE(ARRAY<FLOAT64>, ARRAY<FLOAT64> [, distance type STRING]) -> FLOAT64."""
    import zetasql.types as zt

    types = runtime.types(["ARRAY<FLOAT64>", "FLOAT64", "STRING"])
    vector = types["ARRAY<FLOAT64>"]
    distance_type = _argument("ARG_TYPE_FIXED", "type", types["STRING"])
    distance_type.options.cardinality = zt.FunctionEnums.ArgumentCardinality.OPTIONAL
    return zt.Function(
        name_path=["ML", "DISTANCE"],
        group="BigQuery ML",
        mode=zt.FunctionEnums.Mode.SCALAR,
        signature=[
            zt.FunctionSignature(
                argument=[
                    _argument("ARG_TYPE_FIXED", "x", vector),
                    _argument("ARG_TYPE_FIXED", "y", vector),
                    distance_type,
                ],
                return_type=zt.FunctionArgumentType(
                    kind=zt.SignatureArgumentKind.ARG_TYPE_FIXED, type=types["FLOAT64"], num_occurrences=1
                ),
            )
        ],
    )
