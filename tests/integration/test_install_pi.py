"""scripts/install-pi.sh and uninstall-pi.sh into a temp root (DASHCAM_ROOT): files, idempotence,
the external-drive refusal, `systemd-analyze verify` on the unit, and removal."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edge.config import load_config

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "scripts" / "install-pi.sh"
UNINSTALL = REPO / "scripts" / "uninstall-pi.sh"
UNIT = "etc/systemd/system/dashcam.service"
UDEV = "etc/udev/rules.d/99-dashcam-gps.rules"
JOURNALD = "etc/systemd/journald.conf.d/50-dashcam.conf"
CONFIG = "etc/dashcam/config.yaml"


def _run(script: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DASHCAM_ROOT": str(root)}
    return subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_install_writes_unit_udev_config_and_is_idempotent(tmp_path: Path):
    first = _run(INSTALL, tmp_path, "--no-pip", "--config", "pi4", "--uart", "ttyS0")
    assert first.returncode == 0, first.stderr
    unit = (tmp_path / UNIT).read_text(encoding="utf-8")
    for line in ("Type=notify", "NotifyAccess=main", "Restart=on-failure", "RestartPreventExitStatus=2",
                 "SuccessExitStatus=130", "WatchdogSec=30", "User=dashcam",
                 "ExecStart=/opt/dashcam/venv/bin/dashcam run --config /etc/dashcam/config.yaml"):
        assert line in unit.splitlines()
    rules = (tmp_path / UDEV).read_text(encoding="utf-8")
    assert 'ATTRS{idVendor}=="1546"' in rules and 'KERNEL=="ttyS0"' in rules and 'SYMLINK+="gps0"' in rules
    assert "SystemMaxUse" in (tmp_path / JOURNALD).read_text(encoding="utf-8")
    config = load_config(tmp_path / CONFIG)  # the installed config validates
    assert config.record.directory == "/var/lib/dashcam/recordings" and config.record.preset == "superfast"
    assert config.evidence.key_dir == "/var/lib/dashcam/keys"  # off the footage's drive, writable by the unit
    assert (tmp_path / "var/lib/dashcam/recordings").is_dir()

    before = _snapshot(tmp_path)
    second = _run(INSTALL, tmp_path, "--no-pip", "--config", "pi4", "--uart", "ttyS0")
    assert second.returncode == 0, second.stderr
    assert "keeping existing" in second.stdout
    assert _snapshot(tmp_path) == before


def test_install_keeps_the_users_config_edits(tmp_path: Path):
    assert _run(INSTALL, tmp_path, "--no-pip").returncode == 0
    (tmp_path / CONFIG).write_text("gps: {source: none}\n", encoding="utf-8")
    assert _run(INSTALL, tmp_path, "--no-pip").returncode == 0
    assert (tmp_path / CONFIG).read_text(encoding="utf-8") == "gps: {source: none}\n"


def test_install_refuses_an_external_drive_that_is_not_mounted(tmp_path: Path):
    (tmp_path / "media" / "ssd").mkdir(parents=True)
    done = _run(INSTALL, tmp_path, "--no-pip", "--external-drive", "/media/ssd")
    assert done.returncode == 2 and "not mounted" in done.stderr
    assert not (tmp_path / UNIT).exists() and not (tmp_path / CONFIG).exists()


def test_unknown_config_name_is_refused(tmp_path: Path):
    done = _run(INSTALL, tmp_path, "--no-pip", "--config", "pi9")
    assert done.returncode == 2 and "no config pi9" in done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path):
    root = tmp_path / "root"
    assert _run(INSTALL, root, "--no-pip").returncode == 0
    # verify also checks that ExecStart exists on this machine: point it at a stub in the temp root.
    stub = root / "opt/dashcam/venv/bin/dashcam"
    stub.parent.mkdir(parents=True)
    stub.write_text("#!/bin/sh\n", encoding="ascii")
    stub.chmod(0o755)
    checked = tmp_path / "verify" / "dashcam.service"
    checked.parent.mkdir()
    checked.write_text((root / UNIT).read_text(encoding="utf-8").replace("ExecStart=/opt", f"ExecStart={root}/opt"),
                       encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", str(checked)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_uninstall_removes_what_install_wrote_and_keeps_recordings(tmp_path: Path):
    assert _run(INSTALL, tmp_path, "--no-pip").returncode == 0
    (tmp_path / "opt/dashcam/venv").mkdir(parents=True)
    for _ in range(2):  # idempotent
        done = _run(UNINSTALL, tmp_path)
        assert done.returncode == 0, done.stderr
    for path in (UNIT, UDEV, JOURNALD, "opt/dashcam"):
        assert not (tmp_path / path).exists()
    assert (tmp_path / CONFIG).exists() and (tmp_path / "var/lib/dashcam/recordings").is_dir()
    assert _run(UNINSTALL, tmp_path, "--purge").returncode == 0
    assert not (tmp_path / "etc/dashcam").exists()
