"""What the project records about jobs in Redis, read by the CLI, the API and the worker.

arq keeps little (results for ``keep_result`` seconds, no failed list, one shared health key),
so the worker writes its own records, each in one module:

* ``runs``: every try of every job (the run history) and each job's latest run and success;
* ``failed``: jobs that failed for good, with their arguments, and retrying them;
* ``stats``: cumulative counters per job and outcome, and a duration histogram (``/metrics``);
* ``heartbeats``: each running worker's heartbeat (``vultr-scraper check``);
* ``queue``: what is queued and running, read from arq's own keys.
"""
