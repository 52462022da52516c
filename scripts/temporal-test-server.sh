#!/usr/bin/env bash
# temporal-test-server.sh — run the Temporal Java time-skipping test server resolved from
# Maven Central (io.temporal:temporal-test-server) in place of the native binary that
# @temporalio/testing would otherwise download from temporal.download.
#
# From TypeScript:
#   await TestWorkflowEnvironment.createTimeSkipping({
#     server: { executable: { type: 'existing-path', path: '/abs/path/temporal-test-server.sh' } },
#   });
#
# Argument contract (sdk-core ephemeral_server::TestServerConfig in @temporalio/core-bridge 1.24.0):
#   the SDK spawns `<path> <port> [...server.extraArgs]` (port: server.port or a free one),
#   stdin=/dev/null, stdout/stderr piped into the Node process; it then tries a gRPC connect to
#   127.0.0.1:<port> every 100 ms, 50 times (~5 s) and fails the environment if none succeeds.
#   teardown() SIGKILLs the process it spawned. Hence this script `exec`s java (the JVM must BE
#   that process, or the kill would orphan it) and must not run mvn on that path:
#   call `temporal-test-server.sh install` beforehand (jest globalSetup, CI step, npm script).
#   io.temporal.testserver.TestServer accepts exactly `<port> [--enable-time-skipping]`;
#   anything else makes it print usage and exit 0 without listening, so other args are dropped here.
#
# Sub-commands:
#   install                 resolve the jars into the lib dir (mvn runs only if they are missing)
#                           and build an AppCDS archive for faster JVM start (skipped if present)
#   classpath               print the classpath (installs first if needed)
#   <port> [--enable-time-skipping]   exec the server (what the SDK calls)
#
# Environment:
#   TEMPORAL_TEST_SERVER_VERSION     Maven version (default 1.38.0)
#   TEMPORAL_TEST_SERVER_LIB         jar directory; relative paths are taken from this script's dir
#                                    (default: .tools/temporal-test-server/<version>, git-ignored)
#   TEMPORAL_TEST_SERVER_POM         pom used to resolve them (default: <script dir>/temporal-test-server.pom.xml)
#   TEMPORAL_TEST_SERVER_AUTO_INSTALL=1   on the run path, run mvn when the jars are missing
#                                    (default 0: fail fast with a hint; an SDK-spawned start cannot wait for mvn)
#   TEMPORAL_TEST_SERVER_CDS=0       neither build nor use the AppCDS archive
#   TEMPORAL_TEST_SERVER_JAVA_OPTS   JVM options (default: see JAVA_OPTS_DEFAULT)
#   TEMPORAL_TEST_SERVER_LOG_LEVEL   server log level via slf4j-simple (default: warn)
#   TEMPORAL_TEST_SERVER_PDEATHSIG=0 do not tie the JVM's life to the spawning process (see below)
#   JAVA_HOME / JAVA, MVN            tools to use
#   MAVEN_REPO_LOCAL                 optional -Dmaven.repo.local for the install
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
VERSION="${TEMPORAL_TEST_SERVER_VERSION:-1.38.0}"
LIB_DIR="${TEMPORAL_TEST_SERVER_LIB:-../.tools/temporal-test-server/$VERSION}"
case "$LIB_DIR" in /*) ;; *) LIB_DIR="$SCRIPT_DIR/$LIB_DIR" ;; esac
POM="${TEMPORAL_TEST_SERVER_POM:-$SCRIPT_DIR/temporal-test-server.pom.xml}"
MVN="${MVN:-mvn}"
if [[ -n "${JAVA:-}" ]]; then :; elif [[ -n "${JAVA_HOME:-}" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi
# C1 only: the server lives for one test file, so a fast start matters more than peak speed.
JAVA_OPTS_DEFAULT="-XX:TieredStopAtLevel=1 -Xmx512m"
read -r -a JAVA_OPTS <<<"${TEMPORAL_TEST_SERVER_JAVA_OPTS:-$JAVA_OPTS_DEFAULT}"
LOG_LEVEL="${TEMPORAL_TEST_SERVER_LOG_LEVEL:-warn}"
MAIN=io.temporal.testserver.TestServer
MARKER="$LIB_DIR/.complete"
CDS_ARCHIVE="$LIB_DIR/app-cds.jsa"

log() { echo "temporal-test-server.sh: $*" >&2; }

is_installed() { [[ -f "$MARKER" && -f "$LIB_DIR/temporal-test-server-$VERSION.jar" ]]; }

# Explicit, sorted, absolute jar list: the same string every time, which AppCDS requires.
classpath() { ls -1 "$LIB_DIR"/*.jar | LC_ALL=C sort | paste -sd: -; }

free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
  else
    echo $(( 20000 + RANDOM % 20000 ))
  fi
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Maven and a JRE from Debian when missing, as scripts/sqs.sh does.
install_java() {
  command -v "$MVN" >/dev/null && command -v "$JAVA" >/dev/null && return 0
  command -v apt-get >/dev/null || { log "mvn or java not found, and no apt-get to install them"; return 1; }
  log "installing maven and a JRE (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >&2
  as_root apt-get install -y -qq --no-install-recommends maven default-jre-headless >&2
}

install_jars() {
  is_installed && return 0
  install_java || return 1
  [[ -f "$POM" ]] || { log "pom not found: $POM"; return 1; }
  local parent tmp
  parent="$(dirname "$LIB_DIR")"
  mkdir -p "$parent"
  # Leftovers of an install that was SIGKILLed (e.g. by the SDK's startup timeout).
  find "$parent" -maxdepth 1 -name ".install-*" -mmin +30 -exec rm -rf {} + 2>/dev/null || true
  # Resolve into a private temp dir, then rename: concurrent installs never expose a
  # half-filled directory; the loser of a race just discards its copy.
  tmp="$(mktemp -d "$parent/.install-$VERSION.XXXXXX")"; chmod 755 "$tmp"
  log "resolving io.temporal:temporal-test-server:$VERSION into $LIB_DIR (mvn)"
  local repo_args=()
  if [[ -n "${MAVEN_REPO_LOCAL:-}" ]]; then repo_args=("-Dmaven.repo.local=$MAVEN_REPO_LOCAL"); fi
  local mvn_log="$tmp.mvn.log"
  if ! "$MVN" -B -q -f "$POM" ${repo_args[@]+"${repo_args[@]}"} \
      "-Dtemporal.testserver.version=$VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$tmp" >"$mvn_log" 2>&1; then
    cat "$mvn_log" >&2; rm -rf "$tmp" "$mvn_log"; log "mvn failed"; return 1
  fi
  rm -f "$mvn_log"
  if [[ ! -f "$tmp/temporal-test-server-$VERSION.jar" ]]; then rm -rf "$tmp"; log "jar missing after mvn"; return 1; fi
  touch "$tmp/.complete"
  if [[ -e "$LIB_DIR" ]] && ! is_installed; then rm -rf "$LIB_DIR"; fi
  mv -T "$tmp" "$LIB_DIR" 2>/dev/null || rm -rf "$tmp"
  is_installed
}

# One short server run with -XX:ArchiveClassesAtExit; later starts map those classes and start
# faster (docs/testing.md). The archive is tied to this JDK build and this exact classpath string;
# if either changes, -Xshare:auto silently ignores it. Best effort.
build_cds() {
  [[ "${TEMPORAL_TEST_SERVER_CDS:-1}" == 0 || -f "$CDS_ARCHIVE" ]] && return 0
  local port tmp pid i
  port="$(free_port)"; tmp="$CDS_ARCHIVE.tmp.$$"
  "$JAVA" "${JAVA_OPTS[@]}" -XX:ArchiveClassesAtExit="$tmp" -Xlog:cds=off -Xlog:cds+dynamic=off \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=error -cp "$(classpath)" "$MAIN" "$port" >/dev/null 2>&1 &
  pid=$!
  for ((i = 0; i < 300; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  sleep 1
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [[ -s "$tmp" ]]; then mv -f "$tmp" "$CDS_ARCHIVE"; log "AppCDS archive: $CDS_ARCHIVE"
  else rm -f "$tmp"; log "AppCDS archive not created (continuing without it)"; fi
}

install() { install_jars && build_cds; }

case "${1:-}" in
  install) install; log "ok: $LIB_DIR"; exit 0 ;;
  classpath) install_jars; classpath; exit 0 ;;
  ''|-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac

PORT="$1"; shift
[[ "$PORT" =~ ^[0-9]+$ ]] || { log "first argument must be the port, got '$PORT'"; exit 2; }
SERVER_ARGS=("$PORT")
for a in "$@"; do
  if [[ "${a,,}" == "--enable-time-skipping" && ${#SERVER_ARGS[@]} -eq 1 ]]; then SERVER_ARGS+=("$a")
  else log "ignoring unsupported test-server argument: $a"; fi
done

if ! is_installed; then
  if [[ "${TEMPORAL_TEST_SERVER_AUTO_INSTALL:-0}" != 1 ]]; then
    log "jars missing in $LIB_DIR: run '$0 install' first (jest globalSetup / CI step)"; exit 1
  fi
  log "WARNING: jars missing, running mvn now; an SDK-spawned start will time out after ~5 s"
  install_jars
fi

CDS_OPTS=()
if [[ "${TEMPORAL_TEST_SERVER_CDS:-1}" != 0 && -f "$CDS_ARCHIVE" ]]; then
  # -Xshare:auto: a stale archive (other JDK, changed jars) is ignored, never fatal.
  CDS_OPTS=(-Xshare:auto "-XX:SharedArchiveFile=$CDS_ARCHIVE" -Xlog:cds=off -Xlog:cds+dynamic=off)
fi

# teardown() kills the JVM, but a test process that dies first (SIGKILL, process.exit() without
# teardown, jest worker killed on timeout) would leave it running forever. setpriv (util-linux)
# sets PR_SET_PDEATHSIG, kept across exec: the kernel SIGKILLs the JVM when the spawning thread
# (a long-lived sdk-core runtime thread in the Node process) goes away. The JVM keeps this PID.
LAUNCH=()
if [[ "${TEMPORAL_TEST_SERVER_PDEATHSIG:-1}" != 0 ]] && command -v setpriv >/dev/null; then
  LAUNCH=(setpriv --pdeathsig KILL)
fi

exec ${LAUNCH[@]+"${LAUNCH[@]}"} "$JAVA" "${JAVA_OPTS[@]}" ${CDS_OPTS[@]+"${CDS_OPTS[@]}"} "-Dorg.slf4j.simpleLogger.defaultLogLevel=$LOG_LEVEL" \
  -cp "$(classpath)" "$MAIN" "${SERVER_ARGS[@]}"
