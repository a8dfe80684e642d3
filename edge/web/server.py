"""Running the web app: uvicorn in front (`dashcam serve`) or in a thread of `dashcam run`, optionally with TLS.

The listening socket is bound here, before uvicorn starts, so a port in use or an address
this machine does not have is one clear error instead of uvicorn's exit. With `web.tls`
a self-signed certificate (EC P-256, ten years, the host's address as subject alternative
name) is made on first use in the web state folder; the phone warns once, and the traffic
on the car's Wi-Fi is then encrypted.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import threading
from pathlib import Path

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette

from edge.config import WebConfig
from edge.errors import StorageError
from edge.record.atomic import write_atomic

log = logging.getLogger(__name__)

CERT_NAME = "web-cert.pem"
CERT_KEY_NAME = "web-cert-key.pem"


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket, or one line naming the problem."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(64)
    except OSError as exc:
        raise StorageError(f"the web app cannot listen on {host}:{port}: {exc.strerror or exc} "
                           "(another program on that port? set web.port or web.host)") from None
    return sock


def tls_files(state_dir: Path, host: str) -> tuple[Path, Path]:
    """The self-signed certificate and its key, made on first use."""
    cert, key_path = state_dir / CERT_NAME, state_dir / CERT_KEY_NAME
    if cert.is_file() and key_path.is_file():
        return cert, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "privacy-dashcam")])
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=3650))
                   .add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .sign(key, hashes.SHA256()))
    write_atomic(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    write_atomic(cert, certificate.public_bytes(serialization.Encoding.PEM))
    log.warning("made a self-signed TLS certificate %s: the browser asks once whether to trust it", cert)
    return cert, key_path


class WebServer:
    def __init__(self, app: Starlette, config: WebConfig, state_dir: Path) -> None:
        self._socket = listen(config.host, config.port)
        self.port = self._socket.getsockname()[1]
        tls = tls_files(state_dir, config.host) if config.tls else None
        self.url = f"{'https' if tls else 'http'}://{config.host}:{self.port}/"
        self._server = uvicorn.Server(uvicorn.Config(
            app, log_level="warning", access_log=False, server_header=False, timeout_graceful_shutdown=3,
            ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None))
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """In front, until SIGINT or SIGTERM (uvicorn's own handlers)."""
        self._server.run(sockets=[self._socket])

    def start(self) -> None:
        """In a thread of its own (inside `dashcam run`); `stop` ends it."""
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, name="web",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()
