"""History beyond the Redis window: the on-disk archive, the job that moves history into it,
and the one query layer that reads both (``query.History``).

* ``files``: the archive's storage (a directory, or an S3-compatible bucket), files written
  once and atomically, read with clear errors;
* ``tables``: the Arrow schemas of the archived datasets and the conversions to them;
* ``window``: the Redis keys that say where the window starts and which files hold each day;
* ``mover``: moves whole days out of Redis into the archive under a Redis lock;
* ``query``: "as of", history, statistics and exports across the window and the archive;
* ``export``: the export formats (CSV, Parquet, JSON lines) and their columns;
* ``stats``: stock reliability (share in stock, streaks, time until back) from intervals;
* ``snapshot``: the current catalogue as one SQLite file.

The names below are here, away from pyarrow, so the command line can offer them cheaply.
"""

# What can be exported, and in which formats (``snapshot``: SQLite only).
EXPORTS = ("prices", "stock", "changes", "catalog", "snapshot")
EXPORT_FORMATS = ("csv", "parquet", "jsonl", "sqlite")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "sqlite": "application/vnd.sqlite3",
}


def export_problem(what: str, fmt: str) -> str | None:
    """Why ``what`` cannot be exported as ``fmt`` (None: it can)."""
    if what not in EXPORTS:
        return f"unknown export {what!r}; one of {', '.join(EXPORTS)}"
    if fmt not in EXPORT_FORMATS:
        return f"unknown format {fmt!r}; one of {', '.join(EXPORT_FORMATS)}"
    if (what == "snapshot") != (fmt == "sqlite"):
        return "the snapshot is a SQLite file (format sqlite), and only the snapshot is"
    return None
