"""Text made safe to print or log: URL passwords masked wherever a URL is quoted."""

from __future__ import annotations

import pytest

from vultr_scraper_core.text import mask_urls


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "request to https://alice:s3cret@api.example/v2/plans failed",
            "request to https://alice:***@api.example/v2/plans failed",
        ),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://:p@ss@host/0", "redis://:***@host/0"),  # a raw "@" in the password
        ("http://u:p@[::1]:8080/x?y=1", "http://u:***@[::1]:8080/x?y=1"),
        (
            "from 'https://a:b@one.example' then \"http://c:d@two.example/\"",
            "from 'https://a:***@one.example' then \"http://c:***@two.example/\"",
        ),
        ("HTTP 503 from https://u:x@h/a:b@c", "HTTP 503 from https://u:***@h/a:b@c"),
        # Nothing to mask: no password, an e-mail address, no URL.
        ("https://token@host/path", "https://token@host/path"),
        ("ssh://git@github.com:22/repo", "ssh://git@github.com:22/repo"),
        (
            "mail ops@example.com about http://host:80/",
            "mail ops@example.com about http://host:80/",
        ),
        ("plain text", "plain text"),
    ],
)
def test_mask_urls(text: str, expected: str) -> None:
    assert mask_urls(text) == expected
