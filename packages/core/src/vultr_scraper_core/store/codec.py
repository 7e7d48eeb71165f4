"""One JSON codec for everything the store writes, and small time helpers.

Stored records keep money exact: Decimal fields are written as decimal strings and read back
into Decimal fields; untyped values are plain JSON (see ``models.plain``).
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_ENCODER = msgspec.json.Encoder()


def encode(value: Any) -> bytes:
    return _ENCODER.encode(value)


def decode(data: bytes | str, type_: type[T]) -> T:
    return msgspec.json.decode(data, type=type_)


def text(value: bytes | str) -> str:
    """A Redis reply as text: clients made without ``decode_responses`` return bytes."""
    return value.decode() if isinstance(value, bytes) else value


def compress(data: bytes, level: int = 6) -> bytes:
    """zlib at ``level``; ``decompress`` reads every level, so a level can change at any time
    without touching what is stored."""
    return zlib.compress(data, level)


def decompress(data: bytes) -> bytes:
    return zlib.decompress(data)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(moment: datetime) -> int:
    # Integer arithmetic: float timestamps can land one millisecond short.
    return (as_utc(moment) - _EPOCH) // timedelta(milliseconds=1)


def from_ms(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, UTC)
