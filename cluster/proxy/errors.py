"""API errors of the fault proxy, with Toxiproxy's messages and status codes.

Part of `cluster.proxy`: every handler raises `ApiError`; one middleware in `api.py` turns it into
Toxiproxy's error body `{"error": "...", "status": N}`. The messages are the real server's, so a client
that matches on them (or only on the status, as toxiproxy-python does) sees no difference.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error answered to an API client: a message and an HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, object]:
        return {"error": self.message, "status": self.status}

    def joined(self, detail: str) -> ApiError:
        """The same error with a detail appended, as Toxiproxy's `joinError` does."""
        return ApiError(f"{self.message}: {detail}", self.status)


BAD_REQUEST_BODY = ApiError("bad request body", 400)
MISSING_FIELD = ApiError("missing required field", 400)
PROXY_NOT_FOUND = ApiError("proxy not found", 404)
PROXY_EXISTS = ApiError("proxy already exists", 409)
INVALID_STREAM = ApiError("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ApiError("invalid toxic type", 400)
TOXIC_EXISTS = ApiError("toxic already exists", 409)
TOXIC_NOT_FOUND = ApiError("toxic not found", 404)
