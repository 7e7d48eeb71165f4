"""vultr-scraper worker: the arq worker process, the ``vultr-scraper`` CLI and the HTTP API.

A map, in the order a job meets it:

* ``plans``: which jobs a worker serves and when (``JobPlan`` = a job and its ``Schedule``);
* ``settings``: arq's ``Worker`` keyword arguments for those plans (functions, cron ticks);
* ``wrapper``: one try of a job (``JobTry``): log lines, timeout, retry or failure, records;
* ``worker_main``: start-up and exit of ``vultr-scraper worker`` (``build_worker``, ``serve``);
  ``project_worker``: arq's ``Worker`` with the project's additions; ``early_failures``: jobs
  arq fails before they run;
* ``records``: what is recorded about jobs in Redis (runs, failed jobs, counters, heartbeats,
  the queue as arq keeps it);
* ``enqueue``: the queue client (msgpack) and enqueueing; ``serialization``: the msgpack codec;
  ``runtime``: Redis (configured or embedded) and the jobs' ``ctx``;
* ``cli``: the command line; ``api``: the HTTP server (JSON API, metrics, feed, status page).
"""
