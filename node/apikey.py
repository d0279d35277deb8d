"""API keys as Qdrant checks them: the node's middleware and the coordinator's use this one check.

Source facts (Qdrant 1.19: `src/common/auth/mod.rs` `validate_request`, `src/actix/auth.rs`, `src/actix/mod.rs`):
- the key is the `api-key` header, else the `Authorization` header's value after `Bearer ` (that exact,
  case-sensitive prefix); a header value that is not visible ASCII counts as absent (http's `to_str`);
- no key given: 401 `Must provide an API key or an Authorization bearer token`; a key that is neither the
  main key (`service.api_key`) nor the alternative one (`service.alt_api_key`, so that keys can be rotated
  without downtime): 401 `Invalid API key or JWT`; either key alone turns the check on;
- the routes left open are the whitelist of `src/actix/mod.rs`: `/` and `/healthz` exactly, and every route
  whose pattern starts with `/readyz` or `/livez`; any other path, one that matches no route included,
  needs the key (the check runs before routing).
Qdrant's 401 body is that bare text; shardsim puts the same text in its JSON error envelope, since every
body shardsim answers is JSON. Pure (no I/O), so `cluster/` uses it too (tests/test_layout.py).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

API_KEY_HEADER = "api-key"
OPEN_PATHS = frozenset({"/", "/healthz", "/readyz", "/livez"})
BEARER_PREFIX = "Bearer "
MISSING = "Must provide an API key or an Authorization bearer token"
INVALID = "Invalid API key or JWT"


def api_keys(api_key: str | None, alt_api_key: str | None) -> tuple[str, ...]:
    """The keys a process accepts (empty strings are no key, as in Qdrant); none: no check at all."""
    return tuple(key for key in (api_key, alt_api_key) if key)


def api_key_headers(api_key: str | None, alt_api_key: str | None = None) -> dict[str, str]:
    """What a process sends to its peers: its main key, else its alternative one, else nothing."""
    keys = api_keys(api_key, alt_api_key)
    return {API_KEY_HEADER: keys[0]} if keys else {}


def header_text(value: str | None) -> str | None:
    """A header value as http's `HeaderValue::to_str` reads it: None unless visible ASCII (or a tab)."""
    if value is None or not all(char == "\t" or " " <= char <= "~" for char in value):
        return None
    return value


def api_key_refusal(headers: Mapping[str, str], keys: tuple[str, ...]) -> str | None:
    """Qdrant's 401 message for a request with these headers, or None when it may pass (no keys set, or it
    carries one of them)."""
    if not keys:
        return None
    given = header_text(headers.get(API_KEY_HEADER))
    if given is None:
        authorization = header_text(headers.get("Authorization"))
        if authorization is not None and authorization.startswith(BEARER_PREFIX):
            given = authorization[len(BEARER_PREFIX):]
    if given is None:
        return MISSING
    matches = [hmac.compare_digest(given.encode(), key.encode()) for key in keys]  # every key, in constant time
    return None if any(matches) else INVALID


def path_open(path: str) -> bool:
    """A path Qdrant serves without a key (the health routes and the version at `/`)."""
    return path in OPEN_PATHS
