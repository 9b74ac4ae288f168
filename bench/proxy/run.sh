#!/usr/bin/env bash
# Added latency and max throughput of `faultline agent` vs a direct call vs nginx.
#
#   oha ──► direct:  upstream nginx (return 200 "ok")
#   oha ──► nginx:   nginx reverse proxy (keepalive pool) ──► upstream
#   oha ──► agent:   faultline agent (inbound) ──► upstream;  spans ──OTLP──► faultline record
#
# Everything runs on 127.0.0.1 with free ports, in a temp dir that is removed on exit.
# Nothing is installed: missing tools are named and the script stops. See README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/proxy/run.sh [options]

  --out FILE            write JSON results here (default: bench/proxy/results-<time>.json)
  --rates "R1 R2 …"     fixed rates in requests/s, open loop (default: "1000 5000")
  --duration SECS       measured time per fixed-rate run (default: 25)
  --max-duration SECS   measured time per max-throughput run (default: 20)
  --warmup SECS         warm-up before every measured run, same load, discarded (default: 3)
  --connections N       connections held by oha (default: 32)
  --targets "…"         subset of "direct nginx agent" (default: all three)
  --workers N           nginx proxy worker_processes (default: nproc)
  --upstream-workers N  upstream nginx worker_processes (default: nproc)
  --faultline PATH      faultline binary (default: target/release/faultline)
  --oha PATH            oha binary (default: oha on PATH, else ~/.cargo/bin/oha)
  --nginx PATH          nginx binary (default: nginx on PATH, else /usr/sbin/nginx)
  --header 'K: V'       send this header with every request (repeatable), e.g. a
                        traceparent, so the agent continues a trace instead of starting one
  --perf-agent DIR      profile the agent with perf (DWARF call graphs) during its max
                        run; perf.data and a text report go to DIR
  --wait-quiet SECS     before each run, wait up to SECS for the machine to be idle
                        (< 15% of a core busy over 1 s) and say so if it never was
  --agent-access-log X  the agent's access log: off (default, as nginx's here) or "file"
                        (JSON lines to a file in the temp dir); ignored by agents without one
  --keep                keep the temp dir (configs, logs, spans, raw oha JSON)
  -h, --help            this text
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

out=""
rates="1000 5000"
duration=25
max_duration=20
warmup=3
connections=32
targets="direct nginx agent"
workers=$(nproc)
upstream_workers=$(nproc)
faultline="$repo/target/release/faultline"
oha_bin=""
nginx_bin=""
keep=0
headers=()
perf_dir=""
wait_quiet=0
agent_access_log=off

while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --rates) rates=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --max-duration) max_duration=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --targets) targets=$2; shift 2 ;;
        --workers) workers=$2; shift 2 ;;
        --upstream-workers) upstream_workers=$2; shift 2 ;;
        --faultline) faultline=$2; shift 2 ;;
        --oha) oha_bin=$2; shift 2 ;;
        --nginx) nginx_bin=$2; shift 2 ;;
        --header) headers+=(-H "$2"); shift 2 ;;
        --perf-agent) perf_dir=$2; shift 2 ;;
        --wait-quiet) wait_quiet=$2; shift 2 ;;
        --agent-access-log) agent_access_log=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ -n $out ]] || out="$here/results-$(date -u +%Y%m%dT%H%M%SZ).json"

# ---------------------------------------------------------------- prerequisites
missing=()
find_tool() { # name, explicit path, fallback path
    local name=$1 explicit=$2 fallback=$3
    if [[ -n $explicit ]]; then [[ -x $explicit ]] && { echo "$explicit"; return; }; return 1; fi
    command -v "$name" 2>/dev/null && return
    [[ -x $fallback ]] && { echo "$fallback"; return; }
    return 1
}
oha_bin=$(find_tool oha "$oha_bin" "$HOME/.cargo/bin/oha") || missing+=("oha: cargo install oha --locked")
nginx_bin=$(find_tool nginx "$nginx_bin" /usr/sbin/nginx) || missing+=("nginx: apt-get install nginx (Debian), or pass --nginx PATH")
command -v jq >/dev/null || missing+=("jq: apt-get install jq")
command -v curl >/dev/null || missing+=("curl: apt-get install curl")
command -v ss >/dev/null || missing+=("ss: apt-get install iproute2")
[[ -z $perf_dir ]] || command -v perf >/dev/null || missing+=("perf (for --perf-agent): apt-get install linux-perf")
[[ -x $faultline ]] || missing+=("faultline: cargo build --release (looked for $faultline)")
if ((${#missing[@]})); then
    echo "run.sh: missing prerequisites; install them and run again:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 2
fi
if [[ -n $oha_bin ]] && ! "$oha_bin" --help 2>/dev/null | grep -q -- '--latency-correction'; then
    echo "run.sh: $oha_bin has no --latency-correction; install a current oha (cargo install oha --locked)" >&2
    exit 2
fi

# ---------------------------------------------------------------- temp dir and cleanup
tmp=$(mktemp -d "${TMPDIR:-/tmp}/faultline-bench-proxy.XXXXXX")
pids=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if ((keep)); then echo "run.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A copy, so that a concurrent `cargo build` cannot swap the binary mid-run.
cp "$faultline" "$tmp/faultline"
faultline_copy="$tmp/faultline"
faultline_sha=$(sha256sum "$faultline_copy" | cut -c1-16)
faultline_built=$(date -u -r "$faultline" +%Y-%m-%dT%H:%M:%SZ)
agent_flags=()
agent_log_setting="none (this agent has no access log)"
if "$faultline_copy" agent --help 2>/dev/null | grep -q -- '--access-log'; then
    case $agent_access_log in
        off) agent_flags+=(--access-log off); agent_log_setting=off ;;
        file) agent_flags+=(--access-log "$tmp/agent-access.jsonl"); agent_log_setting="file" ;;
        *) echo "run.sh: --agent-access-log is off or file, not $agent_access_log" >&2; exit 2 ;;
    esac
fi

free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 40000))
        if [[ -z $(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null) ]]; then
            echo "$p"; return
        fi
    done
    echo "run.sh: no free port found" >&2; return 1
}

wait_http() { # url, what
    for _ in $(seq 100); do
        curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "run.sh: $2 did not answer at $1" >&2; return 1
}

wait_line() { # file, extended regex; prints the first match's last field
    local line
    for _ in $(seq 100); do
        line=$(grep -E -m1 "$2" "$1" 2>/dev/null || true)
        [[ -n $line ]] && { awk '{print $NF}' <<<"${line% (*}"; return 0; }
        sleep 0.1
    done
    echo "run.sh: no line matching /$2/ in $1:" >&2; cat "$1" >&2; return 1
}

# ---------------------------------------------------------------- nginx configs
nginx_conf() { # name, workers, server body (http-level text)
    local name=$1 n=$2 body=$3 dir="$tmp/$1"
    mkdir -p "$dir/tmp"
    {
        # As root, nginx would switch its workers to `nobody`, who cannot use this temp
        # dir; as any other user the directive is ignored, so it is only written for root.
        ((EUID == 0)) && echo "user root;"
        cat <<EOF
worker_processes $n;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_timeout 75s;
    keepalive_requests 10000000;
$body
}
EOF
    } >"$dir/nginx.conf"
}

started_pid=""
start_nginx() { # name; sets started_pid (no subshell, so that cleanup knows the pid)
    local dir="$tmp/$1"
    "$nginx_bin" -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
        || { cat "$dir/error.log" >&2; return 1; }
    "$nginx_bin" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
    started_pid=$!
    pids+=("$started_pid")
}

upstream_port=$(free_port)
nginx_conf upstream "$upstream_workers" "
    server {
        listen 127.0.0.1:$upstream_port backlog=4096;
        location / { default_type text/plain; return 200 \"ok\"; }
    }"
start_nginx upstream
upstream_pid=$started_pid
wait_http "http://127.0.0.1:$upstream_port/" "upstream nginx"

declare -A url proxy_pid
url[direct]="http://127.0.0.1:$upstream_port/"

if [[ " $targets " == *" nginx "* ]]; then
    proxy_port=$(free_port)
    nginx_conf proxy "$workers" "
    upstream backend {
        server 127.0.0.1:$upstream_port;
        keepalive 128;
        keepalive_requests 10000000;
        keepalive_timeout 75s;
    }
    server {
        listen 127.0.0.1:$proxy_port backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering on;
        }
    }"
    start_nginx proxy
    proxy_pid[nginx]=$started_pid
    url[nginx]="http://127.0.0.1:$proxy_port/"
    wait_http "${url[nginx]}" "nginx proxy"
fi

if [[ " $targets " == *" agent "* ]]; then
    "$faultline_copy" record --listen 127.0.0.1:0 --out "$tmp/spans.jsonl" --format json \
        >"$tmp/record.stdout" 2>"$tmp/record.log" &
    record_pid=$!
    pids+=("$record_pid")
    otlp_addr=$(wait_line "$tmp/record.log" 'listening on')
    "$faultline_copy" agent --node bench --upstream "127.0.0.1:$upstream_port" \
        --inbound 127.0.0.1:0 --outbound 127.0.0.1:0 --admin 127.0.0.1:0 \
        --otlp "http://$otlp_addr" "${agent_flags[@]}" >"$tmp/agent.stdout" 2>"$tmp/agent.log" &
    proxy_pid[agent]=$!
    pids+=("${proxy_pid[agent]}")
    url[agent]="http://$(wait_line "$tmp/agent.log" 'inbound listening on')/"
    admin_addr=$(wait_line "$tmp/agent.log" 'admin listening on')
    wait_http "${url[agent]}" "faultline agent"
fi
our_pids=("${pids[@]}")

# ---------------------------------------------------------------- measuring
# CPU time (clock ticks) of a process and its children threads/workers (nginx: master + workers).
clk_tck=$(getconf CLK_TCK)
cpu_ticks() {
    local total=0 pid
    for pid in "$@" $(for p in "$@"; do pgrep -P "$p" 2>/dev/null || true; done); do
        [[ -r /proc/$pid/stat ]] || continue
        # utime and stime are fields 14 and 15; the comm field (2) has no spaces here.
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}

agent_metric() { # metric name (no labels)
    curl -fsS --max-time 2 "http://$admin_addr/metrics" 2>/dev/null \
        | awk -v m="$1" '$1 == m {print $2}' | head -1
}

results="$tmp/results.jsonl"
: >"$results"

run_oha() { # target, mode (rate|max), rate or "", seconds, raw json out
    local target=$1 mode=$2 rate=$3 secs=$4 raw=$5
    local args=(--no-tui --output-format json -w -c "$connections" -z "${secs}s")
    [[ $mode == rate ]] && args+=(-q "$rate" --latency-correction)
    args+=("${headers[@]}")
    if [[ -n $perf_dir && $target == agent && $mode == max && $raw != /dev/null ]]; then
        mkdir -p "$perf_dir"
        perf record -q -F 499 --call-graph dwarf,16384 -p "${proxy_pid[agent]}" \
            -o "$perf_dir/perf.data" 2>"$perf_dir/perf-record.log" &
        local perf_pid=$!
        "$oha_bin" "${args[@]}" "${url[$target]}" >"$raw"
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        perf report -i "$perf_dir/perf.data" --children --sort sym --stdio -g none \
            --percent-limit 1 >"$perf_dir/report.txt" 2>/dev/null || true
        echo "run.sh: agent profile in $perf_dir (report.txt; perf report -i perf.data)" >&2
    else
        "$oha_bin" "${args[@]}" "${url[$target]}" >"$raw"
    fi
}

# Busy CPU of the whole machine over 1 s, in % of one core (ours idle: no load is running).
busy_now() {
    local a b
    a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
    echo "$a $b" | awk -v ncpu="$(nproc)" '{
        busy = ($13 + $14 + $15 + $19) - ($2 + $3 + $4 + $8); all = 0
        for (i = 13; i <= 22; i++) all += $i; for (i = 2; i <= 11; i++) all -= $i
        printf "%.0f", 100 * busy / all * ncpu }'
}

await_quiet() {
    ((wait_quiet > 0)) || return 0
    local start=$SECONDS busy
    while :; do
        busy=$(busy_now)
        ((busy < 15)) && return 0
        if ((SECONDS - start >= wait_quiet)); then
            echo "run.sh: machine still ${busy}% busy after ${wait_quiet}s; measuring anyway" >&2
            return 0
        fi
    done
}

measure() { # target, mode, rate
    local target=$1 mode=$2 rate=${3:-} secs label raw
    if [[ $mode == rate ]]; then secs=$duration; label="$rate rps"; else secs=$max_duration; label="max"; fi
    raw="$tmp/oha-$target-$mode${rate:+-$rate}.json"
    printf 'run.sh: %-6s %-9s warm-up %ss, measure %ss\n' "$target" "$label" "$warmup" "$secs" >&2
    await_quiet
    if ((warmup > 0)); then run_oha "$target" "$mode" "$rate" "$warmup" /dev/null; fi
    local watched=() cpu0 cpu1 up0 up1 exported0="" exported1="" dropped0="" dropped1="" sink0=0 sink1=0
    [[ -n ${proxy_pid[$target]:-} ]] && watched=("${proxy_pid[$target]}")
    cpu0=$( ((${#watched[@]})) && cpu_ticks "${watched[@]}" || echo 0)
    up0=$(cpu_ticks "$upstream_pid")
    if [[ $target == agent ]]; then
        exported0=$(agent_metric faultline_agent_spans_exported_total)
        dropped0=$(agent_metric faultline_agent_spans_dropped_total)
        sink0=$(cpu_ticks "$record_pid")
    fi
    local stat0 self0 stat1 self1 srv0 srv1
    srv0=$(cpu_ticks "${our_pids[@]}")
    stat0=$(head -1 /proc/stat)
    self0=$(awk '{print $16 + $17}' /proc/$$/stat) # reaped children: oha (and small helpers)
    run_oha "$target" "$mode" "$rate" "$secs" "$raw"
    stat1=$(head -1 /proc/stat)
    self1=$(awk '{print $16 + $17}' /proc/$$/stat)
    srv1=$(cpu_ticks "${our_pids[@]}")
    # CPU outside this benchmark: user+nice+system time of the whole machine less ours (the
    # servers, oha). Softirq time (loopback TCP) is left out of both sides. Steal: the VM's
    # host gave our vCPUs to someone else.
    local load
    load=$(echo "$stat0 $stat1" | awk -v ours=$(((srv1 - srv0) + (self1 - self0))) '{
        busy = ($13 + $14 + $15) - ($2 + $3 + $4); all = 0
        for (i = 13; i <= 22; i++) all += $i; for (i = 2; i <= 11; i++) all -= $i
        foreign = busy - ours; if (foreign < 0) foreign = 0
        printf "%.1f %.1f %.1f", 100 * foreign / all * ncpu, 100 * ($20 - $9) / all * ncpu, 100 * (busy + ($19 - $8)) / all * ncpu
    }' ncpu="$(nproc)")
    read -r foreign_pct steal_pct busy_pct <<<"$load"
    if awk -v f="$foreign_pct" 'BEGIN { exit !(f > 10) }'; then
        echo "run.sh: warning: other processes used ${foreign_pct}% of a core during this run; its figures are disturbed" >&2
    fi
    cpu1=$( ((${#watched[@]})) && cpu_ticks "${watched[@]}" || echo 0)
    up1=$(cpu_ticks "$upstream_pid")
    if [[ $target == agent ]]; then
        sleep 1.5 # let the batcher's 1 s tick export what this run queued
        exported1=$(agent_metric faultline_agent_spans_exported_total)
        dropped1=$(agent_metric faultline_agent_spans_dropped_total)
        sink1=$(cpu_ticks "$record_pid")
    fi
    jq -c --arg target "$target" --arg mode "$mode" --arg rate "$rate" \
        --argjson secs "$secs" --argjson conns "$connections" \
        --argjson proxy_cpu "$(((cpu1 - cpu0)))" --argjson up_cpu "$(((up1 - up0)))" \
        --argjson sink_cpu "$(((sink1 - sink0)))" --argjson tck "$clk_tck" \
        --arg exported0 "$exported0" --arg exported1 "$exported1" \
        --arg dropped0 "$dropped0" --arg dropped1 "$dropped1" \
        --argjson foreign "$foreign_pct" --argjson steal "$steal_pct" --argjson busy "$busy_pct" '
        def us: if . == null then null else . * 1e6 * 100 | round / 100 end;
        def delta($a; $b): if $a == "" or $b == "" then null else ($b | tonumber) - ($a | tonumber) end;
        (.statusCodeDistribution // {}) as $codes
        | ([$codes | to_entries[] | .value] | add // 0) as $answered
        | ([(.errorDistribution // {}) | to_entries[] | .value] | add // 0) as $errors
        | {
            target: $target, mode: $mode,
            rate: (if $rate == "" then null else ($rate | tonumber) end),
            duration_s: $secs, connections: $conns,
            achieved_rps: (.summary.requestsPerSec * 10 | round / 10),
            responses: $answered,
            non_200: ($answered - ($codes["200"] // 0)),
            errors: $errors,
            error_kinds: (.errorDistribution // {}),
            latency_us: {
                mean: (.summary.average | us),
                p50: (.latencyPercentiles.p50 | us),
                p90: (.latencyPercentiles.p90 | us),
                p99: (.latencyPercentiles.p99 | us),
                p99_9: (.latencyPercentiles["p99.9"] | us),
                max: (.summary.slowest | us)
            },
            machine_cpu_pct: {busy: $busy, other_processes: $foreign, steal: $steal},
            proxy_cpu_us_per_req: (if $answered > 0 and $target != "direct"
                then ($proxy_cpu / $tck * 1e6 / $answered * 10 | round / 10) else null end),
            upstream_cpu_us_per_req: (if $answered > 0
                then ($up_cpu / $tck * 1e6 / $answered * 10 | round / 10) else null end),
            spans: (if $target == "agent" then {
                exported: delta($exported0; $exported1),
                dropped: delta($dropped0; $dropped1),
                sink_cpu_us_per_req: (if $answered > 0
                    then ($sink_cpu / $tck * 1e6 / $answered * 10 | round / 10) else null end)
            } else null end)
          }' "$raw" >>"$results"
}

# Targets are interleaved within each load level so that slow drift (thermal, neighbours)
# spreads over all three rather than landing on one.
order=()
for t in direct nginx agent; do [[ " $targets " == *" $t "* ]] && order+=("$t"); done
for rate in $rates; do
    for t in "${order[@]}"; do measure "$t" rate "$rate"; done
done
for t in "${order[@]}"; do measure "$t" max; done

# ---------------------------------------------------------------- stop the sink, count spans
record_summary=null
if [[ -n ${record_pid:-} ]]; then
    kill -TERM "${proxy_pid[agent]}" 2>/dev/null || true
    wait "${proxy_pid[agent]}" 2>/dev/null || true
    kill -TERM "$record_pid" 2>/dev/null || true
    wait "$record_pid" 2>/dev/null || true
    record_summary=$(jq -c . "$tmp/record.stdout" 2>/dev/null || echo null)
    [[ -n $record_summary ]] || record_summary=null
fi

# ---------------------------------------------------------------- report
git_rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=$( [[ -n $(git -C "$repo" status --porcelain 2>/dev/null) ]] && echo true || echo false)
jq -s --arg when "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg host "$(uname -srm)" \
    --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" \
    --argjson cores "$(nproc)" --arg rev "$git_rev" --argjson dirty "$git_dirty" \
    --arg fsha "$faultline_sha" --arg fbuilt "$faultline_built" --arg alog "$agent_log_setting" \
    --arg fver "$("$faultline_copy" --version 2>/dev/null | head -1)" \
    --argjson headers "$(printf '%s\n' "${headers[@]}" | grep -v -e '^-H$' -e '^$' | jq -R . | jq -sc .)" \
    --arg oha "$("$oha_bin" --version 2>/dev/null | head -1)" \
    --arg nginx "$("$nginx_bin" -v 2>&1 | sed 's/.*: //')" \
    --argjson workers "$workers" --argjson upstream_workers "$upstream_workers" \
    --argjson warmup "$warmup" --argjson record "$record_summary" '
    def by($t; $m; $r): first(.[] | select(.target == $t and .mode == $m and .rate == $r)) // null;
    def added($x; $base; $q): if $x == null or $base == null then null
        else ($x.latency_us[$q] - $base.latency_us[$q]) * 100 | round / 100 end;
    . as $runs
    | {
        when: $when,
        environment: {host: $host, cpu: $cpu, cores: $cores, faultline_commit: $rev,
                      work_tree_dirty: $dirty, faultline_version: $fver,
                      faultline_sha256_16: $fsha, faultline_built: $fbuilt,
                      agent_access_log: $alog, request_headers: $headers,
                      oha: $oha, nginx: $nginx,
                      nginx_proxy_workers: $workers, upstream_workers: $upstream_workers,
                      warmup_s: $warmup, nginx_access_log: "off"},
        runs: $runs,
        added_latency_us: [
            $runs | map(select(.mode == "rate")) | map(.rate) | unique[] as $r
            | ($runs | by("direct"; "rate"; $r)) as $d
            | {rate: $r,
               agent: {p50: added($runs | by("agent"; "rate"; $r); $d; "p50"),
                       p99: added($runs | by("agent"; "rate"; $r); $d; "p99"),
                       p99_9: added($runs | by("agent"; "rate"; $r); $d; "p99_9")},
               nginx: {p50: added($runs | by("nginx"; "rate"; $r); $d; "p50"),
                       p99: added($runs | by("nginx"; "rate"; $r); $d; "p99"),
                       p99_9: added($runs | by("nginx"; "rate"; $r); $d; "p99_9")}}
        ],
        max_rps: ([$runs[] | select(.mode == "max") | {(.target): .achieved_rps}] | add),
        agent_over_nginx_max_rps: (
            ([$runs[] | select(.mode == "max" and .target == "agent")][0].achieved_rps) as $a
            | ([$runs[] | select(.mode == "max" and .target == "nginx")][0].achieved_rps) as $n
            | if $a and $n then ($a / $n * 1000 | round / 1000) else null end),
        span_sink: $record
      }' "$results" >"$out"

# The table.
jq -r '
    def f: if . == null then "-" else tostring end;
    (["target", "load", "rps", "p50µs", "p99µs", "p99.9µs", "maxµs", "+p50", "+p99", "+p99.9", "errors", "cpuµs/req", "other%"] | @tsv),
    (.runs as $runs | .runs[]
     | . as $r
     | (first($runs[] | select(.target == "direct" and .mode == $r.mode and .rate == $r.rate)) // null) as $d
     | def plus($q): if $d and .target != "direct" and .mode == "rate" then (.latency_us[$q] - $d.latency_us[$q] | round) else null end;
       [ .target,
         (if .mode == "rate" then "\(.rate)/s" else "max" end),
         .achieved_rps,
         .latency_us.p50, .latency_us.p99, .latency_us.p99_9, .latency_us.max,
         plus("p50"), plus("p99"), plus("p99_9"),
         (.errors + .non_200),
         .proxy_cpu_us_per_req, .machine_cpu_pct.other_processes ] | map(f) | @tsv)
' "$out" | column -t -s $'\t'
jq -r '
    def f: if . == null then "-" else tostring end;
    "max rps agent/nginx: \(.agent_over_nginx_max_rps | f)",
    (.runs[] | select(.target == "agent") | "agent spans \(if .mode == "rate" then "\(.rate)/s" else "max" end): exported \(.spans.exported | f), dropped \(.spans.dropped | f), sink cpu \(.spans.sink_cpu_us_per_req | f) µs/req"),
    "span sink (faultline record): \(.span_sink.spans // "-") spans written, \(.span_sink.receiver.refused_spans // "-") refused"
' "$out"
echo "run.sh: results written to $out" >&2
