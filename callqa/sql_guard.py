"""`callqa sql`: analysts' ad-hoc SQL on a connection that cannot write, with a time limit and Ctrl-C.

Three guards, because a read-only DuckDB connection still writes *other* files (COPY ... TO, ATTACH, INSTALL,
EXPORT DATABASE): DuckDB's own parser types every statement before the file is opened, and only reads run (an
EXPLAIN is typed by the statement it explains, found with DuckDB's tokenizer); the connection is read-only; and
it is opened with file and network access off and its configuration locked, so a read that DuckDB types as
SELECT still cannot touch anything but the database.

DuckDB runs a query in C++ without returning to Python, so a signal handler would only run once the query has
finished: the query runs on a worker thread while this one waits, and Ctrl-C or the time limit interrupt it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from .database import parser
from .errors import QueryTimeout, ReadOnlyError, UsageError
from .store import Store

if TYPE_CHECKING:
    import pandas as pd

READ_STATEMENTS = frozenset({duckdb.StatementType.SELECT})  # also DESCRIBE, SHOW, SUMMARIZE, FROM-first, VALUES
_ANALYZE = frozenset({"analyze", "analyse"})
_ALLOWED = "use SELECT, WITH, DESCRIBE, SHOW, SUMMARIZE or EXPLAIN"


def _explained(query: str) -> str:
    """The text of the statement that an ``EXPLAIN [ANALYZE | (options)]`` statement wraps.

    DuckDB's tokenizer skips comments and knows string literals, so ``(FORMAT "json)")`` or ``EXPLAIN/**/DELETE``
    are split where DuckDB's parser splits them."""
    tokens = duckdb.tokenize(query)
    bounds = [p for p, _ in tokens[1:]] + [len(query)]
    texts = [(pos, kind, _without_comments(query[pos:end])) for (pos, kind), end in zip(tokens, bounds)]
    rest = texts[1:]  # texts[0] is the EXPLAIN keyword
    if rest and rest[0][1] == duckdb.token_type.keyword and rest[0][2].lower() in _ANALYZE:
        rest = rest[1:]
    elif rest and rest[0][1] == duckdb.token_type.operator and rest[0][2].startswith("("):
        depth = 0
        for i, (_, kind, text) in enumerate(rest):
            if kind == duckdb.token_type.operator:
                depth += text.count("(") - text.count(")")
            if depth <= 0:
                rest = rest[i + 1:]
                break
    return query[rest[0][0]:] if rest else ""


def _without_comments(text: str) -> str:
    """A token's text: from its start to the next token, less the comment or space that may follow it."""
    return text.split("/*", 1)[0].split("--", 1)[0].strip()


def _refusal(statement: duckdb.Statement, con: duckdb.DuckDBPyConnection) -> str | None:
    """Why a statement may not run, or None for a read. EXPLAIN ANALYZE runs its statement, so an EXPLAIN is a
    read only if what it explains is one (DuckDB's grammar allows no EXPLAIN inside an EXPLAIN)."""
    if statement.type == duckdb.StatementType.EXPLAIN:
        try:
            inner = con.extract_statements(_explained(statement.query))
        except duckdb.Error:
            inner = []
        if len(inner) != 1 or inner[0].type == duckdb.StatementType.EXPLAIN:
            return "an EXPLAIN whose statement cannot be checked"
        statement = inner[0]
    if statement.type in READ_STATEMENTS:
        return None
    if not statement.query.strip():  # PIVOT without an IN list: DuckDB first creates an ENUM type of the values
        return "a statement DuckDB adds to create a type (a PIVOT needs its values listed: PIVOT t ON c IN (...))"
    return f"a {statement.type.name} statement"


def check_read_only(sql: str, con: duckdb.DuckDBPyConnection | None = None) -> list[duckdb.Statement]:
    """Parse ``sql`` with DuckDB's parser (on ``con``, else an offline in-memory connection); raise ReadOnlyError
    unless every statement only reads, UsageError if it does not parse."""
    con = con or parser()
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise UsageError(f"SQL syntax: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    if not statements:
        raise UsageError("no SQL statement given")
    for statement in statements:
        reason = _refusal(statement, con)
        if reason:
            snippet = " ".join(statement.query.split())[:60]
            raise ReadOnlyError(f"refused {reason} ({snippet!r}): callqa sql only reads - {_ALLOWED}; "
                                "nothing was run and the database is unchanged")
    return statements


def _execute(con: duckdb.DuckDBPyConnection, statements: list[duckdb.Statement]) -> pd.DataFrame:
    try:
        for statement in statements[:-1]:
            con.execute(statement)
        return con.execute(statements[-1]).df()
    except duckdb.PermissionException as exc:
        raise ReadOnlyError(f"callqa sql reads only the callqa database; files and network are off: "
                            f"{str(exc).splitlines()[0]}") from exc
    except duckdb.InterruptException as exc:
        raise KeyboardInterrupt from exc
    except duckdb.Error as exc:
        raise UsageError(f"SQL: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc


def run_sql(db_path: Path | str | None, sql: str, timeout_s: float | None = None) -> pd.DataFrame:
    """Run read-only SQL against the callqa database; the last statement's rows as a DataFrame.

    Stops the query after ``timeout_s`` seconds (QueryTimeout) or on Ctrl-C (KeyboardInterrupt)."""
    check_read_only(sql)  # refuse before the file is even opened
    with Store(db_path, read_only=True, external_access=False) as store:
        store.con.execute("SET lock_configuration = true")
        statements = check_read_only(sql, store.con)  # run what this connection parsed, checked again
        outcome: dict[str, object] = {}

        def work() -> None:
            try:
                outcome["rows"] = _execute(store.con, statements)
            except BaseException as exc:  # handed to the waiting thread
                outcome["error"] = exc

        worker = threading.Thread(target=work, name="callqa-sql", daemon=True)
        worker.start()
        try:
            worker.join(timeout_s)
        except KeyboardInterrupt:
            store.con.interrupt()
            worker.join()
            raise
        if worker.is_alive():
            store.con.interrupt()
            worker.join()
            raise QueryTimeout(f"the query ran longer than --timeout {timeout_s:g} s and was stopped; "
                               "nothing was changed")
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["rows"]  # type: ignore[return-value]
