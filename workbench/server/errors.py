"""Errors the API answers with, in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

A client's mistake is a 4xx (the official client retries 5xx, so a bad request must never be one).
"""

from __future__ import annotations

from typing import Any

from workbench.errors import WorkbenchError

#: The error ``type`` OpenAI uses for each status.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    500: "server_error",
    503: "service_unavailable",
}


class ApiError(WorkbenchError):
    """A request the server answers with an error status.

    Args:
        status: The HTTP status.
        message: What went wrong and what to do, for the client's user.
        param: The request field at fault, if one is.
        code: A short machine-readable code (``model_not_found``, ``context_length_exceeded``, ...).
    """

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return error_body(self.status, self.message, param=self.param, code=self.code)


def error_body(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error object for a status and a message."""
    kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 error naming the field at fault."""
    return ApiError(400, message, param=param, code=code)
