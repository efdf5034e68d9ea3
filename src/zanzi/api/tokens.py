"""Consistency tokens (Zanzibar's zookies, SpiceDB's ZedTokens).

A token is opaque to clients: ``zz1_`` followed by URL-safe base64 of
``<datastore id>|<revision>`` and a 16-byte HMAC-SHA256 of it, keyed with the datastore's own
secret. So a token from another datastore is recognised as foreign, a token whose bytes were
changed fails its MAC, and every server sharing one database honours the others' tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from zanzi.errors import ForeignToken, MalformedToken
from zanzi.store.base import Datastore, Revision

__all__ = ["TokenCodec"]

_PREFIX = "zz1_"
_MAC_BYTES = 16
_MAX_TOKEN = 512


class TokenCodec:
    """Encodes and decodes revisions of one datastore."""

    def __init__(self, datastore: Datastore) -> None:
        self._datastore = datastore
        self._id = datastore.datastore_id
        self._secret = datastore.token_secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, revision: Revision) -> str:
        payload = f"{self._id}|{revision}".encode()
        raw = payload + self._mac(payload)
        return _PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, token: str) -> Revision:
        """The revision in ``token``; raises :class:`MalformedToken` or :class:`ForeignToken`."""
        if not isinstance(token, str) or not token:
            raise MalformedToken("the consistency token is empty")
        if len(token) > _MAX_TOKEN or not token.startswith(_PREFIX):
            raise MalformedToken("the consistency token is not a Zanzi token (it does not start with zz1_)")
        body = token[len(_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise MalformedToken("the consistency token is not valid base64") from None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            raise MalformedToken("the consistency token is corrupt") from None
        datastore_id, sep, revision_text = text.partition("|")
        if not sep or len(mac) != _MAC_BYTES:
            raise MalformedToken("the consistency token is corrupt")
        if datastore_id != self._id:
            raise ForeignToken(
                "the consistency token was issued by another datastore "
                f"({datastore_id[:8]}..., this one is {self._id[:8]}...)",
            )
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise MalformedToken("the consistency token failed its integrity check (tampered or corrupt)")
        return self._datastore.parse_revision(revision_text)
