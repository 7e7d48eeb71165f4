"""``/``: the server-rendered status page, plus ``/login``, ``/logout`` and ``/style.css``.

Plain HTML and CSS, no JavaScript: the retry and run-now buttons are forms that post to the API
with the login cookie (see ``auth``), and the API answers a form post with a redirect back here.
Rendered by Jinja2 (``templating``, autoescaped) from ``templates/overview.html``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web
from markupsafe import Markup
from redis.exceptions import RedisError

from vultr_scraper_core.describe import plural
from vultr_scraper_core.formats import from_unix
from vultr_scraper_core.redis_faults import redis_cause
from vultr_scraper_worker.api import charts, reads_catalog, reads_health, reads_jobs
from vultr_scraper_worker.api.auth import (
    Access,
    check_same_origin,
    clear_session_cookie,
    set_session_cookie,
)
from vultr_scraper_worker.api.errors import ApiError
from vultr_scraper_worker.api.params import text
from vultr_scraper_worker.api.routing import Response, Route
from vultr_scraper_worker.api.state import ApiState, Overview, state_of
from vultr_scraper_worker.api.templating import HTML, page, static_file
from vultr_scraper_worker.plans import JobOverview, JobPlan, describe_schedule

FAILED_ON_PAGE = 25


@dataclass
class JobRow:
    name: str
    description: str
    schedule_text: str
    last_run: Any
    last_end: datetime | None
    last_success: datetime | None
    next_run: datetime | None
    can_run: bool


@dataclass
class EndpointRow:
    name: str
    url: str | None
    state: Any
    latency: str
    uptime_24h: str
    error: str
    maintenance: Any = None  # Maintenance (why, until when) while alerts are held back
    latency_chart: Markup | None = None  # hourly mean latency over 24 h, when there is one


def _job_rows(
    jobs: Sequence[JobOverview], plans: Sequence[JobPlan], can_write: bool
) -> list[JobRow]:
    schedules = {plan.name: plan.schedule for plan in plans}
    takes_arguments = {plan.name for plan in plans if reads_jobs.needs_arguments(plan)}
    rows = []
    for job in jobs:
        schedule = schedules.get(job.name)
        rows.append(
            JobRow(
                name=job.name,
                description=job.description,
                schedule_text=describe_schedule(schedule) if schedule else job.schedule,
                last_run=job.last_run,
                last_end=from_unix(job.last_run.end) if job.last_run else None,
                last_success=job.last_success,
                next_run=job.next_run,
                can_run=can_write and job.name not in takes_arguments,
            )
        )
    return rows


def _endpoint_rows(endpoints: Sequence[reads_health.EndpointHealth]) -> list[EndpointRow]:
    rows = []
    for endpoint in endpoints:
        last = endpoint.state.last
        day = endpoint.uptime.get("24h")
        ratio = day.ratio if day else None
        rows.append(
            EndpointRow(
                name=endpoint.name,
                url=endpoint.url,
                state=endpoint.state,
                latency=(
                    f"{last.latency_ms:.0f} ms" if last and last.latency_ms is not None else "-"
                ),
                uptime_24h=f"{ratio * 100:.2f} %" if ratio is not None else "-",
                error=last.error or "" if last and not last.ok else "",
                maintenance=endpoint.maintenance,
                latency_chart=_latency_chart(endpoint),
            )
        )
    return rows


def _latency_chart(endpoint: reads_health.EndpointHealth) -> Markup | None:
    hourly = endpoint.latency_24h
    if len(hourly) < 2:
        return None
    return charts.sparkline(
        hourly,
        title=f"{endpoint.name}: latency over 24 hours",
        desc=(
            f"hourly mean latency over the last {len(hourly)} hours with probes: "
            f"{min(hourly):.0f} to {max(hourly):.0f} ms, last {hourly[-1]:.0f} ms"
        ),
    )


def _catalog_counts(counts: dict[str, int]) -> str:
    """``6 cloud, 1 bare metal; 4 regions, 3 OS images``: what the plan count is made of, then
    the rest of the catalogue (OS images are not plans)."""
    if not any(counts.values()):
        return "empty"
    plans = f"{counts.get('plans', 0)} cloud, {counts.get('metal', 0)} bare metal"
    rest = [plural(counts.get("regions", 0), "region"), plural(counts.get("os", 0), "OS image")]
    offered = [
        plural(counts[name], word)
        for name, word in _OFFERINGS
        if counts.get(name)  # a collection never scraped (databases without a key) is left out
    ]
    more = f"; {', '.join(offered)}" if offered else ""
    return f"{plans}; {', '.join(rest)}{more}"


_OFFERINGS = (
    ("apps", "app"),
    ("k8s_versions", "Kubernetes version"),
    ("storage_clusters", "object-storage cluster"),
    ("isos", "public ISO"),
    ("databases", "database plan"),
)


async def status_page(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    now = datetime.now(UTC)
    can_write = state.auth.configured and state.auth.authenticated(request)
    try:
        overview = await _read_overview(state, now)
    except RedisError as error:
        if state.last_overview is None:
            raise  # nothing read yet: the plain 503 page, naming the cause
        # What the page last read, under a banner: a person sees the outage and the last
        # known state at once (a monitor still sees the 503).
        return _render(
            request,
            state.last_overview,
            can_write=False,
            notices={},
            status=503,
            headers={"Retry-After": "5"},
            outage=redis_cause(error),
        )
    state.last_overview = overview
    return _render(request, overview, can_write=can_write, notices=args)


async def _read_overview(state: ApiState, now: datetime) -> Overview:
    summary = await reads_catalog.summary(state)
    fresh, reason = reads_catalog.freshness(state, summary, now)
    jobs = await reads_jobs.scheduled_jobs(state, now)
    queue = await reads_jobs.queue_status(state)
    failed_count, failed = await reads_jobs.failed_jobs(state, FAILED_ON_PAGE)
    cheapest = await reads_catalog.cheapest_in_stock(state)
    endpoints = await reads_health.endpoint_health(state, now)
    change_count = await reads_catalog.change_count(state)
    latest = await reads_catalog.latest_changes(state, 1, [])
    counts = summary.counts
    return Overview(
        read_at=now,
        values={
            "quarantine": summary.quarantine,
            "summary": summary,
            "fresh": fresh,
            "fresh_reason": reason,
            "plan_count": plural(counts.get("plans", 0) + counts.get("metal", 0), "plan"),
            "catalog_counts": _catalog_counts(counts),
            "queue": queue,
            "queue_total": plural(queue.total, "job"),
            "scheduled": jobs,
            "failed_count": failed_count,
            "failed": failed,
            "cheapest": cheapest,
            "endpoints": _endpoint_rows(endpoints),
            "changes_total": plural(change_count, "change"),
            "latest_change": latest[0] if latest else None,
        },
    )


def _render(
    request: web.Request,
    overview: Overview,
    *,
    can_write: bool,
    notices: Mapping[str, Any],
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    outage: str | None = None,
) -> web.Response:
    values = dict(overview.values)
    scheduled = values.pop("scheduled")
    return page(
        request,
        "overview.html",
        status=status,
        headers=headers,
        now=datetime.now(UTC),
        read_at=overview.read_at,
        outage=outage,
        notices=notices,
        can_write=can_write,
        jobs=_job_rows(scheduled, state_of(request).plans, can_write),
        **values,
    )


# -- login, logout, errors, stylesheet -----------------------------------------------------


def login_form(request: web.Request, message: str = "", *, status: int = 200) -> web.Response:
    return page(request, "login.html", message=message, status=status)


async def login_page(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    if not state.auth.configured:
        raise ApiError(403, _no_token(state))
    return login_form(request)


async def login(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    if not state.auth.configured:
        raise ApiError(403, _no_token(state))
    check_same_origin(request)
    form = await request.post()
    token = form.get("token")
    if not isinstance(token, str) or not state.auth.login(request, token.strip()):
        return login_form(request, "That token is not the configured one.", status=401)
    response = web.Response(status=303, headers={"Location": "/"})
    set_session_cookie(response, request, state.auth.session_value())
    return response


async def logout(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    check_same_origin(request)
    response = web.Response(status=303, headers={"Location": "/"})
    clear_session_cookie(response)
    return response


def _no_token(state: ApiState) -> str:
    return (
        "Logging in needs an API token: write one to a file and set [http] token_file "
        "(or VULTR_SCRAPER__HTTP__TOKEN_FILE) to its path, then restart the worker."
    )


def error_page(
    request: web.Request, status: int, message: str, headers: Mapping[str, str]
) -> web.Response:
    if status == 401:
        return login_form(request, message, status=401)
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return page(
        request,
        "error.html",
        status=status,
        code=status,
        headers=headers,
        reason=reason,
        message=message,
    )


async def stylesheet(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    return web.Response(
        body=static_file("style.css"),
        content_type="text/css",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


_NOTE_PATTERN = r"^[A-Za-z0-9._:-]+$"


def _html(description: str) -> Response:
    return Response(description, media_type=HTML, schema={"type": "string"})


_HTML_PAGE = _html("HTML page")
_TO_STATUS = Response("Back to the status page", media_type=None, headers={"Location": "/"})

ROUTES = [
    Route(
        "GET",
        "/",
        status_page,
        operation_id="getStatusPage",
        summary="The status page (HTML)",
        tag="pages",
        html=True,
        reads_token=True,
        params=(
            text(
                "retried",
                "Notice: a failed job was re-enqueued as this id",
                pattern=_NOTE_PATTERN,
                max_length=200,
                example="retry-0123456789abcdef",
            ),
            text(
                "enqueued",
                "Notice: a job was enqueued with this id",
                pattern=_NOTE_PATTERN,
                max_length=200,
                example="retry-0123456789abcdef",
            ),
        ),
        responses={200: _HTML_PAGE},
    ),
    Route(
        "GET",
        "/login",
        login_page,
        operation_id="getLoginPage",
        summary="The login form (HTML)",
        tag="pages",
        access=Access.OPEN,
        html=True,
        uses_redis=False,
        responses={
            200: _HTML_PAGE,
            403: _html("No token is configured"),
        },
    ),
    Route(
        "POST",
        "/login",
        login,
        operation_id="logIn",
        summary="Log in with the token: sets an HttpOnly, SameSite=Strict session cookie",
        tag="pages",
        access=Access.OPEN,
        html=True,
        uses_redis=False,
        form={"token": {"type": "string", "minLength": 1, "maxLength": 1000}},
        form_required=("token",),
        description="Same-origin form posts only (Origin or Referer must match the Host).",
        responses={
            303: _TO_STATUS,
            401: _html("Wrong token: the form again"),
            403: _html("No token configured, or a cross-site post"),
            429: Response(
                "Too many failed logins from this address ([http] max_failed_logins a minute)",
                media_type=HTML,
                schema={"type": "string"},
                headers={"Retry-After": "Seconds until this address may log in again"},
            ),
        },
    ),
    Route(
        "POST",
        "/logout",
        logout,
        operation_id="logOut",
        summary="Forget the session cookie",
        tag="pages",
        access=Access.OPEN,
        html=True,
        uses_redis=False,
        responses={
            303: _TO_STATUS,
            403: _html("A cross-site post"),
        },
    ),
    Route(
        "GET",
        "/style.css",
        stylesheet,
        operation_id="getStylesheet",
        summary="The status page's stylesheet",
        tag="pages",
        access=Access.OPEN,
        uses_redis=False,
        responses={200: Response("CSS", media_type="text/css", schema={"type": "string"})},
    ),
]
