"""Shapes shared by several documents: the error document and the paging fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, overload

import msgspec
from msgspec import Meta

NextCursor = Annotated[
    str | None, Meta(description="pass as `cursor` for the next page; null on the last page")
]
HasMore = Annotated[bool, Meta(description="true when another page follows")]
Count = Annotated[int, Meta(ge=0)]


class Error(msgspec.Struct, kw_only=True):
    """RFC 9457 problem details (application/problem+json)."""

    type: Annotated[str, Meta(description="about:blank: the status says it all.")]
    title: Annotated[str, Meta(description="The status's phrase.")]
    status: int
    detail: Annotated[str, Meta(description="What went wrong, for people.")]
    error: Annotated[str, Meta(description="The same text as detail (older clients).")]


@overload
def to_second(moment: datetime) -> datetime: ...
@overload
def to_second(moment: None) -> None: ...
@overload
def to_second(moment: datetime | None) -> datetime | None: ...


def to_second(moment: datetime | None) -> datetime | None:
    """A time as the documents that show times to the second give it (UTC, no fraction)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0)
