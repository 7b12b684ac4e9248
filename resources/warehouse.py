"""The warehouse: one DuckDB file for staging tables, quarantine and run statistics.

Geometry tables are exchanged as GeoParquet (written by the assets); the warehouse holds their
attributes with the geometry as WKB so that SQL users can join and filter without the DuckDB spatial
extension (which cannot be installed offline with duckdb 2.x). Connections are short-lived so that
several processes (multiprocess executor) can take turns on the file.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dagster as dg
import duckdb
import pandas as pd

from .settings import SettingsResource


class WarehouseResource(dg.ConfigurableResource):
    """DuckDB warehouse. Without ``path``: ``<output_dir>/warehouse.duckdb`` of the settings."""

    settings: SettingsResource
    path: str | None = None

    @property
    def db_path(self) -> str:
        return self.path or str(self.settings.load().warehouse_path)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        Path(self.db_path).parent.mkdir(parents=True, exist_ok=True)
        con = _connect_with_retry(self.db_path, read_only)
        try:
            yield con
        finally:
            con.close()

    def replace_table(self, table: str, frame: pd.DataFrame) -> int:
        """Replace ``table`` by ``frame`` (geometry columns must already be WKB/WKT); returns rows."""
        with self.connect() as con:
            con.register("_frame", frame)
            con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM _frame')
            con.unregister("_frame")
        return len(frame)

    def replace_rows(self, table: str, frame: pd.DataFrame, where: dict[str, str]) -> int:
        """Delete the rows matching ``where`` (column = value) and append ``frame``."""
        cond = " AND ".join(f'"{k}" = ?' for k in where)
        with self.connect() as con:
            con.register("_frame", frame)
            exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                 [table]).fetchone()[0]
            if not exists:
                con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM _frame LIMIT 0')
            con.execute(f'DELETE FROM "{table}" WHERE {cond}', list(where.values()))
            con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM _frame')
            con.unregister("_frame")
        return len(frame)

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with self.connect(read_only=True) as con:
            return con.execute(sql, params or []).df()

    def tables(self) -> list[str]:
        if not Path(self.db_path).exists():
            return []
        return sorted(self.query("SELECT table_name FROM information_schema.tables")["table_name"])


def _connect_with_retry(path: str, read_only: bool, attempts: int = 50) -> duckdb.DuckDBPyConnection:
    delay = 0.05
    for i in range(attempts):
        try:
            if read_only and not Path(path).exists():
                return duckdb.connect(path)  # creates an empty warehouse
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as exc:  # another process holds the write lock
            if "lock" not in str(exc).lower() or i == attempts - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
    raise RuntimeError("unreachable")
