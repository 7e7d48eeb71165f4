"""Text from outside (Redis errors, API payloads, URLs) made safe to print or log: bounded,
with terminal control characters escaped, and with the passwords of the URLs it quotes masked."""

from __future__ import annotations

import re

# C0 controls but tab, DEL and the C1 controls: ESC ] 0 ; ... BEL would retitle a terminal.
_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")

# A URL's scheme and authority in running text: up to the first character that ends a host
# (path, query, fragment, whitespace, or a quote or bracket around the URL).
_URL_AUTHORITY = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^\s/?#\"'<>\\]*)")


def mask_urls(text: str) -> str:
    """Every URL in ``text`` with the password of its userinfo masked, the user name kept:
    ``request to https://alice:pw@host/v2 failed`` -> ``... https://alice:***@host/v2 ...``.

    For text that may quote a URL from anywhere (an error message, a log line, a stored error),
    where ``mask_url`` needs the URL alone. A password holding a raw ``@`` is masked whole (the
    host is what follows the last ``@``, as ``urlsplit`` reads it).
    """
    if "@" not in text:  # the common case, and the cheap test
        return text

    def mask(match: re.Match[str]) -> str:
        userinfo, at, host = match.group(2).rpartition("@")
        user, colon, password = userinfo.partition(":")
        if not (at and colon and password):
            return match.group(0)
        return f"{match.group(1)}{user}:***@{host}"

    return _URL_AUTHORITY.sub(mask, text)


LINE_LIMIT = 300  # characters: an error line is for a person, not a dump


def bounded(text: str, limit: int = LINE_LIMIT) -> str:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis marks the cut)."""
    line = " ".join(text[: limit * 4].split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def printable(text: str) -> str:
    """``text`` with every terminal control character shown as an escape (``\\x1b``), so
    external data printed to a terminal cannot move the cursor, retitle it or hide text."""
    return _CONTROLS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
