"""The node's exception tree and the registry of error kinds.

Every error a request can meet is one of these classes; one middleware (node/api/app.py) turns it into
Qdrant's envelope `{"status": {"error": "<Kind>: <message>"}, "time": t}` with Qdrant's status code.
`definite` says whether the operation certainly did not happen (a client records `fail`) or might have
(`info`), in Jepsen's vocabulary.

    NodeError
    ├── NotFound            404  "Not found: "
    ├── BadInput            400  "Wrong input: "
    │   └── ChecksumMismatch 400  "Checksum mismatch: ..." (an upload's; a recover's is a BadInput)
    ├── BadRequest          400  "Bad request: "
    ├── Unauthorized        401
    ├── Forbidden           403  "Forbidden: "
    ├── StandaloneMode      405  "Qdrant is running in standalone mode"
    ├── RequestTimeout      408  "Timeout error: "
    ├── AlreadyExists       409  "Wrong input: "
    ├── PayloadTooLarge     413
    ├── UnsupportedMediaType 415 (an upload that is not multipart/form-data)
    ├── ValidationError     422  "Validation error in ...: "
    ├── ServiceError        500  "Service internal error: "
    │   └── CorruptSnapshot 500  (definite: verification failed before anything changed)
    └── ShardUnavailable    503  "Service unavailable: "
        └── NotEnoughReplicas 503 (definite: refused before any replica was asked)
"""

from __future__ import annotations


class NodeError(Exception):
    status = 500
    prefix = "Service internal error"
    definite = False
    parsing = False  # a request-parsing error: Qdrant answers these with `time: 0.0`

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def text(self) -> str:
        return f"{self.prefix}: {self.message}" if self.prefix else self.message


class NotFound(NodeError):
    status = 404
    prefix = "Not found"
    definite = True


class BadInput(NodeError):
    status = 400
    prefix = "Wrong input"
    definite = True


class ChecksumMismatch(BadInput):
    prefix = ""


class BadRequest(NodeError):
    status = 400
    prefix = "Bad request"
    definite = True


class FormatError(BadRequest):
    """A request that does not parse (`Format error in JSON body: ...`, `Deserialize error in ...`)."""
    prefix = ""
    parsing = True


class Unauthorized(NodeError):
    status = 401
    prefix = ""
    definite = True


class Forbidden(NodeError):
    status = 403
    prefix = "Forbidden"
    definite = True


class StandaloneMode(NodeError):
    status = 405
    prefix = ""
    definite = True


class RequestTimeout(NodeError):
    status = 408
    prefix = "Timeout error"
    definite = False


class AlreadyExists(NodeError):
    status = 409
    prefix = "Wrong input"
    definite = True


class PayloadTooLarge(NodeError):
    status = 413
    prefix = "Payload too large"
    definite = True


class UnsupportedMediaType(NodeError):
    status = 415
    prefix = ""
    definite = True
    parsing = True


class ValidationError(NodeError):
    status = 422
    prefix = ""
    definite = True
    parsing = True


class ServiceError(NodeError):
    status = 500
    prefix = "Service internal error"
    definite = False


class CorruptSnapshot(ServiceError):
    """A snapshot that fails verification (500, as Qdrant answers); refused before anything changed."""

    definite = True


class ShardUnavailable(NodeError):
    status = 503
    prefix = "Service unavailable"
    definite = False


class NotEnoughReplicas(ShardUnavailable):
    """Refused before any replica was asked: the update certainly did not happen."""

    definite = True


ERROR_KINDS: dict[str, type[NodeError]] = {
    cls.__name__: cls
    for cls in (NotFound, BadInput, ChecksumMismatch, BadRequest, FormatError, Unauthorized, Forbidden, StandaloneMode,
                RequestTimeout, AlreadyExists, PayloadTooLarge, UnsupportedMediaType, ValidationError, ServiceError,
                ShardUnavailable, NotEnoughReplicas, CorruptSnapshot)
}


def standalone_mode() -> StandaloneMode:
    """A cluster operation on a node without distributed mode, in Qdrant's words."""
    return StandaloneMode("Qdrant is running in standalone mode")


def collection_not_found(name: str) -> NotFound:
    return NotFound(f"Collection `{name}` doesn't exist!")


def snapshot_not_found(name: str) -> NotFound:
    return NotFound(f"Snapshot {name} not found")


def shard_not_found(shard_id: int) -> NotFound:
    return NotFound(f"shard {shard_id} not found")


def rust_debug(text: str) -> str:
    """Rust's `{:?}` of a string or path, as Qdrant quotes them in messages (`Snapshot file "/x" ...`)."""
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
