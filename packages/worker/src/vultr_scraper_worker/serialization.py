"""msgpack (msgspec) for every job and result arq stores, on the worker and the enqueue side.

arq pickles by default, so anyone able to write to Redis could run code in the worker. These
functions replace pickle everywhere: a payload that is not msgpack (a pickle planted in Redis, a
job from a producer still using pickle) is refused with ``RefusedPayload``; arq then fails that
job without running it, and the worker records the refusal (see ``records.failed``). Nothing
here ever calls ``pickle``.

Results that msgpack cannot carry are made plain instead of being lost: an exception becomes
``{"error_type": ..., "error": ...}`` (arq stores a failed job's exception as its result), sets
become lists and anything else its ``str``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from arq.jobs import DeserializationError

# Every pickle since protocol 2 starts with the PROTO opcode; older ones with "(" or a letter.
_PICKLE_PROTO = b"\x80"
_EXCERPT = 120


class RefusedPayload(DeserializationError):
    """A job or result in Redis that is not msgpack; it is never interpreted."""


def _plain(value: Any) -> Any:
    if isinstance(value, BaseException):
        return {"error_type": type(value).__name__, "error": str(value)}
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


_encoder = msgspec.msgpack.Encoder(enc_hook=_plain)
_decoder = msgspec.msgpack.Decoder(dict[str, Any])


def serialize(data: dict[str, Any]) -> bytes:
    """arq's ``job_serializer``: a job (``{t, f, a, k, et}``) or a result as msgpack."""
    return _encoder.encode(data)


def deserialize(data: bytes) -> dict[str, Any]:
    """arq's ``job_deserializer``: msgpack only; anything else raises ``RefusedPayload``."""
    if data[:1] == _PICKLE_PROTO:
        raise RefusedPayload(f"refused a pickle payload ({len(data)} bytes); only msgpack is read")
    try:
        return _decoder.decode(data)
    except msgspec.DecodeError as error:
        raise RefusedPayload(f"refused a payload that is not msgpack: {error}") from None


def describe_payload(data: bytes | None) -> str:
    """A short, harmless description of a raw payload for logs and failed-job records."""
    if data is None:
        return "(missing)"
    kind = "pickle" if data[:1] == _PICKLE_PROTO else "unknown format"
    return f"{kind}, {len(data)} bytes, starts {data[:24].hex()}"[:_EXCERPT]
