"""The transport: rclone (Debian's `rclone`), so the owner can point uploads at any remote it supports.

Only named files are ever sent (`copy --files-from-raw`, never a folder sync), so what
leaves the car is exactly what the uploader chose. A file already on the remote with the
same size and time is skipped, and a half-sent one (the network dropped, the car was
switched off) differs in size and is sent again: re-running is safe. What arrived is
checked with `lsjson --hash`: sizes always, and every hash the remote reports (MD5,
SHA-1, ...) against the local file's.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from edge.errors import SourceError

log = logging.getLogger(__name__)

# Give up on a dead network in seconds, not minutes: the queue retries later anyway.
_NETWORK_FLAGS = ["--contimeout", "15s", "--timeout", "60s", "--retries", "1", "--low-level-retries", "2"]
_HASHES = {"md5": "md5", "sha1": "sha1", "sha256": "sha256"}  # rclone's hash names -> hashlib's


class RcloneError(Exception):
    """rclone failed (network, remote, credentials); the message is rclone's last error line."""


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    hashes: dict[str, str] = field(default_factory=dict)


class Rclone:
    def __init__(self, remote: str, config_file: str = "", bandwidth: str = "off", binary: str = "rclone") -> None:
        self.remote = remote.rstrip("/")
        self._base = [binary, *(["--config", config_file] if config_file else []), *_NETWORK_FLAGS]
        self._bandwidth = ["--bwlimit", bandwidth] if bandwidth != "off" else []
        self._binary = binary
        self._process: subprocess.Popen | None = None
        self._stopped = threading.Event()

    def check_installed(self) -> None:
        if shutil.which(self._binary) is None:
            raise SourceError(f"uploads need rclone, which is not installed: sudo apt install rclone "
                              f"(then `rclone config` to set up the remote {self.remote.split(':')[0]})")

    def copy(self, folder: Path, names: list[str]) -> None:
        """Send these files of `folder` into the remote folder; the ones already there unchanged are skipped."""
        self._run(["copy", "--files-from-raw", "-", *self._bandwidth, "--", str(folder), self.remote],
                  stdin="".join(f"{name}\n" for name in names))

    def copy_file(self, local: Path, name: str) -> None:
        self._run(["copyto", *self._bandwidth, "--", str(local), f"{self.remote}/{name}"])

    def listing(self, names: list[str]) -> dict[str, RemoteFile]:
        """These files of the remote folder that exist, with the hashes the remote knows."""
        output = self._run(["lsjson", "--hash", "--files-only", "--files-from-raw", "-", "--", self.remote],
                           stdin="".join(f"{name}\n" for name in names), missing_ok=True)
        try:
            entries = json.loads(output or "[]")
        except json.JSONDecodeError as exc:
            raise RcloneError(f"rclone lsjson gave no JSON: {exc}") from None
        return {e["Path"]: RemoteFile(e["Path"], int(e.get("Size", -1)), {k.lower(): v for k, v in
                                                                          (e.get("Hashes") or {}).items()})
                for e in entries if isinstance(e, dict) and "Path" in e}

    def stop(self) -> None:
        """End a transfer now (the run is stopping); the queue sends the file again next time."""
        self._stopped.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)

    def _run(self, args: list[str], stdin: str | None = None, missing_ok: bool = False) -> str:
        if self._stopped.is_set():
            raise RcloneError("stopped")
        command = [*self._base, *args]
        log.debug("running %s", " ".join(command))
        try:
            self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True)
        except OSError as exc:
            raise RcloneError(f"cannot run rclone: {exc.strerror or exc}") from None
        stdout, stderr = self._process.communicate(stdin)
        code, self._process = self._process.returncode, None
        if code == 3 and missing_ok:  # rclone: directory not found
            return ""
        if code != 0:
            raise RcloneError(_last_error(stderr) or f"rclone {args[0]} exited with status {code}")
        return stdout


def _last_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "Failed" in line] or lines
    return errors[-1][-300:] if errors else ""


def local_hashes(path: Path, names: set[str]) -> dict[str, str]:
    """The hashes named (rclone's names) that hashlib knows, of a local file, in one read."""
    digests = {name: hashlib.new(_HASHES[name]) for name in names if name in _HASHES}
    if digests:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                for digest in digests.values():
                    digest.update(chunk)
    return {name: digest.hexdigest() for name, digest in digests.items()}
