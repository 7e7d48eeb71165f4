"""The one error type handlers raise, and the one error format: RFC 9457 problem details.

Every API error is an ``application/problem+json`` document: ``type`` (``about:blank``: the
status says it all), ``title`` (the status's phrase), ``status``, ``detail`` (what went wrong,
for people) and ``error``, the same text under the member earlier versions used alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from vultr_scraper_worker.documents.common import Error

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    """An HTTP error with a message meant for the client (never a stack trace or a secret)."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def problem_document(status: int, detail: str) -> Error:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return Error(type="about:blank", title=title, status=status, detail=detail, error=detail)
