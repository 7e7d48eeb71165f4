"""The archive keeps read tables up to a size in memory, most recently read first."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from vultr_scraper_core.history import files
from vultr_scraper_core.history.files import ArchiveError, open_archive


def test_read_tables_are_kept_up_to_a_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = open_archive(str(tmp_path))
    tables = {f"day-{n}.parquet": pa.table({"n": list(range(1000 * (n + 1)))}) for n in range(4)}
    for path, table in tables.items():
        archive.write_table(path, table)
    sizes = {path: archive.read_table(path).nbytes for path in tables}  # cached at the default
    budget = sizes["day-2.parquet"] + sizes["day-3.parquet"]
    monkeypatch.setattr(files, "_CACHED_BYTES", budget)
    archive = open_archive(str(tmp_path))
    for path in tables:
        assert archive.read_table(path).equals(tables[path])
    for path in tables:
        (tmp_path / path).unlink()
    # The two last read fit the budget and come from memory; the older ones were dropped.
    assert archive.read_table("day-3.parquet").equals(tables["day-3.parquet"])
    assert archive.read_table("day-2.parquet").equals(tables["day-2.parquet"])
    with pytest.raises(ArchiveError, match=r"day-1\.parquet"):
        archive.read_table("day-1.parquet")
