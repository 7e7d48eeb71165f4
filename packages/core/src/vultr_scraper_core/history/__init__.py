"""History beyond the Redis window: the on-disk archive, the job that moves history into it,
and the one query layer that reads both (``query.History``).

* ``files``: the archive's storage (a directory, or an S3-compatible bucket), files written
  once and atomically, read with clear errors;
* ``tables``: the Arrow schemas of the archived datasets and the conversions to them;
* ``window``: the Redis keys that say where the window starts and which files hold each day;
* ``mover``: moves whole days out of Redis into the archive under a Redis lock;
* ``query``: "as of", history, statistics and exports across the window and the archive;
* ``export``: the export formats (CSV, Parquet, JSON lines) and their columns;
* ``stats``: stock reliability (share in stock, streaks, time until back) from intervals.
"""
