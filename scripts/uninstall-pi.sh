#!/usr/bin/env bash
# Remove the dashcam service installed by install-pi.sh.
#
#   sudo scripts/uninstall-pi.sh [--purge] [--no-systemctl]
#
# Removes the unit, the udev rule, the journald cap and /opt/dashcam. --purge also removes
# /etc/dashcam and the dashcam user. Recordings are never removed here: erase them first with
# `dashcam wipe --config /etc/dashcam/config.yaml` if the device is being sold.
# Idempotent; every path is under ${DASHCAM_ROOT:-} (then systemctl and userdel are skipped).
set -euo pipefail

ROOT="${DASHCAM_ROOT:-}"
PURGE=0 DO_SYSTEMCTL=1
[[ -n "$ROOT" ]] && DO_SYSTEMCTL=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --purge) PURGE=1; shift ;;
    --no-systemctl) DO_SYSTEMCTL=0; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall-pi: unknown option $1" >&2; exit 2 ;;
  esac
done

if [[ -z "$ROOT" && "$(id -u)" -ne 0 ]]; then echo "uninstall-pi: error: run as root (sudo)" >&2; exit 2; fi

if [[ "$DO_SYSTEMCTL" -eq 1 ]]; then
  systemctl disable --now dashcam.service 2>/dev/null || true
fi
rm -f "$ROOT/etc/systemd/system/dashcam.service" \
      "$ROOT/etc/udev/rules.d/99-dashcam-gps.rules" \
      "$ROOT/etc/systemd/journald.conf.d/50-dashcam.conf"
rm -rf "$ROOT/opt/dashcam"
if [[ "$PURGE" -eq 1 ]]; then
  rm -rf "$ROOT/etc/dashcam"
  if [[ -z "$ROOT" ]] && id dashcam >/dev/null 2>&1; then userdel dashcam; fi
fi
if [[ "$DO_SYSTEMCTL" -eq 1 ]]; then
  systemctl daemon-reload
  udevadm control --reload-rules || true
fi
echo "uninstall-pi: done (recordings were kept)"
