"""msgpack for jobs and results; pickles and garbage are refused without being interpreted."""

from __future__ import annotations

import os
import pickle
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from arq.jobs import (
    DeserializationError,
    deserialize_job_raw,
    deserialize_result,
    serialize_job,
    serialize_result,
)

from vultr_scraper_worker.serialization import (
    RefusedPayload,
    describe_payload,
    deserialize,
    serialize,
)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_job_round_trip_through_arq() -> None:
    raw = serialize_job("scrape-catalog", ("a", 1), {"k": [1, 2]}, 2, 1_700_000_000_000,
                        serializer=serialize)  # fmt: skip
    function, args, kwargs, job_try, enqueued = deserialize_job_raw(raw, deserializer=deserialize)
    assert (function, list(args), kwargs, job_try, enqueued) == (
        "scrape-catalog",
        ["a", 1],  # msgpack has no tuples
        {"k": [1, 2]},
        2,
        1_700_000_000_000,
    )


def test_results_keep_plain_data_and_turn_exceptions_into_text() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ok = serialize_result("f", (), {}, 1, 0, True, {"status": "success", "at": when, "n": 3},
                          0, 1, "ref", "q", "id", serializer=serialize)  # fmt: skip
    assert ok is not None
    result = deserialize_result(ok, deserializer=deserialize)
    assert result.result == {"status": "success", "at": when, "n": 3}
    failed = serialize_result("f", (), {}, 1, 0, False, ValueError("bad plan"),
                              0, 1, "ref", "q", "id", serializer=serialize)  # fmt: skip
    assert failed is not None
    assert deserialize_result(failed, deserializer=deserialize).result == {
        "error_type": "ValueError",
        "error": "bad plan",
    }


def test_unusual_values_become_plain() -> None:
    decoded = deserialize(serialize({"set": {1}, "decimal": Decimal("1.50"), "path": Path("/x")}))
    assert decoded == {"set": [1], "decimal": "1.50", "path": "/x"}


def test_a_pickle_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"t": 1, "f": "noop", "a": (_Exploit(marker),), "k": {}, "et": 0})
    with pytest.raises(RefusedPayload, match="pickle"):
        deserialize(payload)
    # arq wraps it: the job fails on pickup as "unable to deserialize job".
    with pytest.raises(DeserializationError):
        deserialize_job_raw(payload, deserializer=deserialize)
    assert not marker.exists()
    assert describe_payload(payload).startswith("pickle, ")


@pytest.mark.parametrize("payload", [b"", b"\xc1", b"not msgpack at all", b"\x93\x01\x02\x03"])
def test_garbage_and_non_mappings_are_refused(payload: bytes) -> None:
    with pytest.raises(RefusedPayload):
        deserialize(payload)


def test_protocol_0_pickle_is_refused_too(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"a": _Exploit(marker)}, protocol=0)
    with pytest.raises(RefusedPayload):
        deserialize(payload)
    assert not marker.exists()
