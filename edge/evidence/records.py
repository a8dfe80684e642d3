"""Signed records: canonical JSON bytes, Ed25519 signatures over them, and file hashes.

A record on disk is an envelope `{"kind": K, "payload": {...}, "signature": BASE64}`.
What is signed (and what a record's hash covers) is `privacy-dashcam K\\n` followed by the
payload as canonical JSON: keys sorted, no spaces, UTF-8, and no floating-point numbers
(times are text, counts are integers), so any language's JSON library can rebuild the
same bytes. The kind in the signed bytes keeps a signature of one kind of record from
being passed off as another.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MANIFEST = "manifest"  # one finished segment
AMENDMENT = "amendment"  # a later change to a segment's sidecar (a lock), tied to its manifest
DELETION = "deletion"  # a segment loop recording deleted
HEAD = "head"  # the folder's latest manifest: a removed newest segment is noticed
EXPORT = "export"  # what `dashcam export` put in a folder
KINDS = (MANIFEST, AMENDMENT, DELETION, HEAD, EXPORT)
RECORD_MAX_BYTES = 4 << 20
_CHUNK = 1 << 20


class RecordError(ValueError):
    """A record file that is not a well-formed envelope."""


def canonical(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(_no_floats(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _no_floats(value: Any) -> Any:
    if isinstance(value, float):
        raise TypeError("signed records hold no floats: write times as text and counts as integers")
    if isinstance(value, Mapping):
        return {str(k): _no_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_floats(v) for v in value]
    return value


def signed_bytes(kind: str, payload: Mapping[str, Any]) -> bytes:
    return f"privacy-dashcam {kind}\n".encode() + canonical(payload)


@dataclass(frozen=True)
class SignedRecord:
    kind: str
    payload: Mapping[str, Any]
    signature: bytes

    @classmethod
    def sign(cls, key: Ed25519PrivateKey, kind: str, payload: Mapping[str, Any]) -> SignedRecord:
        payload = dict(payload)
        return cls(kind, payload, key.sign(signed_bytes(kind, payload)))

    @property
    def sha256(self) -> str:
        """The record's identity: what the next manifest's `previous` names."""
        return hashlib.sha256(signed_bytes(self.kind, self.payload)).hexdigest()

    def is_signed_by(self, key: Ed25519PublicKey) -> bool:
        try:
            key.verify(self.signature, signed_bytes(self.kind, self.payload))
        except InvalidSignature:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "payload": dict(self.payload),
                "signature": base64.b64encode(self.signature).decode("ascii")}

    def to_line(self) -> bytes:
        """The record as one line of a log (the deletion log)."""
        return json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: Any) -> SignedRecord:
        if not isinstance(data, dict):
            raise RecordError("a signed record is a JSON object")
        kind, payload, signature = data.get("kind"), data.get("payload"), data.get("signature")
        if kind not in KINDS:
            raise RecordError(f"unknown record kind {kind!r}")
        if not isinstance(payload, dict) or not isinstance(signature, str):
            raise RecordError("a signed record has a payload object and a signature text")
        try:
            raw = base64.b64decode(signature, validate=True)
            signed_bytes(kind, payload)  # floats, NaN: not a record this code signed
        except (binascii.Error, TypeError, ValueError) as exc:
            raise RecordError(f"malformed record: {exc}") from None
        return cls(kind, payload, raw)

    @classmethod
    def read(cls, path: Path) -> SignedRecord:
        """One record file; RecordError (or OSError) when it is not one."""
        with path.open("rb") as handle:
            data = handle.read(RECORD_MAX_BYTES + 1)
        if len(data) > RECORD_MAX_BYTES:
            raise RecordError("larger than any record")
        try:
            return cls.from_json(json.loads(data))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RecordError(f"not JSON: {exc}") from None


def sha256_file(path: Path) -> tuple[str, int]:
    """(hex sha256, size in bytes) of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
