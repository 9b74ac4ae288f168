#!/usr/bin/env bash
# A real Prometheus for the dashboards test (tests/dashboards.rs), run in the
# background on a free loopback port:
#
#   eval "$(scripts/prometheus-for-tests.sh start DIR)"
#   ... cargo test --test dashboards ...
#   scripts/prometheus-for-tests.sh stop DIR
#
# `start` prints `export FAULTLINE_PROMETHEUS_DIR=DIR FAULTLINE_PROMETHEUS_URL=http://…`
# once Prometheus is ready. It scrapes what DIR/targets.json lists (file_sd) and
# evaluates the rules in DIR/rules.yml; the test writes both (from a demo cluster's
# cluster.json and `faultline dashboards export --profile demo`), then POSTs /-/reload
# (hence --web.enable-lifecycle). The scrape and evaluation intervals are the demo
# profile's (dashboards/panels.toml: 2 s), so the exported rules' windows hold four
# scrapes or more. Storage is DIR/data; the log is DIR/prometheus.log.
#
# Needs `prometheus` (Debian package prometheus; .ci/run installs it), curl, python3.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
command=$1
dir=$2

stop() {
  [ -f "$dir/prometheus.pid" ] || return 0
  local pid
  pid=$(cat "$dir/prometheus.pid")
  rm -f "$dir/prometheus.pid"
  kill "$pid" 2>/dev/null || return 0
  # Not our child once `start` has returned: poll until it is gone (10 s), then insist.
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

case "$command" in
start)
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)
  command -v prometheus >/dev/null || {
    echo "$0: prometheus is not on PATH (Debian package prometheus)" >&2
    exit 1
  }
  [ -e "$dir/targets.json" ] || echo '[]' >"$dir/targets.json"
  [ -e "$dir/rules.yml" ] || echo 'groups: []' >"$dir/rules.yml"
  cat >"$dir/prometheus.yml" <<EOF
# Written by scripts/prometheus-for-tests.sh.
global:
  scrape_interval: 2s
  scrape_timeout: 2s
  evaluation_interval: 2s
rule_files:
  - "$dir/rules.yml"
scrape_configs:
  - job_name: faultline
    file_sd_configs:
      - files: ["$dir/targets.json"]
        refresh_interval: 2s
EOF
  # A free port can be taken between the probe and Prometheus' bind: try a few.
  for _ in 1 2 3 4 5; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    prometheus \
      --config.file="$dir/prometheus.yml" \
      --storage.tsdb.path="$dir/data" \
      --storage.tsdb.retention.time=2h \
      --web.listen-address="127.0.0.1:$port" \
      --web.enable-lifecycle \
      --log.level=warn \
      </dev/null >"$dir/prometheus.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/prometheus.pid"
    # Ready within 60 s (a loaded 2-core machine), or gone (the port was taken).
    for _ in $(seq 600); do
      if curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
        echo "export FAULTLINE_PROMETHEUS_DIR='$dir' FAULTLINE_PROMETHEUS_URL='http://127.0.0.1:$port'"
        exit 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    stop
  done
  echo "$0: prometheus did not become ready; its log:" >&2
  cat "$dir/prometheus.log" >&2
  exit 1
  ;;
stop)
  stop
  ;;
*)
  usage
  ;;
esac
