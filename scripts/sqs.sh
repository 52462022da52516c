#!/usr/bin/env bash
# Installs ElasticMQ (an SQS-compatible server on the JVM, from Maven Central) into the cache folder
# given as $1 and prints the command that starts it:
#   cmd=$(scripts/sqs.sh .cache/sqs)
#   SQS_PORT=9324 bash -c "exec $cmd" >sqs.log 2>&1 &   # listens on 127.0.0.1:$SQS_PORT (default 9324)
# Idempotent: a finished install (marker file) is left as it is. It starts no server of its own, except
# once at install time, on a free loopback port, to record a class-data-sharing archive that makes
# later starts faster (best effort: without it the command simply omits the flag; a failed attempt
# leaves app-*.jsa.failed in the install folder, delete it to try again).
# The server reads elasticmq.conf beside this script (or $SQS_CONFIG): queues, region, account id.
# Extra JVM options: SQS_JAVA_OPTS (default -Xmx512m). Progress goes to stderr; stdout carries only
# the command.
set -euo pipefail

log() { echo "sqs.sh: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

[ $# -ge 1 ] && [ -n "$1" ] || { log "usage: $0 CACHE_DIR"; exit 2; }
version="${ELASTICMQ_VERSION:-1.7.1}"
mkdir -p "$1"
cache="$(cd "$1" && pwd)"
dir="$cache/elasticmq-$version"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
config="${SQS_CONFIG:-$here/elasticmq.conf}"
[ -f "$config" ] || { log "no config file at $config"; exit 1; }
config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"
main=org.elasticmq.server.Main

if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  log "installing maven and a JRE (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq >&2
  as_root apt-get install -y -qq --no-install-recommends maven default-jre-headless >&2
fi

if [ ! -f "$dir/.installed" ]; then
  log "installing ElasticMQ $version into $dir (mvn dependency:copy-dependencies)"
  tmp="$(mktemp -d "$cache/.elasticmq-$version.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
  cat >"$tmp/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.sqs</groupId>
  <artifactId>elasticmq-runner</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.elasticmq</groupId>
      <artifactId>elasticmq-server_2.13</artifactId>
      <version>$version</version>
    </dependency>
  </dependencies>
</project>
EOF
  # Maven's own downloads stay in the cache folder too (delete the folder to undo everything).
  mvn -B -q -f "$tmp/pom.xml" -Dmaven.repo.local="$cache/m2" dependency:copy-dependencies \
    -DoutputDirectory="$tmp/lib" -DincludeScope=runtime >&2
  [ -f "$tmp/lib/elasticmq-server_2.13-$version.jar" ] || { log "ElasticMQ jar missing after mvn"; exit 1; }
  echo "$version" >"$tmp/.installed"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  trap - EXIT
fi

# Class-data-sharing archive, one per JVM build (an archive from another JVM would be ignored).
jvm_id="$(java -version 2>&1 | cksum | cut -d' ' -f1)"
jsa="$dir/app-$jvm_id.jsa"
if [ ! -f "$jsa" ] && [ ! -f "$jsa.failed" ]; then
  log "recording a class-data-sharing archive (one training start on a free loopback port)"
  train_log="$dir/cds-training.log"
  SQS_PORT=0 java -Xmx512m -XX:ArchiveClassesAtExit="$jsa.tmp" -Dconfig.file="$config" \
    -cp "$dir/lib/*" "$main" >"$train_log" 2>&1 &
  pid=$!
  port=""
  for _ in $(seq 1 600); do
    port="$(sed -n 's/.*bind address [0-9.]*:\([0-9][0-9]*\).*/\1/p' "$train_log" | head -n1)"
    if [ -n "$port" ] && grep -q 'started in' "$train_log"; then break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -n "$port" ] && kill -0 "$pid" 2>/dev/null; then
    # One request, so that the classes of the request path go into the archive too.
    { exec 3<>"/dev/tcp/127.0.0.1/$port" &&
      printf 'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AmazonSQS.ListQueues\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}' >&3 &&
      timeout 10 cat <&3 >/dev/null; exec 3<&-; } 2>/dev/null || true
  fi
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -s "$jsa.tmp" ]; then mv "$jsa.tmp" "$jsa"; else rm -f "$jsa.tmp"; : >"$jsa.failed"; log "no archive recorded (see $train_log); starting without it"; fi
fi

cds=""
[ -f "$jsa" ] && cds="-XX:SharedArchiveFile=$(printf '%q' "$jsa") "
printf 'java %s %s-Dconfig.file=%s -cp %s %s\n' "${SQS_JAVA_OPTS:--Xmx512m}" "$cds" \
  "$(printf '%q' "$config")" "$(printf '%q' "$dir/lib/*")" "$main"
