#!/usr/bin/env bash
# Make the real PC/SC stack ready for the card tests (tests/test_cards.py):
#   1. install pcscd, vsmartcard-vpcd (virtual readers "Virtual PCD 00 00/01" on TCP
#      35963/35964), libpcsclite-dev and swig (to build pyscard) when missing — apt-get as
#      root, otherwise print the command and fail;
#   2. start pcscd in the background (no --auto-exit) unless it already runs;
#   3. wait until pcscd answers (and, when a Python with pyscard is found, until the vpcd
#      readers are listed).
# Idempotent; prints what it did; exits 0 when ready. Log of a pcscd it started:
# $PCSCD_LOG (default /tmp/pcscd-test.log). Python used for the reader check: $PYTHON
# (default .venv/bin/python next to this script's project, else python3).
set -euo pipefail

PACKAGES=(pcscd vsmartcard-vpcd libpcsclite-dev swig)
PCSCD_LOG=${PCSCD_LOG:-/tmp/pcscd-test.log}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-}
if [[ -z $PYTHON ]]; then
  if [[ -x $ROOT/.venv/bin/python ]]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
SOCKET_DIR=/run/pcscd
[[ -d /var/run/pcscd && ! -d /run/pcscd ]] && SOCKET_DIR=/var/run/pcscd
SOCKET=$SOCKET_DIR/pcscd.comm

say() { echo "pcsc-test-env: $*"; }

# 1. packages ---------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing packages: ${missing[*]}"
    say "run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
else
  say "packages present (${PACKAGES[*]})"
fi
if [[ ! -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so && -z $(ls /usr/lib/pcsc/drivers/serial/libifdvpcd.so* 2>/dev/null) ]]; then
  say "vsmartcard-vpcd is installed but its driver libifdvpcd.so is missing"; exit 1
fi

# 2. pcscd ------------------------------------------------------------------------------
running_pid() {  # a live pcscd (a zombie left by a killed one does not count)
  local p
  for p in $(pgrep -x pcscd 2>/dev/null || true); do
    [[ $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) != Z ]] && { echo "$p"; return; }
  done
  return 0
}
pid=$(running_pid)
if [[ -n $pid ]]; then
  say "pcscd already running (pid $pid)"
elif command -v systemctl >/dev/null && systemctl is-active --quiet pcscd.socket 2>/dev/null; then
  say "pcscd is socket-activated by systemd (pcscd.socket active)"
  pid=systemd
else
  if [[ $(id -u) != 0 ]]; then
    say "pcscd is not running and starting it needs root: sudo pcscd"; exit 1
  fi
  # A pcscd that died leaves its pid file and socket behind; the new one would refuse them.
  if [[ -e $SOCKET_DIR/pcscd.pid ]]; then
    say "removing stale $SOCKET_DIR/pcscd.pid and socket"
    rm -f "$SOCKET_DIR/pcscd.pid" "$SOCKET"
  fi
  setsid nohup pcscd --foreground >"$PCSCD_LOG" 2>&1 </dev/null &
  disown || true
  for _ in $(seq 50); do
    pid=$(running_pid); [[ -n $pid && -S $SOCKET ]] && break; sleep 0.1
  done
  if [[ -z $pid ]]; then
    say "pcscd did not start; its log ($PCSCD_LOG):"; cat "$PCSCD_LOG" >&2 || true; exit 1
  fi
  say "started pcscd in the background (pid $pid, log $PCSCD_LOG)"
fi

# 3. ready? ------------------------------------------------------------------------------
if [[ $pid != systemd ]]; then
  for _ in $(seq 50); do [[ -S $SOCKET ]] && break; sleep 0.1; done
  [[ -S $SOCKET ]] || { say "pcscd runs but $SOCKET did not appear"; exit 1; }
fi
if "$PYTHON" -c "import smartcard" 2>/dev/null; then
  if readers=$("$PYTHON" - <<'EOF'
import sys, time
from smartcard.System import readers
deadline = time.monotonic() + 10
while True:
    try:
        names = [str(r) for r in readers()]
    except Exception as exc:  # pcscd still starting
        names, err = [], exc
    if any(n.startswith("Virtual PCD") for n in names):
        print(", ".join(names)); sys.exit(0)
    if time.monotonic() > deadline:
        print(f"no Virtual PCD reader listed (readers: {names}); if pcscd started before "
              "vsmartcard-vpcd was installed, restart pcscd"); sys.exit(1)
    time.sleep(0.2)
EOF
  ); then
    say "ready: readers $readers"
  else
    say "$readers"; exit 1
  fi
else
  say "ready (pcscd socket $SOCKET; pyscard not found in $PYTHON, readers not checked)"
fi
