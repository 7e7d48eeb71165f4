"""Giving up on Redis ends the process even when its teardown hangs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HANGING_TEARDOWN = textwrap.dedent(
    """
    import threading, time
    from vultr_scraper_worker.worker_main import arm_exit_watchdog

    arm_exit_watchdog(69, 0.3)
    # A non-daemon thread that never ends: without the watchdog the process would live on.
    threading.Thread(target=lambda: time.sleep(3600)).start()
    """
)

FINISHING_PROCESS = textwrap.dedent(
    """
    from vultr_scraper_worker.worker_main import arm_exit_watchdog

    arm_exit_watchdog(69, 3600)
    print("done")
    """
)


def test_watchdog_ends_a_process_whose_teardown_hangs() -> None:
    result = subprocess.run(
        [sys.executable, "-c", HANGING_TEARDOWN], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 69, result.stderr


def test_watchdog_does_not_keep_a_finishing_process_alive() -> None:
    # The timer is an hour away: waiting for it would hit the 60 s timeout and fail the test.
    result = subprocess.run(
        [sys.executable, "-c", FINISHING_PROCESS], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
