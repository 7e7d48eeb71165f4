"""``/``: the server-rendered status page, plus ``/login``, ``/logout`` and ``/style.css``.

Plain HTML and CSS, no JavaScript: the retry and run-now buttons are forms that post to the API
with the login cookie (see ``auth``), and the API answers a form post with a redirect back here.
Every value goes through ``html.render``/``escape``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

from vultr_scraper_core import __version__
from vultr_scraper_core.describe import describe_event, plural
from vultr_scraper_core.formats import from_unix
from vultr_scraper_core.store.changes import ChangeEvent
from vultr_scraper_worker.api import reads_catalog, reads_health, reads_jobs
from vultr_scraper_worker.api.auth import (
    Access,
    check_same_origin,
    clear_session_cookie,
    set_session_cookie,
)
from vultr_scraper_worker.api.errors import ApiError
from vultr_scraper_worker.api.html import Markup, join, render, static_file, template
from vultr_scraper_worker.api.params import text
from vultr_scraper_worker.api.routing import Response, Route
from vultr_scraper_worker.api.state import ApiState, state_of
from vultr_scraper_worker.plans import JobOverview, JobPlan, describe_schedule
from vultr_scraper_worker.records.failed import FailedJob
from vultr_scraper_worker.records.queue import QueueSnapshot

HTML = "text/html"
CHANGES_ON_PAGE = 15
FAILED_ON_PAGE = 25


# -- formatting ----------------------------------------------------------------------------


def ago(moment: datetime, now: datetime) -> str:
    """``3 min ago`` / ``in 12 min``: coarse, for people."""
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        amount = f"{int(seconds)} s"
    elif seconds < 3600:
        amount = f"{int(seconds // 60)} min"
    elif seconds < 48 * 3600:
        amount = f"{seconds / 3600:.1f} h"
    else:
        amount = f"{int(seconds // 86400)} days"
    return f"in {amount}" if future else f"{amount} ago"


def when(moment: datetime | None, now: datetime) -> Markup:
    if moment is None:
        return Markup('<span class="muted">never</span>')
    moment = moment.astimezone(UTC)
    return render(
        '<time datetime="{iso}" title="{iso}">{short}</time> <span class="muted">({rel})</span>',
        iso=moment.isoformat(),
        short=moment.strftime("%Y-%m-%d %H:%M UTC"),
        rel=ago(moment, now),
    )


def badge(word: str) -> Markup:
    return render('<span class="badge {cls}">{word}</span>', cls=word.lower(), word=word)


def empty(message: str) -> Markup:
    return render('<p class="empty">{message}</p>', message=message)


Cell = tuple[str, Markup | str]  # (css class, content)


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> Markup:
    """A table whose cells carry their column name (``data-label``): on a phone each row is
    shown as a small card of "label: value" lines instead of a table too wide to read."""
    head = join((render("<th>{h}</th>", h=header) for header in headers), "")
    body = join(
        render(
            "<tr>{cells}</tr>",
            cells=join(
                (
                    render(
                        '<td class="{cls}" data-label="{label}"><div>{value}</div></td>',
                        cls=cls,
                        label=label,
                        value=value,
                    )
                    for label, (cls, value) in zip(headers, row, strict=True)
                ),
                "",
            ),
        )
        for row in rows
    )
    return render(
        '<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
        "</table></div>",
        head=head,
        body=body,
    )


def post_button(action: str, label: str, *, secondary: bool = False) -> Markup:
    return render(
        '<form class="inline" method="post" action="{action}">'
        '<button type="submit"{cls}>{label}</button></form>',
        action=action,
        label=label,
        cls=Markup(' class="secondary"') if secondary else Markup(""),
    )


def layout(request: web.Request, title: str, body: Markup) -> Markup:
    state = state_of(request)
    session = Markup("")
    if state.auth.configured:
        if state.auth.session_valid(request):
            session = post_button("/logout", "Log out", secondary=True)
        else:
            session = Markup('<a href="/login">Log in</a>')
    return render(
        template("layout.html"),
        title=title,
        body=body,
        session=session,
        version=__version__,
        now=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


def html_response(
    markup: Markup, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=str(markup), status=status, content_type=HTML, charset="utf-8", headers=headers
    )


# -- sections ------------------------------------------------------------------------------


NONE = Markup('<span class="muted">-</span>')


def _jobs_table(
    jobs: Sequence[JobOverview], plans: Sequence[JobPlan], now: datetime, can_write: bool
) -> Markup:
    schedules = {plan.name: plan.schedule for plan in plans}
    takes_arguments = {plan.name for plan in plans if reads_jobs.needs_arguments(plan)}
    rows: list[list[Cell]] = []
    for job in jobs:
        last = job.last_run
        outcome = badge(last.outcome) if last else NONE
        if last is not None and last.error:
            outcome = render('{b} <span class="muted">{e}</span>', b=outcome, e=last.error)
        schedule = schedules.get(job.name)
        button = (
            post_button(f"/api/v1/jobs/{job.name}/enqueue", "Run now", secondary=True)
            if can_write and job.name not in takes_arguments
            else NONE
        )
        rows.append(
            [
                (
                    "",
                    render(
                        '<strong>{name}</strong><br><span class="muted">{desc}</span>',
                        name=job.name,
                        desc=job.description,
                    ),
                ),
                ("", describe_schedule(schedule) if schedule else job.schedule),
                ("when", when(from_unix(last.end) if last else None, now)),
                ("error", outcome),
                ("when", when(job.last_success, now)),
                ("when", when(job.next_run, now) if job.next_run else NONE),
                ("", button),
            ]
        )
    headers = ["Job", "Schedule", "Last run", "Outcome", "Last success", "Next run", "Action"]
    return table(headers, rows)


def _queue_table(queue: QueueSnapshot, now: datetime) -> Markup:
    if not queue.jobs:
        return empty("The queue is empty.")
    rows: list[list[Cell]] = [
        [
            ("mono", job.id),
            ("", job.function),
            ("", badge(job.state)),
            ("when", when(from_unix(job.due_at), now)),
            ("num", str(job.tries)),
        ]
        for job in queue.jobs
    ]
    return table(["Id", "Job", "State", "Due", "Tries"], rows)


def _failed_table(failed: Sequence[FailedJob], now: datetime, can_write: bool) -> Markup:
    if not failed:
        return empty("No failed jobs.")
    rows: list[list[Cell]] = []
    for job in failed:
        if job.retried_as:
            action = render('<span class="muted">retried as {id}</span>', id=job.retried_as)
        elif not job.retryable:
            action = Markup('<span class="muted">not retryable</span>')
        elif can_write:
            action = post_button(f"/api/v1/jobs/{job.id}/retry", "Retry")
        else:
            action = Markup('<span class="muted">log in to retry</span>')
        rows.append(
            [
                (
                    "",
                    render(
                        '<strong>{f}</strong><br><span class="mono muted">{id}</span>',
                        f=job.function,
                        id=job.id,
                    ),
                ),
                (
                    "error",
                    render('<span class="mono">{t}</span>: {e}', t=job.error_type, e=job.error),
                ),
                ("num", str(job.tries)),
                ("when", when(from_unix(job.failed_at), now)),
                ("", action),
            ]
        )
    return table(["Job", "Error", "Tries", "Failed", "Action"], rows)


def _changes_table(events: Sequence[ChangeEvent], now: datetime) -> Markup:
    if not events:
        return empty("No changes recorded yet.")
    rows: list[list[Cell]] = [
        [
            ("when", when(event.at, now)),
            ("", str(event.kind)),
            ("mono", event.subject),
            ("", event.region or ""),
            ("error", describe_event(event)),
        ]
        for event in events
    ]
    return table(["When", "Kind", "Subject", "Region", "Change"], rows)


def _cheapest_table(cheapest: Sequence[reads_catalog.RegionCheapest]) -> Markup:
    if not cheapest:
        return empty("No in-stock plan known yet (stock is checked by scrape-availability).")
    rows: list[list[Cell]] = [
        [
            (
                "",
                render(
                    '<strong>{r}</strong> <span class="muted">{c}</span>',
                    r=item.region,
                    c=item.city or "",
                ),
            ),
            ("mono", item.plan),
            ("num", f"${item.monthly}"),
            ("num", str(item.vcpu) if item.vcpu is not None else "-"),
            ("num", f"{item.ram_mb / 1024:g} GB" if item.ram_mb is not None else "-"),
            ("", item.plan_type or ""),
        ]
        for item in cheapest
    ]
    return table(["Region", "Plan", "$/month", "vCPU", "RAM", "Type"], rows)


def _health_table(endpoints: Sequence[reads_health.EndpointHealth], now: datetime) -> Markup:
    if not endpoints:
        return empty("No endpoints are checked ([[health.endpoints]] in the configuration).")
    rows: list[list[Cell]] = []
    for endpoint in endpoints:
        state = endpoint.state
        last = state.last
        latency = f"{last.latency_ms:.0f} ms" if last and last.latency_ms is not None else "-"
        day = endpoint.uptime.get("24h")
        ratio = day.ratio if day else None
        rows.append(
            [
                (
                    "",
                    render(
                        '<strong>{n}</strong><br><span class="mono muted">{u}</span>',
                        n=endpoint.name,
                        u=endpoint.url or "(no longer configured)",
                    ),
                ),
                ("", badge(state.state)),
                ("when", when(state.since, now)),
                ("num", latency),
                ("num", f"{ratio * 100:.2f} %" if ratio is not None else "-"),
                ("error", last.error if last and not last.ok else ""),
            ]
        )
    return table(["Endpoint", "State", "Since", "Latency", "Uptime 24 h", "Last error"], rows)


def _notices(
    request: web.Request, args: Mapping[str, Any], summary: reads_catalog.CatalogSummary
) -> Markup:
    notices: list[Markup] = []
    if args.get("retried"):
        notices.append(
            render(
                '<div class="notice" role="status">Failed job re-enqueued as <code>{id}</code>.'
                "</div>",
                id=args["retried"],
            )
        )
    if args.get("enqueued"):
        notices.append(
            render(
                '<div class="notice" role="status">Job enqueued as <code>{id}</code>.</div>',
                id=args["enqueued"],
            )
        )
    quarantine = summary.quarantine
    if quarantine is not None:
        reasons = join((render("<li>{r}</li>", r=reason) for reason in quarantine.reasons), "")
        notices.append(
            render(
                '<div class="notice bad" role="alert"><h2>Catalogue scrape quarantined</h2>'
                "<p>A scrape fetched at {fetched} failed the plausibility gate, so the previous "
                "catalogue stays current and nothing was retired.{partial}</p><ul>{reasons}</ul>"
                "</div>",
                fetched=quarantine.fetched_at.strftime("%Y-%m-%d %H:%M UTC"),
                partial=" The fetch was incomplete." if not quarantine.complete else "",
                reasons=reasons,
            )
        )
    return join(notices)


def _catalog_counts(counts: dict[str, int]) -> str:
    """``6 cloud, 1 bare metal; 4 regions, 3 OS images``: what the plan count is made of, then
    the rest of the catalogue (OS images are not plans)."""
    if not any(counts.values()):
        return "empty"
    plans = f"{counts.get('plans', 0)} cloud, {counts.get('metal', 0)} bare metal"
    rest = [plural(counts.get("regions", 0), "region"), plural(counts.get("os", 0), "OS image")]
    return f"{plans}; {', '.join(rest)}"


async def status_page(request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
    state = state_of(request)
    now = datetime.now(UTC)
    can_write = state.auth.configured and state.auth.authenticated(request)
    summary = await reads_catalog.summary(state)
    fresh, reason = reads_catalog.freshness(state, summary, now)
    jobs = await reads_jobs.scheduled_jobs(state, now)
    queue = await reads_jobs.queue_status(state)
    failed_count, failed = await reads_jobs.failed_jobs(state, FAILED_ON_PAGE)
    changes = await reads_catalog.latest_changes(state, CHANGES_ON_PAGE, [])
    cheapest = await reads_catalog.cheapest_in_stock(state)
    endpoints = await reads_health.endpoint_health(state, now)
    if not state.auth.configured:
        hint = Markup(
            '<p class="muted">Retry and run-now buttons appear once an API token is configured '
            "(<code>[http] token_file</code>) and you are logged in.</p>"
        )
    elif not can_write:
        hint = Markup('<p class="muted"><a href="/login">Log in</a> to retry or run jobs.</p>')
    else:
        hint = Markup("")
    counts = summary.counts
    body = render(
        template("status.html"),
        notices=_notices(request, args, summary),
        health_class="ok" if fresh else "bad",
        health_word="fresh" if fresh else "stale",
        health_reason=reason,
        last_success_ago=ago(summary.last_success, now) if summary.last_success else "never",
        last_success=when(summary.last_success, now),
        plan_count=plural(counts.get("plans", 0) + counts.get("metal", 0), "plan"),
        catalog_counts=_catalog_counts(counts),
        queue_total=plural(queue.total, "job"),
        queue_detail=f"{len(queue.running)} running, {failed_count} failed",
        auth_hint=hint,
        jobs_table=_jobs_table(jobs, state.plans, now, can_write),
        queue_table=_queue_table(queue, now),
        failed_count=str(failed_count),
        failed_table=_failed_table(failed, now, can_write),
        changes_table=_changes_table(changes, now),
        cheapest_table=_cheapest_table(cheapest),
        health_table=_health_table(endpoints, now),
    )
    return html_response(layout(request, "vultr-scraper status", body))


# -- login, logout, errors, stylesheet -----------------------------------------------------


def login_form(request: web.Request, message: str = "", *, status: int = 200) -> web.Response:
    notice = render('<div class="notice bad">{m}</div>', m=message) if message else Markup("")
    body = render(template("login.html"), message=notice)
    return html_response(layout(request, "Log in - vultr-scraper", body), status=status)


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
    if not isinstance(token, str) or not state.auth.token_matches(token.strip()):
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
    body = render(template("error.html"), status=status, reason=reason, message=message)
    return html_response(
        layout(request, f"{status} {reason}", body), status=status, headers=headers
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
