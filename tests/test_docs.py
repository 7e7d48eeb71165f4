"""The configuration reference documents every key the loader accepts, with its default.

docs/configuration.md has one section (``## `[redis]` ...``) per table; a key is documented
when a Markdown table row in its table's section names it in the first cell (`` `key` ``) and
shows its default: the TOML value in backticks (`` `30.0` ``, `` `"vs"` ``, `` `[]` ``),
``required`` for a key without one, ``unset`` for one that is off unless given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import msgspec
import pytest

from vultr_scraper_core.config import Config
from vultr_scraper_worker.exit_status import MEANINGS, ExitStatus

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
EVERY_MINUTE = list(range(60))


@dataclass(frozen=True)
class Key:
    table: str  # as TOML names it: "redis", "catalog.gate", "health.endpoints"
    name: str
    default: str  # what the documentation must show

    @property
    def dotted(self) -> str:
        return f"{self.table}.{self.name}"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return msgspec.json.encode(value).decode()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {_toml(item)}" for key, item in value.items()) + "}"
    return str(value)


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if value == EVERY_MINUTE:
        return "every minute"
    return f"`{_toml(value)}`"


def _struct_of(annotation: Any) -> tuple[type[msgspec.Struct] | None, bool]:
    """The Struct a field holds, and whether it holds a list of them (an array of tables)."""
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation, False
    if get_origin(annotation) is list:
        inner, _ = _struct_of(get_args(annotation)[0])
        return inner, inner is not None
    return None, False


def _default(field: Any) -> Any:
    if field.required:
        return msgspec.NODEFAULT
    if field.default is not msgspec.NODEFAULT:
        return field.default
    return field.default_factory()


def _tables(
    struct: type[msgspec.Struct], table: str = ""
) -> list[tuple[str, type[msgspec.Struct]]]:
    """Every table (as TOML names it) and the Struct it reads into."""
    found = [(table, struct)]
    hints = get_type_hints(struct)
    for name in struct.__struct_fields__:
        nested, _array = _struct_of(hints[name])
        if nested is not None and table != "schedules":
            found += _tables(nested, f"{table}.{name}".strip("."))
    return found


def _keys(root: type[msgspec.Struct]) -> list[Key]:
    """Every key with its documented default. A table type met twice (an endpoint's own
    maintenance windows are ``[[maintenance]]``'s) is documented once, at its shortest name."""
    chosen: dict[type[msgspec.Struct], str] = {}
    for table, struct in _tables(root):
        if struct not in chosen or table.count(".") < chosen[struct].count("."):
            chosen[struct] = table
    keys: list[Key] = []
    for struct, table in chosen.items():
        hints = get_type_hints(struct)
        for field in msgspec.inspect.type_info(struct).fields:  # type: ignore[attr-defined]
            nested, _array = _struct_of(hints[field.name])
            default = _default(field)
            if nested is not None and table == "schedules":
                for name in nested.__struct_fields__:  # a row per job: their defaults differ
                    shown = _shown(getattr(default, name))
                    keys.append(Key(f"schedules.{field.name}", name, shown))
            elif nested is None:
                shown = "required" if default is msgspec.NODEFAULT else _shown(default)
                keys.append(Key(table, field.name, shown))
    return keys


def _section(text: str, table: str) -> str | None:
    """The section whose heading names ``[table]`` or ``[[table]]``; a schedule's rows are in
    the ``[schedules.<job>]`` section."""
    if table.startswith("schedules."):
        table = "schedules.<job>"
    heading = re.compile(rf"^## .*`\[{{1,2}}{re.escape(table)}\]{{1,2}}`", re.MULTILINE)
    found = heading.search(text)
    if found is None:
        return None
    following = text.find("\n## ", found.end())
    return text[found.start() : following if following != -1 else len(text)]


def _documents(row: str, key: Key) -> bool:
    cells = row.strip().strip("|").split("|")
    if len(cells) < 2:
        return False
    # A schedule's row is its job's: `scrape_catalog` | `true` | `[0, 15, 30, 45]` | ...
    name = key.table.split(".", 1)[1] if key.table.startswith("schedules.") else key.name
    if f"`{name}`" not in cells[0]:
        return False
    if key.table.startswith("schedules."):
        column = SCHEDULE_COLUMNS.index(key.name) + 1
        return len(cells) > column and key.default in cells[column]
    return key.default in row


SCHEDULE_COLUMNS = ("enabled", "minute", "hour", "timeout")
KEYS = _keys(Config)


@pytest.mark.parametrize("key", KEYS, ids=[key.dotted for key in KEYS])
def test_every_config_key_is_documented_with_its_default(key: Key) -> None:
    text = DOC.read_text(encoding="utf-8")
    section = _section(text, key.table)
    table = "schedules.<job>" if key.table.startswith("schedules.") else key.table
    assert section is not None, (
        f"docs/configuration.md has no section headed `[{table}]` for {key.dotted}"
    )
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert any(_documents(row, key) for row in rows), (
        f"docs/configuration.md, section `[{table}]`: no table row for `{key.name}` "
        f"showing its default {key.default}"
        + (
            f" in the {key.name} column of the `{key.table.split('.', 1)[1]}` row"
            if key.table.startswith("schedules.")
            else ""
        )
    )


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
