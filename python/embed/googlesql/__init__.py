"""GoogleSQL analysis, offline: BigQuery's SQL front end resolves every name, type and signature.

GoogleSQL (formerly ZetaSQL) comes from the `zetasql` package, ZetaSQL compiled to WebAssembly
and run by wasmtime, which the ``check`` extra installs (``pip install 'embed-kit[check]'``). This
package is the only place that imports it, always inside functions, so the kit works without it:
:mod:`~embed.googlesql.runtime` holds the process's instance and BigQuery's language options,
:mod:`~embed.googlesql.catalog` the names a statement can refer to, built from the kit's own definitions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from embed.errors import VALIDATION, EmbedError
from embed.googlesql import catalog, runtime
from embed.googlesql.runtime import EXTRA, FEATURES, cache_dir, load_module, require, type_name
from embed.settings import Settings

__all__ = [
    "EXTRA",
    "FEATURES",
    "Analysis",
    "Analyzer",
    "Rejected",
    "analyzer",
    "cache_dir",
    "load_module",
    "require",
    "verify",
]


class Rejected(EmbedError):
    """GoogleSQL refused a statement; ``reason`` is the analyzer's message, with the line and a caret."""

    def __init__(self, statement: str, reason: str) -> None:
        super().__init__(f"GoogleSQL rejects {statement}: {reason}", VALIDATION)
        self.statement = statement
        self.reason = reason


@dataclass(frozen=True)
class Analysis:
    """What GoogleSQL resolved: the statement's kind (QueryStmt, MergeStmt ...), and its columns for a query
    or a CREATE TABLE."""

    kind: str
    columns: tuple[tuple[str, str], ...]


class Analyzer:
    """GoogleSQL's analyzer over the catalog ``settings`` describe (see :func:`analyzer`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._key = catalog.key(settings)

    def analyze(self, sql: str, params: Mapping[str, str] | None = None, name: str = "the statement") -> Analysis:
        """Resolve ``sql`` with its query parameters (name -> BigQuery type); raise Rejected if GoogleSQL refuses it."""
        process = runtime.instance()
        params = dict(params or {})
        misfits: list[tuple[str, str]] = []
        try:
            types = process.types(params.values())
            options = process.options({n: types[t] for n, t in params.items()})
            for form, described in catalog.FORMS.items():
                registered = process.catalog((*self._key, form), catalog.builder(self.settings, form))
                try:
                    return _analysis(process.analyze(sql, options, registered))
                except process.ServerError as exc:
                    if exc.code == process.INTERNAL:
                        raise  # a catalog the analyzer cannot use: a bug here, not in the statement
                    message = process.message(exc)
                    if "GENERATE_EMBEDDING" not in message.partition("\n")[0]:
                        raise Rejected(name, message) from None
                    misfits.append((described, message))
        except process.Crashed:
            runtime.reset()  # the instance's state is undefined after a trap: the next analysis starts another
            raise
        if len({message for _, message in misfits}) == 1:
            raise Rejected(name, misfits[0][1])
        reasons = "; ".join(f"{form}: {message.partition(chr(10))[0]}" for form, message in misfits)
        caret = misfits[0][1].partition("\n")[2]
        raise Rejected(name, f"ML.GENERATE_EMBEDDING's input fits none of its forms: {reasons}\n{caret}".rstrip())

    def check(self, statements: Iterable[Any]) -> list[Rejected]:
        """Analyze statements (with ``.name``, ``.sql`` and, if any, ``.params``); the rejections, in order."""
        rejected = []
        for statement in statements:
            params = {p.name: p.type for p in getattr(statement, "params", ())}
            try:
                self.analyze(statement.sql, params, statement.name)
            except Rejected as exc:
                rejected.append(exc)
        return rejected


def _analysis(node: Any) -> Analysis:
    """The kind and columns of a resolved statement (protobuf: a oneof per abstract node, ``parent`` for its fields)."""
    while "node" in node.DESCRIPTOR.oneofs_by_name:
        node = getattr(node, node.WhichOneof("node"))
    kind = node.DESCRIPTOR.name.removeprefix("Resolved").removesuffix("Proto")
    while True:
        fields = node.DESCRIPTOR.fields_by_name
        if "output_column_list" in fields:
            return Analysis(kind, tuple((c.name, type_name(c.column.type)) for c in node.output_column_list))
        if "column_definition_list" in fields:
            return Analysis(kind, tuple((c.name, type_name(c.type)) for c in node.column_definition_list))
        if "parent" not in fields:
            return Analysis(kind, ())
        node = node.parent


def analyzer(settings: Settings) -> Analyzer:
    """GoogleSQL's analyzer for ``settings``; raises EmbedError (exit 2) when the extra is not installed."""
    require()
    return Analyzer(settings)


def verify(settings: Settings, statements: Iterable[Any]) -> str:
    """Analyze ``statements``: a one-line verdict when GoogleSQL accepts all, else EmbedError (exit 1) naming each."""
    statements = list(statements)
    rejected = analyzer(settings).check(statements)
    if rejected:
        lines = "\n".join(f"  {r.statement}: {r.reason}".replace("\n", "\n    ") for r in rejected)
        raise EmbedError(f"GoogleSQL rejects {len(rejected)} of {len(statements)} statements:\n{lines}", VALIDATION)
    return f"GoogleSQL (BigQuery's language options, offline) accepts all {len(statements)} statements."
