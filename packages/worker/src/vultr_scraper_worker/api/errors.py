"""The one error type handlers raise; the app turns it into a JSON (or HTML) error response."""

from __future__ import annotations

from collections.abc import Mapping


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
