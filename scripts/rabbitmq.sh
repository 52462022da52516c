#!/usr/bin/env bash
# Makes a local RabbitMQ (Debian's rabbitmq-server) run on 127.0.0.1:5672 and prints its AMQP_URL:
#   export AMQP_URL=$(scripts/rabbitmq.sh)
# Installs the package when missing (as root or with sudo), starts the node when it is down and the
# application when it was stopped (rabbitmqctl stop_app), and waits until it accepts AMQP.
# A running broker is left as it is. Progress goes to stderr; stdout carries only the URL.
set -euo pipefail

log() { echo "rabbitmq.sh: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
export PATH="$PATH:/usr/sbin:/sbin"

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  log "installing rabbitmq-server (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >&2
  # Keep apt from starting the service itself (containers have no init); it is started below.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod +x "$policy"
  fi
  status=0
  as_root apt-get install -y -qq --no-install-recommends rabbitmq-server >&2 || status=$?
  [ -z "$policy" ] || as_root rm -f "$policy"
  [ "$status" -eq 0 ] || exit "$status"
  # A node name that resolves in any container, and AMQP on loopback only (guest may log in from
  # localhost only anyway). The server and rabbitmqctl both read this file.
  printf '\n# scripts/rabbitmq.sh\nNODENAME=rabbit@localhost\nNODE_IP_ADDRESS=127.0.0.1\n' | as_root tee -a /etc/rabbitmq/rabbitmq-env.conf >/dev/null
fi

node_up() { as_root rabbitmq-diagnostics -q ping >/dev/null 2>&1; }
app_up() { as_root rabbitmq-diagnostics -q check_running >/dev/null 2>&1; }
ready() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && app_up; }

if ! ready; then
  if ! node_up; then
    log "starting rabbitmq-server"
    # The Debian wrapper runs the node as the rabbitmq user; -detached returns at once.
    as_root rabbitmq-server -detached >&2
  fi
  for _ in $(seq 1 120); do
    if node_up; then
      # Starts an application that was stopped; on a running one it does nothing.
      as_root rabbitmqctl -q start_app >/dev/null 2>&1 || true
      ready && break
    fi
    sleep 1
  done
  ready || { log "RabbitMQ did not become ready"; exit 1; }
fi

# guest/guest may log in from localhost only, which is where we are.
echo "amqp://guest:guest@127.0.0.1:5672"
