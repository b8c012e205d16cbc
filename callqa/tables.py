"""Rows into DuckDB through registered Arrow tables (bulk, never row by row)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

import duckdb

if TYPE_CHECKING:
    import pyarrow as pa


def arrow_table(rows: Iterable[Sequence], columns: Sequence[str]) -> pa.Table:
    """Rows as an Arrow table, which DuckDB scans in place (registering a pandas frame cost 30 ms per call)."""
    import pyarrow as pa  # on the first write: `callqa score` forks its ASR workers before pyarrow starts threads

    return pa.table(dict(zip(columns, map(list, zip(*rows)))) or {name: [] for name in columns})


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pa.Table) -> None:
    if frame.num_rows == 0:
        return
    name = f"_callqa_{table}"
    con.register(name, frame)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {name}")
    finally:
        con.unregister(name)
