"""Who may use the web app: one password, sessions in memory, CSRF tokens, and a login rate limit.

The password is stored as a scrypt hash (stdlib `hashlib.scrypt`, n=2**14, r=8, p=1, a
random 16-byte salt) in `web-password` (mode 0600) in the web state folder. Sessions are
random tokens held in memory (a restart logs everyone out), sent as an `HttpOnly`,
`SameSite=Strict` cookie; each has its own CSRF token that every state-changing form
carries. Failed logins from one address are slowed: after `MAX_FAILURES` the address waits,
twice as long after each further failure, up to 15 minutes.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge.errors import SourceError
from edge.record.atomic import FOLDER_MODE, write_atomic

PASSWORD_NAME = "web-password"
DOCTOR_NAME = "doctor-last.json"  # the last `dashcam doctor` results, for the status page
PREVIEW_NAME = "doctor-preview.jpg"  # its redacted preview frame (fixed masks, stamp), for the status page
MIN_PASSWORD_CHARS = 8
SESSION_SECONDS = 12 * 3600
MAX_FAILURES = 5
FIRST_WAIT_S = 30.0
MAX_WAIT_S = 900.0
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def web_state_dir(configured: str, key_dir: Path) -> Path:
    """`web.state_dir`, or the device key's folder (both hold secrets of this car, off the footage's drive)."""
    return Path(configured).expanduser() if configured else key_dir


class PasswordStore:
    def __init__(self, directory: Path) -> None:
        self.path = directory / PASSWORD_NAME

    def is_set(self) -> bool:
        return self.path.is_file()

    def set(self, password: str) -> None:
        if len(password) < MIN_PASSWORD_CHARS:
            raise SourceError(f"the password needs at least {MIN_PASSWORD_CHARS} characters")
        salt = secrets.token_bytes(16)
        record = {"scheme": "scrypt", **_SCRYPT, "salt": base64.b64encode(salt).decode(),
                  "hash": base64.b64encode(_hash(password, salt, _SCRYPT)).decode()}
        self.path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(record).encode())  # 0600

    def check(self, password: str) -> bool:
        try:
            record = json.loads(self.path.read_text())
            params = {k: int(record[k]) for k in ("n", "r", "p")}
            expected = base64.b64decode(record["hash"])
            actual = _hash(password, base64.b64decode(record["salt"]), params)
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return hmac.compare_digest(actual, expected)


def _hash(password: str, salt: bytes, params: dict[str, int]) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=params["n"], r=params["r"], p=params["p"],
                          maxmem=64 << 20, dklen=32)


@dataclass(frozen=True)
class Session:
    token: str
    csrf: str
    expires: float


class Sessions:
    def __init__(self, lifetime_s: float = SESSION_SECONDS) -> None:
        self._lifetime_s = lifetime_s
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.monotonic() + self._lifetime_s)
        with self._lock:
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and session.expires < time.monotonic():
                del self._sessions[token]
                return None
        return session

    def end(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)


class LoginLimiter:
    """Failed logins per client address; `wait_s` says how long the address must still wait (0 = may try)."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, tuple[int, float]] = {}  # address -> (failures, not before)
        self._lock = threading.Lock()

    def wait_s(self, address: str) -> float:
        with self._lock:
            _count, not_before = self._failures.get(address, (0, 0.0))
        return max(0.0, not_before - self._clock())

    def failed(self, address: str) -> None:
        with self._lock:
            count, _ = self._failures.get(address, (0, 0.0))
            count += 1
            wait = 0.0 if count < MAX_FAILURES else min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** (count - MAX_FAILURES))
            self._failures[address] = (count, self._clock() + wait)

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
