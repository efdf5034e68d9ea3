"""Cursors of the paginated calls (ReadRelationships, LookupResources, LookupSubjects,
ExportBulkRelationships).

A wire cursor is opaque to clients: URL-safe base64 of a small JSON object holding the token of
the revision the first page was read at, the service's own position (a relationship cursor, or
the last id returned) and a hash of the request it belongs to. A following page is read at that
same revision, so pagination never mixes snapshots, and a cursor handed to another request is
refused, as SpiceDB does (FAILED_PRECONDITION, ``ERROR_REASON_INVALID_CURSOR``); a cursor that
does not decode is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

from google.protobuf.message import Message

from zanzi.errors import FailedPrecondition, InvalidArgument

__all__ = ["PageCursor", "request_hash"]

_REASON = "ERROR_REASON_INVALID_CURSOR"


def request_hash(request: Message, *ignored: str) -> str:
    """A short hash of ``request`` without the named fields (cursor, limit, consistency...)."""
    copy = type(request)()
    copy.CopyFrom(request)
    for name in ignored:
        copy.ClearField(name)
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a page ended: ``token`` of the revision read, ``position`` for the service."""

    token: str
    position: str
    request: str

    def encode(self) -> str:
        raw = json.dumps({"t": self.token, "p": self.position, "h": self.request}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, request: str) -> PageCursor:
        """The cursor in ``text``, which must have been issued for the request hashed ``request``."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            data = json.loads(raw)
        except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"error decoding cursor: {exc}", reason=_REASON) from None
        if not (
            isinstance(data, dict)
            and all(isinstance(data.get(k), str) for k in ("t", "p", "h"))
            and data["t"]
        ):
            raise InvalidArgument("error decoding cursor: unexpected contents", reason=_REASON)
        if data["h"] != request:
            raise FailedPrecondition(
                "the cursor provided is not valid: it was issued for a different request",
                reason=_REASON,
            )
        return cls(data["t"], data["p"], data["h"])
