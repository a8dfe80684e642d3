"""Signed records: a signature survives the trip through a file and fails on any change; keys are private."""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.errors import SourceError, StorageError
from edge.evidence.keys import PRIVATE_NAME, PUBLIC_NAME, DeviceKey, load_public_key
from edge.evidence.records import HEAD, MANIFEST, RecordError, SignedRecord, canonical

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()

values = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20),
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                   max_size=4), max_leaves=12)
payloads = st.dictionaries(st.text(min_size=1, max_size=8), values, min_size=1, max_size=6)


@given(payloads)
def test_a_signature_verifies_after_the_file_round_trip_and_fails_after_any_change(payload):
    record = SignedRecord.sign(KEY, MANIFEST, payload)
    again = SignedRecord.from_json(json.loads(record.to_bytes()))
    assert again.is_signed_by(KEY.public_key()) and again.sha256 == record.sha256
    assert not again.is_signed_by(OTHER.public_key())
    key = sorted(payload)[0]
    changed = SignedRecord(MANIFEST, {**payload, key: ["changed", payload[key]]}, record.signature)
    assert not changed.is_signed_by(KEY.public_key())


def test_a_signature_of_one_kind_is_not_valid_for_another():
    record = SignedRecord.sign(KEY, MANIFEST, {"sequence": 1})
    assert not SignedRecord(HEAD, record.payload, record.signature).is_signed_by(KEY.public_key())


def test_canonical_bytes_sort_keys_and_refuse_floats():
    assert canonical({"b": 1, "a": {"d": "é", "c": [2]}}) == '{"a":{"c":[2],"d":"é"},"b":1}'.encode()
    with pytest.raises(TypeError, match="no floats"):
        canonical({"fps": 29.97})


@pytest.mark.parametrize("data", [[], {"kind": "nonsense", "payload": {}, "signature": ""},
                                  {"kind": "manifest", "payload": {}, "signature": "not base64!"},
                                  {"kind": "manifest", "payload": {"x": 1.5}, "signature": ""}])
def test_malformed_envelopes_are_refused_with_a_record_error(data):
    with pytest.raises(RecordError):
        SignedRecord.from_json(data)


def test_the_device_key_is_made_once_private_and_reused(tmp_path):
    folder = tmp_path / "keys"
    key = DeviceKey.load_or_create(folder)
    assert (folder.stat().st_mode & 0o777) == 0o700
    assert (os.stat(folder / PRIVATE_NAME).st_mode & 0o777) == 0o600
    assert DeviceKey.load_or_create(folder).fingerprint == key.fingerprint
    assert load_public_key(folder / PUBLIC_NAME) is not None
    assert len(key.fingerprint) == 39  # 8 groups of 4 hex digits


def test_a_key_others_can_read_or_a_damaged_one_is_refused_with_one_line(tmp_path):
    folder = tmp_path / "keys"
    DeviceKey.load_or_create(folder)
    os.chmod(folder / PRIVATE_NAME, 0o644)
    with pytest.raises(StorageError, match="readable by others.*chmod 600"):
        DeviceKey.load_or_create(folder)
    os.chmod(folder / PRIVATE_NAME, 0o600)
    (folder / PRIVATE_NAME).write_bytes(b"garbage")
    with pytest.raises(SourceError, match="not a PEM Ed25519 private key"):
        DeviceKey.load_or_create(folder)
    (tmp_path / "pub.pem").write_text("hello")
    with pytest.raises(SourceError, match="not a PEM public key"):
        load_public_key(tmp_path / "pub.pem")
