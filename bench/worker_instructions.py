"""Benchmark: per-job overhead against bare arq in executed instructions (callgrind), noise-free.

``worker_overhead.py`` measures time, which on a shared machine moves by more than the changes
it is asked to judge. This script counts the instructions the worker process executes instead:
the same no-op jobs, the same two variants (``arq`` and ``wrapper-only``, see
``worker_overhead.py``), each drained once with ``--small`` and once with ``--large`` jobs under
``valgrind --tool=callgrind``. The difference of the two counts divided by the difference of
the job counts is the cost of one job, free of start-up and import costs; the ratio of the two
variants' per-job counts is printed. Counts repeat to within a fraction of a percent whatever
else the machine is doing.

Instructions are not time: cache misses and system calls are not in them, so the time ratio
(``worker_overhead.py``) is larger. What this one answers exactly is whether a change made the
per-job work smaller. Needs ``valgrind`` (Debian: ``apt-get install valgrind``); the runs take a
few minutes. From the repository root:

    python3 -m hatch run python bench/worker_instructions.py [--small 500] [--large 1500]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

VARIANTS = ("arq", "wrapper-only")
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def count(variant: str, jobs: int) -> int:
    """Instructions executed by one ``worker_overhead.py --only`` drain under callgrind (the
    redis-server it starts is a child process, which valgrind does not trace)."""
    with tempfile.TemporaryDirectory(prefix="vs-callgrind-") as directory:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={directory}/out",
            sys.executable,
            str(Path(__file__).with_name("worker_overhead.py")),
            "--only",
            variant,
            "--jobs",
            str(jobs),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    match = _COLLECTED.search(done.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=500, help="jobs in the smaller run")
    parser.add_argument("--large", type=int, default=1500, help="jobs in the larger run")
    options = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("skipped: valgrind not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    if options.large <= options.small:
        parser.error("--large must be greater than --small")
    runs = [(variant, jobs) for variant in VARIANTS for jobs in (options.small, options.large)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # each run is one CPU-bound process
        totals = dict(zip(runs, pool.map(lambda run: count(*run), runs), strict=True))
    per_job = {
        variant: (totals[variant, options.large] - totals[variant, options.small])
        / (options.large - options.small)
        for variant in VARIANTS
    }
    print(f"instructions per no-op job (callgrind; runs of {options.small} and "
          f"{options.large} jobs), python {sys.version.split()[0]}")  # fmt: skip
    for variant in VARIANTS:
        print(f"  {variant:>13}: {per_job[variant] / 1000:8.1f} k")
    ratio = per_job["wrapper-only"] / per_job["arq"]
    print(f"  ratio wrapper-only/arq: {ratio:.3f}x (like for like: wrapper, logging, serialiser)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
