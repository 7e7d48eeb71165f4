"""The configuration reference names every key the loader accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import msgspec
import pytest

from vultr_scraper_core.config import Config
from vultr_scraper_worker.exit_status import MEANINGS, ExitStatus

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def _struct_of(annotation: Any) -> type[msgspec.Struct] | None:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    if get_origin(annotation) is list:
        return _struct_of(get_args(annotation)[0])
    return None


def _keys(struct: type[msgspec.Struct], prefix: str = "") -> list[str]:
    keys: list[str] = []
    hints = get_type_hints(struct)
    for name in struct.__struct_fields__:
        nested = _struct_of(hints[name])
        if nested is None:
            keys.append(f"{prefix}{name}")
        elif prefix == "schedules.":
            keys.append(f"{prefix}{name}")  # one table per job, documented together
        else:
            keys.extend(_keys(nested, f"{prefix}{name}."))
    return keys


@pytest.mark.parametrize("key", _keys(Config))
def test_every_config_key_is_documented(key: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    leaf = key.rsplit(".", 1)[-1]
    assert re.search(rf"`{re.escape(leaf)}`", text), f"{key} is missing from docs/configuration.md"


README = DOC.parents[1] / "README.md"


def test_readme_exit_statuses_are_the_cli_table() -> None:
    """The README's exit-status table lists exactly the statuses of ``exit_status.ExitStatus``,
    which ``vultr-scraper --help`` prints."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Exit status") :]
    section = section[: section.index("\n## ", 1)]
    documented = [int(number) for number in re.findall(r"^\| (\d+) \|", section, re.MULTILINE)]
    assert documented == [int(status) for status in ExitStatus]
    assert set(MEANINGS) == set(ExitStatus)
