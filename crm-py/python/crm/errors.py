"""The exceptions of the ``crm`` package, all rooted at :class:`CrmError`."""

from __future__ import annotations

from typing import Any


class CrmError(Exception):
    """Any error raised by crm.

    ``code`` is the engine's stable machine code (``validation_failed``, ``not_found``, …,
    the same codes as the HTTP API's problem documents); ``fields`` lists the offending
    inputs of a validation error as dicts with ``field``, ``code`` and ``message``.
    """

    def __init__(self, message: str, code: str = "internal", fields: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.fields = list(fields or [])


class ValidationError(CrmError, ValueError):
    """The input is invalid: an unknown report, a table that does not fit, a bad parameter."""

    def __init__(self, message: str, code: str = "validation_failed", fields: list[dict[str, Any]] | None = None):
        super().__init__(message, code, fields)


def invalid(message: str, field: str, code: str, hint: str) -> ValidationError:
    """A validation error about one input field."""
    return ValidationError(message, fields=[{"field": field, "code": code, "message": hint}])


class NotFoundError(CrmError, LookupError):
    """The record or resource does not exist (or is outside the caller's scope)."""


class ConflictError(CrmError):
    """A uniqueness or version conflict."""


class PermissionDeniedError(CrmError, PermissionError):
    """No valid credentials, or the caller may not do this."""


__all__ = ["CrmError", "ValidationError", "NotFoundError", "ConflictError", "PermissionDeniedError"]
