#!/usr/bin/env bash
# Makes Debian's Mosquitto MQTT broker available and prints the path of its binary:
#   export MOSQUITTO_PATH=$(scripts/mosquitto.sh)
# Installs the package when missing (as root or with sudo). It starts no broker: the fault tests
# (test/faults/) run their own on free ports, with `persistence true` in a folder of their own.
# Progress goes to stderr; stdout carries only the path.
set -euo pipefail

log() { echo "mosquitto.sh: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
export PATH="$PATH:/usr/sbin:/sbin"

if ! command -v mosquitto >/dev/null 2>&1; then
  log "installing mosquitto (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >&2
  # Keep apt from starting the system service (containers have no init; the tests start their own).
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod +x "$policy"
  fi
  status=0
  as_root apt-get install -y -qq --no-install-recommends mosquitto >&2 || status=$?
  [ -z "$policy" ] || as_root rm -f "$policy"
  [ "$status" -eq 0 ] || exit "$status"
fi

command -v mosquitto
