"""Text from outside (Redis errors, API payloads, URLs) made safe to print or log: bounded."""

from __future__ import annotations

LINE_LIMIT = 300  # characters: an error line is for a person, not a dump


def bounded(text: str, limit: int = LINE_LIMIT) -> str:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis marks the cut)."""
    line = " ".join(text[: limit * 4].split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
