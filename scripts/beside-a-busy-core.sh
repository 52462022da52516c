#!/usr/bin/env bash
# Runs a command while another process keeps one core busy, as a newcomer's laptop is never quiet:
#   scripts/beside-a-busy-core.sh npx jest
# The burner is a shell busy loop at normal priority; it stops with the command, whatever its end.
set -uo pipefail
bash -c 'while :; do :; done' &
burner=$!
trap 'kill "$burner" 2>/dev/null' EXIT
echo "beside-a-busy-core.sh: burner pid $burner on one core; running: $*" >&2
"$@"
