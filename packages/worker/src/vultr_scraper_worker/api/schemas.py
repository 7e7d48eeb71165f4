"""JSON Schemas of the response documents, used in the OpenAPI document.

They describe the fields every client may rely on; objects stay open (additional properties
allowed) so that a field added by a store module is not a breaking change.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

TIME: Schema = {"type": "string", "format": "date-time"}
NULLABLE_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}
MONEY: Schema = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "USD"}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


RUN = obj(
    {
        "function": {"type": "string"},
        "job_id": {"type": "string"},
        "job_try": {"type": "integer"},
        "start": TIME,
        "end": TIME,
        "duration": {"type": "number", "description": "seconds"},
        "outcome": {
            "type": "string",
            "enum": ["success", "quarantined", "failed", "retry", "interrupted"],
        },
    },
    {
        "error": {"type": ["string", "null"]},
        "error_type": {"type": ["string", "null"]},
        "summary": {"type": "object"},
    },
)

SCHEDULED_JOB = obj(
    {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "schedule": {"type": "string", "description": "cron fields in UTC, or `off`"},
        "enabled": {"type": "boolean"},
        "timeout": {"type": "number"},
        "next_run": NULLABLE_TIME,
        "last_run": nullable(RUN),
        "last_success": NULLABLE_TIME,
    }
)

# A job's arguments are whatever JSON its function takes: items of any type (an empty schema),
# so generated clients accept them instead of failing on an array without items.
JOB_ARGS: Schema = {"type": "array", "items": {}}
JOB_KWARGS: Schema = {"type": "object", "additionalProperties": {}}

QUEUED_JOB = obj(
    {
        "id": {"type": "string"},
        "function": {"type": "string"},
        "state": {"type": "string", "enum": ["queued", "deferred", "running"]},
        "due_at": NULLABLE_TIME,
        "enqueued_at": NULLABLE_TIME,
        "tries": {"type": "integer"},
    },
    {"args": JOB_ARGS, "kwargs": JOB_KWARGS},
)

FAILED_JOB = obj(
    {
        "id": {"type": "string"},
        "function": {"type": "string"},
        "error": {"type": "string"},
        "error_type": {"type": "string"},
        "tries": {"type": "integer"},
        "failed_at": TIME,
        "retryable": {"type": "boolean"},
    },
    {
        "args": JOB_ARGS,
        "kwargs": JOB_KWARGS,
        "enqueued_at": NULLABLE_TIME,
        "started_at": NULLABLE_TIME,
        "retried_as": {"type": ["string", "null"]},
        "retried_at": NULLABLE_TIME,
    },
)

JOBS = obj(
    {
        "jobs": array(SCHEDULED_JOB),
        "queue": obj(
            {
                "total": {"type": "integer", "minimum": 0, "description": "running included"},
                "running": {"type": "integer", "minimum": 0},
                "jobs": array(QUEUED_JOB),
            }
        ),
        "failed": obj({"count": {"type": "integer", "minimum": 0}, "jobs": array(FAILED_JOB)}),
        "recent": array(RUN),
    }
)

ACCEPTED_JOB = obj({"job_id": {"type": "string"}, "job": {"type": "string"}})
RETRIED_JOB = obj({"job_id": {"type": "string"}, "retried_as": {"type": "string"}})

CHANGE_EVENT = obj(
    {
        "id": {"type": "string", "description": "stream id; use as `after` to page on"},
        "kind": {"type": "string"},
        "at": TIME,
        "subject": {"type": "string"},
    },
    {
        "region": {"type": ["string", "null"]},
        "field": {"type": ["string", "null"]},
        "old": {},
        "new": {},
        "detail": {"type": "object"},
    },
)

CHANGES = obj(
    {
        "events": array(CHANGE_EVENT),
        "cursor": {
            "type": ["string", "null"],
            "description": "the id of the last event returned (else the `after` given): "
            "pass it as `after` for the next page or to poll for newer events",
        },
        "has_more": {"type": "boolean"},
    }
)

UPTIME = obj(
    {
        "probes": {"type": "integer", "minimum": 0},
        "successes": {"type": "integer", "minimum": 0},
        "ratio": {"type": ["number", "null"]},
        "avg_latency_ms": {"type": ["number", "null"]},
    }
)

# Why a subject is in maintenance now (a recurring window or a mute) and until when.
IN_MAINTENANCE = obj({"until": TIME, "reason": {"type": "string"}})

ENDPOINT = obj(
    {
        "name": {"type": "string"},
        "url": {"type": ["string", "null"]},
        "state": {"type": "string", "enum": ["unknown", "up", "down"]},
        "since": NULLABLE_TIME,
        "checks": {"type": "integer"},
        "last": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        "uptime": obj({"24h": UPTIME, "7d": UPTIME, "30d": UPTIME}),
        "in_maintenance": {"type": "boolean"},
        "maintenance": nullable(IN_MAINTENANCE),
    }
)

HEALTH = obj({"endpoints": array(ENDPOINT)})

MUTE = obj(
    {
        "target": {"type": "string"},
        "until": TIME,
        "created_at": TIME,
        "reason": {"type": "string"},
    }
)
UNMUTED = obj({"target": {"type": "string"}, "removed": {"type": "boolean"}})
MAINTENANCE = obj(
    {
        "at": TIME,
        "in_maintenance": {"type": "object", "additionalProperties": IN_MAINTENANCE},
        "mutes": array(MUTE),
        "windows": array(
            obj(
                {
                    "scope": {"type": "string"},
                    "window": {"type": "string"},
                    "active": {"type": "boolean"},
                    "active_until": NULLABLE_TIME,
                }
            )
        ),
    }
)

HEALTHZ = obj(
    {
        "status": {"type": "string", "enum": ["ok", "quarantined", "unhealthy"]},
        "reason": {"type": "string"},
        "catalog_last_success": NULLABLE_TIME,
        "catalog_max_age_seconds": {"type": "number"},
    },
    {"checks": {"type": "object"}},
)

NULLABLE_MONEY: Schema = {"anyOf": [MONEY, {"type": "null"}]}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
NULLABLE_INT: Schema = {"type": ["integer", "null"]}

PLAN_ROW = obj(
    {
        "plan": {"type": "string", "description": "the id to deploy"},
        "kind": {"type": "string", "enum": ["cloud", "metal"]},
        "plan_type": NULLABLE_STRING,
        "region": NULLABLE_STRING,
        "monthly_cost": NULLABLE_MONEY,
        "hourly_cost": NULLABLE_MONEY,
        "in_stock": {"type": ["boolean", "null"], "description": "null: never checked"},
    },
    {
        "monthly_cost_preemptible": NULLABLE_MONEY,
        "hourly_cost_preemptible": NULLABLE_MONEY,
        "price_source": {"type": "string", "enum": ["base", "location_cost"]},
        "vcpu_count": NULLABLE_INT,
        "ram_mb": NULLABLE_INT,
        "disk_gb": NULLABLE_INT,
        "gpu_type": NULLABLE_STRING,
        "gpu_vram_gb": NULLABLE_INT,
        "stock_since": NULLABLE_TIME,
        "city": NULLABLE_STRING,
        "country": NULLABLE_STRING,
    },
)

# The paging fields of every list route but the change feed (which pages by event id).
PAGE: dict[str, Schema] = {
    "cursor": {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "description": "pass as `cursor` for the next page; null on the last page",
    },
    "has_more": {"type": "boolean", "description": "true when another page follows"},
}

PLANS = obj(
    {
        "plans": array(PLAN_ROW),
        "count": {"type": "integer", "minimum": 0, "description": "matching rows in total"},
        "truncated": {"type": "boolean", "description": "true when `limit` cut the list"},
        "at": NULLABLE_TIME,
        **PAGE,
    }
)

STOCK_ROW = obj(
    {
        "plan": {"type": "string"},
        "region": {"type": "string"},
        "in_stock": {"type": "boolean"},
        "since": TIME,
    },
    {
        "first_seen": NULLABLE_TIME,
        "last_in_stock": NULLABLE_TIME,
        "checked_at": NULLABLE_TIME,
    },
)

AVAILABILITY = obj(
    {
        "availability": array(STOCK_ROW),
        "count": {"type": "integer", "minimum": 0, "description": "matching pairs in total"},
        **PAGE,
    }
)

CATALOG = obj(
    {
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "version": {"type": "integer"},
        "last_success_at": NULLABLE_TIME,
        "last_attempt_at": NULLABLE_TIME,
        "fresh": {"type": "boolean"},
        "freshness": {"type": "string"},
        "quarantine": {"anyOf": [{"type": "object"}, {"type": "null"}]},
    },
    {
        "fetched_at": NULLABLE_TIME,
        "last_status": NULLABLE_STRING,
        "last_reason": NULLABLE_STRING,
        "stock_checked_at": NULLABLE_TIME,
        "stock": {"type": "object"},
        "held_stock": {
            "type": "array",
            "items": {"type": "object"},
            "description": "availability answers the stock gate holds back, by region",
        },
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "collection -> why the last scrape left it as it was",
        },
    },
)
