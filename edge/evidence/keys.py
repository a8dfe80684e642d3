"""The device's Ed25519 key pair: made on first use, the private key readable by its owner only.

`key_dir` holds `device-key.pem` (PKCS#8, mode 0600, in a folder of mode 0700) and
`device-key.pub.pem` (SubjectPublicKeyInfo, shareable). The key is made on the first
`dashcam run` or `dashcam key`, never replaced: a new key would make a new device
whose footage no earlier public key verifies. It lives outside the recordings folder,
so a card or USB drive handed to someone does not carry the means to forge footage.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.errors import SourceError, StorageError
from edge.record.atomic import FOLDER_MODE, open_error_reason, write_atomic

PRIVATE_NAME = "device-key.pem"
PUBLIC_NAME = "device-key.pub.pem"
KEY_DIR_NAME = "privacy-dashcam"
PUBLIC_KEY_MAX_BYTES = 64 << 10


def key_dir(configured: str) -> Path:
    """`evidence.key_dir`; when empty `$XDG_STATE_HOME/privacy-dashcam`, else `~/.local/state/privacy-dashcam`
    (install-pi.sh configures /var/lib/dashcam/keys)."""
    if configured:
        return Path(configured).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / KEY_DIR_NAME


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """Who signed: the first 16 bytes of the sha256 of the raw public key, hex, in groups of four."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = hashlib.sha256(raw).hexdigest()[:32]
    return ":".join(digest[i:i + 4] for i in range(0, 32, 4))


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class DeviceKey:
    private: Ed25519PrivateKey
    directory: Path

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public)

    @property
    def public_path(self) -> Path:
        return self.directory / PUBLIC_NAME

    @classmethod
    def load_or_create(cls, directory: Path) -> DeviceKey:
        """The key in `directory`, made there (with its public half) when there is none."""
        private_path = directory / PRIVATE_NAME
        if not private_path.exists():
            return cls._create(directory)
        _check_private_mode(private_path)
        try:
            key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        except OSError as exc:
            raise StorageError(f"cannot read the device key {private_path}: {open_error_reason(exc, private_path)}"
                               ) from None
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise SourceError(f"{private_path} is not a PEM Ed25519 private key (damaged?); move it away only "
                              "if you accept that footage signed so far verifies with the old public key only"
                              ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SourceError(f"{private_path} is not an Ed25519 key")
        device = cls(key, directory)
        if not device.public_path.exists():
            write_atomic(device.public_path, public_pem(key.public_key()))
        return device

    @classmethod
    def load(cls, directory: Path) -> DeviceKey | None:
        """The key in `directory`, or None when none was made there (nothing is created)."""
        return cls.load_or_create(directory) if (directory / PRIVATE_NAME).exists() else None

    @classmethod
    def _create(cls, directory: Path) -> DeviceKey:
        try:
            directory.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot make the key folder {directory}: {exc.strerror or exc} "
                               "(set evidence.key_dir to a writable folder)") from None
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        write_atomic(directory / PRIVATE_NAME, pem)  # 0600, created exclusively, never through a link
        write_atomic(directory / PUBLIC_NAME, public_pem(key.public_key()))
        return cls(key, directory)


def _check_private_mode(path: Path) -> None:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise StorageError(f"the device key {path} is readable by others (mode {mode:o}): chmod 600 {path}")


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM public key (as `dashcam key --show` prints it); SourceError naming the file otherwise."""
    try:
        with path.open("rb") as handle:
            data = handle.read(PUBLIC_KEY_MAX_BYTES + 1)
    except OSError as exc:
        raise SourceError(f"cannot read the public key {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SourceError(f"{path} is not a PEM public key (expected the file `dashcam key --show` prints)"
                          ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise SourceError(f"{path} is not an Ed25519 public key")
    return key
