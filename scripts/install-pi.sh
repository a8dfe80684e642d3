#!/usr/bin/env bash
# Install dashcam as a systemd service on Raspberry Pi OS / Debian / Ubuntu (arm64).
#
#   sudo scripts/install-pi.sh [--config pi5|pi4|jetson-orin|usb-camera|FILE]
#                              [--external-drive MOUNTPOINT] [--uart ttyAMA0]
#                              [--no-apt] [--no-pip] [--no-user] [--no-systemctl]
#
# Idempotent: running it again updates the program, the unit and the udev rule, and keeps
# an existing /etc/dashcam/config.yaml (your edits). Every path is under ${DASHCAM_ROOT:-}
# so tests can install into a temp dir; with DASHCAM_ROOT set, apt, useradd and systemctl
# are skipped. Uninstall with scripts/uninstall-pi.sh.
set -euo pipefail

ROOT="${DASHCAM_ROOT:-}"
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG_NAME="pi5"
EXTERNAL=""
UART=""
DO_APT=1 DO_PIP=1 DO_USER=1 DO_SYSTEMCTL=1
if [[ -n "$ROOT" ]]; then DO_APT=0 DO_USER=0 DO_SYSTEMCTL=0; fi

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "install-pi: error: $*" >&2; exit 2; }
say() { echo "install-pi: $*"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --config) CONFIG_NAME="${2:?--config needs a value}"; shift 2 ;;
    --external-drive) EXTERNAL="${2:?--external-drive needs a mount point}"; shift 2 ;;
    --uart) UART="${2:?--uart needs a device name}"; shift 2 ;;
    --no-apt) DO_APT=0; shift ;;
    --no-pip) DO_PIP=0; shift ;;
    --no-user) DO_USER=0; shift ;;
    --no-systemctl) DO_SYSTEMCTL=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install-pi: unknown option $1" >&2; usage 2 ;;
  esac
done

if [[ -z "$ROOT" && "$(id -u)" -ne 0 ]]; then die "run as root (sudo), or set DASHCAM_ROOT"; fi

if [[ -f "$CONFIG_NAME" ]]; then CONFIG_SRC="$CONFIG_NAME"; else CONFIG_SRC="$SRC/configs/$CONFIG_NAME.yaml"; fi
[[ -f "$CONFIG_SRC" ]] || die "no config $CONFIG_NAME (have: $(cd "$SRC/configs" && ls ./*.yaml | xargs -n1 basename | sed 's/.yaml$//' | tr '\n' ' '))"

OPT="$ROOT/opt/dashcam"
ETC="$ROOT/etc/dashcam"
UNIT="$ROOT/etc/systemd/system/dashcam.service"
UDEV="$ROOT/etc/udev/rules.d/99-dashcam-gps.rules"
JOURNALD="$ROOT/etc/systemd/journald.conf.d/50-dashcam.conf"

# ---- recordings: on the SD card, or on an external drive that must be mounted now ----------------------
is_mounted() {
  if command -v mountpoint >/dev/null 2>&1; then mountpoint -q "$1"; return; fi
  awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}
if [[ -n "$EXTERNAL" ]]; then
  is_mounted "$ROOT$EXTERNAL" || die "external drive $EXTERNAL is not mounted: mount it (and add it to /etc/fstab with nofail) first, or leave out --external-drive to record on the SD card"
  RECORDINGS="$EXTERNAL/dashcam"
else
  RECORDINGS="/var/lib/dashcam/recordings"
fi

# ---- packages, user, program ----------------------------------------------------------------------------
if [[ "$DO_APT" -eq 1 ]]; then
  say "installing system packages"
  apt-get update -qq
  # python3-opencv: the Debian build has GStreamer support (the PyPI wheel has none).
  apt-get install -y -qq python3-venv python3-opencv gstreamer1.0-tools gstreamer1.0-plugins-good
  apt-get install -y -qq gstreamer1.0-libcamera 2>/dev/null || say "no gstreamer1.0-libcamera here (not a Pi?)"
fi

if [[ "$DO_USER" -eq 1 ]] && ! id dashcam >/dev/null 2>&1; then
  say "creating system user dashcam (groups dialout, video)"
  useradd --system --home-dir /var/lib/dashcam --shell /usr/sbin/nologin --groups dialout,video dashcam
fi

# The signing key stays on the SD card's system partition, never beside footage on an external drive.
KEYS="/var/lib/dashcam/keys"
mkdir -p "$OPT" "$ETC" "$ROOT$RECORDINGS" "$ROOT$KEYS"
chmod 0750 "$ROOT$RECORDINGS"  # footage and GPS tracks are personal data
chmod 0700 "$ROOT$KEYS"
if [[ "$DO_USER" -eq 1 ]]; then chown dashcam:dashcam "$ROOT$RECORDINGS" "$ROOT$KEYS"; fi

if [[ "$DO_PIP" -eq 1 ]]; then
  say "installing dashcam into $OPT/venv"
  [[ -x "$OPT/venv/bin/python" ]] || python3 -m venv --system-site-packages "$OPT/venv"
  "$OPT/venv/bin/pip" install --quiet --upgrade "$SRC[web]"  # [web]: the phone app (dashcam serve)
  if grep -q '^ *kind: gstreamer' "$CONFIG_SRC"; then
    # The PyPI OpenCV wheel has no GStreamer and would shadow Debian's python3-opencv, which has.
    "$OPT/venv/bin/pip" uninstall --quiet --yes opencv-python-headless opencv-python 2>/dev/null || true
    "$OPT/venv/bin/python" -c 'import cv2, sys; sys.exit("GStreamer: YES" not in cv2.getBuildInformation())' \
      || say "warning: this OpenCV has no GStreamer support; the camera pipeline will not open"
  fi
fi

# ---- config: never overwrite the user's edits -----------------------------------------------------------
if [[ ! -f "$ETC/config.yaml" ]]; then
  sed "s#^  directory: .*#  directory: $RECORDINGS#" "$CONFIG_SRC" > "$ETC/config.yaml"
  grep -q '^evidence:' "$ETC/config.yaml" || printf 'evidence:\n  key_dir: %s\n' "$KEYS" >> "$ETC/config.yaml"
  say "wrote $ETC/config.yaml from $CONFIG_SRC (recordings in $RECORDINGS)"
else
  say "keeping existing $ETC/config.yaml"
fi

# ---- udev: /dev/gps0 for a u-blox USB receiver or the header UART ---------------------------------------
if [[ -z "$UART" ]]; then
  # serial0 points at the UART on pins 8/10: ttyAMA0 on a Pi 5, ttyS0 on a Pi 4 with Bluetooth on.
  UART="$(basename "$(readlink -f /dev/serial0 2>/dev/null || echo ttyAMA0)")"
  [[ "$UART" == serial0 ]] && UART=ttyAMA0
fi
mkdir -p "$(dirname "$UDEV")"
cat > "$UDEV" <<RULES
# Written by dashcam install-pi.sh: the GPS receiver as /dev/gps0 (gps.port in /etc/dashcam/config.yaml).
# u-blox USB receivers (CDC-ACM, vendor 1546).
SUBSYSTEM=="tty", ATTRS{idVendor}=="1546", SYMLINK+="gps0", GROUP="dialout", MODE="0660"
# A receiver wired to the GPIO header UART (pins 8 TX / 10 RX), the device serial0 points at.
SUBSYSTEM=="tty", KERNEL=="$UART", SYMLINK+="gps0", GROUP="dialout", MODE="0660"
RULES

# ---- systemd unit ---------------------------------------------------------------------------------------
mkdir -p "$(dirname "$UNIT")"
cat > "$UNIT" <<UNITFILE
# Written by dashcam install-pi.sh; rerun it rather than editing (or use systemctl edit dashcam).
[Unit]
Description=Privacy-first dashcam recorder
Documentation=file:///opt/dashcam
After=local-fs.target time-sync.target
RequiresMountsFor=$RECORDINGS

[Service]
# READY=1 once the models are loaded; WATCHDOG=1 while frames are being stored.
Type=notify
NotifyAccess=main
User=dashcam
Group=dashcam
SupplementaryGroups=dialout video
ExecStart=/opt/dashcam/venv/bin/dashcam run --config /etc/dashcam/config.yaml
# A crash or a wedged camera/encoder restarts it; exit 2 is a config, setup or storage error that a
# restart cannot fix (see \`dashcam doctor\`; a disk full of locked footage), so it stays stopped.
Restart=on-failure
RestartSec=5
RestartPreventExitStatus=2
# A stop during start-up (models still loading) exits 130: a clean stop, not a failure.
SuccessExitStatus=130
WatchdogSec=30
# Model loading (and a TensorRT engine build on a Jetson) happens before READY=1.
TimeoutStartSec=300
# SIGTERM finishes the current segment first.
TimeoutStopSec=30
ProtectSystem=strict
ReadWritePaths=$RECORDINGS $KEYS
ProtectHome=true
PrivateTmp=true
NoNewPrivileges=true

[Install]
WantedBy=multi-user.target
UNITFILE

# ---- logs: journald only; cap its size, the SD card is shared with the footage ------------------------
mkdir -p "$(dirname "$JOURNALD")"
cat > "$JOURNALD" <<JOURNAL
# Written by dashcam install-pi.sh. dashcam logs to the journal only (no log files to rotate);
# this caps the journal. Read it with: journalctl -u dashcam
[Journal]
SystemMaxUse=64M
JOURNAL

if [[ "$DO_SYSTEMCTL" -eq 1 ]]; then
  udevadm control --reload-rules && udevadm trigger --subsystem-match=tty || say "udev reload failed; reboot to apply"
  systemctl restart systemd-journald || true
  systemctl daemon-reload
  systemctl enable dashcam.service
  # The device key, made now so its fingerprint can be written down: recipients of exported footage check it.
  sudo -u dashcam "$OPT/venv/bin/dashcam" key --config /etc/dashcam/config.yaml | head -1 | sed 's/^/install-pi: device key /' \
    || say "could not make the device key now; the first run makes it (see: dashcam key)"
  say "check the hardware: sudo -u dashcam $OPT/venv/bin/dashcam doctor --config /etc/dashcam/config.yaml"
  say "then start it: sudo systemctl start dashcam; follow it: journalctl -fu dashcam"
fi
say "done"
