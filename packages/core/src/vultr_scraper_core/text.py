"""Text from outside (Redis errors, API payloads, URLs) made safe to print or log: bounded,
and with terminal control characters escaped."""

from __future__ import annotations

import re

# C0 controls but tab, DEL and the C1 controls: ESC ] 0 ; ... BEL would retitle a terminal.
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")

LINE_LIMIT = 300  # characters: an error line is for a person, not a dump


def bounded(text: str, limit: int = LINE_LIMIT) -> str:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis marks the cut)."""
    line = " ".join(text[: limit * 4].split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def printable(text: str) -> str:
    """``text`` with every terminal control character shown as an escape (``\\x1b``), so
    external data printed to a terminal cannot move the cursor, retitle it or hide text."""
    return _CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
