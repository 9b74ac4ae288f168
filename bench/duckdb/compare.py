#!/usr/bin/env python3
"""faultline against DuckDB on the same capture and the same questions (issue 6).

    faultline bench generate ──► capture.jsonl ──┬─► faultline bench questions --format json
                                                 └─► DuckDB: questions.sql, section by section
                                                        └─► answers compared, times side by side

The questions, per service and minute: calls, errors, error rate, p50 and p99 latency;
per caller → callee edge: attempts, logical calls, retry amplification. Their exact
definitions are in analyzers/src/queries.rs and questions.sql repeats them.

Counts must agree exactly; latencies (both linear interpolation between the closest
ranks: DuckDB's quantile_cont, polars' Linear) and ratios within a relative 1e-9.

Usage (from the repository root, after `cargo build --release`):
    bench/duckdb/.venv/bin/python bench/duckdb/compare.py [--spans 1000000] [--capture FILE]
See bench/duckdb/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SQL = HERE / "questions.sql"

# Issue 6's targets.
TARGET_RATIO = 10.0
TARGET_MB_PER_SEC = 400.0
REL_TOLERANCE = 1e-9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans in the generated capture (default 1000000)")
    parser.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    parser.add_argument("--capture", type=Path, help="use this OTLP JSON lines capture instead of generating one")
    parser.add_argument("--data-dir", type=Path, default=HERE / "data", help="where generated captures are kept (default bench/duckdb/data)")
    parser.add_argument("--faultline", type=Path, default=ROOT / "target" / "release" / "faultline", help="the faultline binary (default target/release/faultline)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (default 2, this machine's cores)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each side; the fastest counts (default 3)")
    parser.add_argument("--json", type=Path, help="also write the result as JSON to this file")
    args = parser.parse_args()

    if not args.faultline.exists():
        sys.exit(f"compare.py: {args.faultline} not found: run `cargo build --release` first (or pass --faultline)")
    capture = args.capture or generate(args)
    file_bytes = capture.stat().st_size

    print(f"capture: {capture} ({file_bytes / 1e6:.0f} MB)", file=sys.stderr)
    print(f"faultline: {args.runs} run(s)…", file=sys.stderr)
    ours = run_faultline(args.faultline, capture, args.runs)
    print(f"DuckDB {duckdb.__version__} ({args.threads} threads): {args.runs} run(s)…", file=sys.stderr)
    theirs = run_duckdb(capture, args.threads, args.runs)

    problems = compare(ours["answers"], theirs["answers"])
    spans = ours["spans"]
    sides = {
        "faultline": {
            "load_seconds": ours["load_seconds"],
            "query_seconds": ours["query_seconds"],
            "total_seconds": ours["total_seconds"],
            "cpu_seconds": ours["cpu_seconds"],
        },
        "duckdb": {
            "load_seconds": theirs["load_seconds"],
            "query_seconds": theirs["query_seconds"],
            "total_seconds": theirs["total_seconds"],
            "cpu_seconds": theirs["cpu_seconds"],
        },
    }
    for side in sides.values():
        side["mb_per_sec"] = file_bytes / 1e6 / side["total_seconds"]
        side["spans_per_sec"] = spans / side["total_seconds"]
    ratio = sides["duckdb"]["total_seconds"] / sides["faultline"]["total_seconds"]
    cpu_ratio = sides["duckdb"]["cpu_seconds"] / sides["faultline"]["cpu_seconds"]
    result = {
        "capture": str(capture),
        "file_bytes": file_bytes,
        "spans": spans,
        "runs": args.runs,
        "duckdb_version": duckdb.__version__,
        "duckdb_threads": args.threads,
        "cpus": os.cpu_count(),
        **sides,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "load_average_1min": os.getloadavg()[0],
        "targets": {
            "ratio_at_least": TARGET_RATIO,
            "faultline_mb_per_sec_at_least": TARGET_MB_PER_SEC,
            "ratio_met": ratio >= TARGET_RATIO,
            "mb_per_sec_met": sides["faultline"]["mb_per_sec"] >= TARGET_MB_PER_SEC,
        },
        "answers": {
            "service_minutes": len(ours["answers"]["service_minutes"]),
            "edges": len(ours["answers"]["edges"]),
            "agree": not problems,
            "problems": problems[:20],
        },
    }

    print_table(result)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if not problems else 1


def generate(args: argparse.Namespace) -> Path:
    """The synthetic capture for --spans and --seed, generated once and kept."""
    args.data_dir.mkdir(parents=True, exist_ok=True)
    path = args.data_dir / f"incident-{args.spans}-seed{args.seed}.jsonl"
    if not path.exists():
        print(f"generating {path}…", file=sys.stderr)
        partial = path.with_suffix(".partial")
        subprocess.run(
            [str(args.faultline), "bench", "generate", "--spans", str(args.spans), "--seed", str(args.seed), "--out", str(partial), "--force"],
            check=True,
        )
        partial.rename(path)
    return path


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_faultline(binary: Path, capture: Path, runs: int) -> dict:
    before = cpu_seconds(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [str(binary), "bench", "questions", str(capture), "--runs", str(runs), "--format", "json"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"compare.py: faultline bench questions failed:\n{out.stderr}")
    result = json.loads(out.stdout)
    # CPU time is less disturbed than wall time by other work on the machine; the
    # process's runs are averaged (it includes start-up and the printing of answers).
    result["cpu_seconds"] = (cpu_seconds(resource.RUSAGE_CHILDREN) - before) / runs
    return result


def sql_sections() -> list[tuple[str, str]]:
    """questions.sql split at its `-- section: NAME` lines."""
    parts = re.split(r"^-- section: (\w+)\s*$", SQL.read_text(), flags=re.M)
    return list(zip(parts[1::2], parts[2::2]))


def run_duckdb(capture: Path, threads: int, runs: int) -> dict:
    sections = sql_sections()
    best = None
    for _ in range(runs):
        con = duckdb.connect(":memory:")
        con.execute(f"SET threads = {threads}")
        con.execute("SET VARIABLE capture = ?", [str(capture)])
        times = {}
        results = {}
        cpu = cpu_seconds(resource.RUSAGE_SELF)
        for name, body in sections:
            started = time.perf_counter()
            cursor = con.execute(body)
            rows = cursor.fetchall()
            times[name] = time.perf_counter() - started
            columns = [d[0] for d in cursor.description] if cursor.description else []
            results[name] = [dict(zip(columns, row)) for row in rows]
        cpu = cpu_seconds(resource.RUSAGE_SELF) - cpu
        con.close()
        total = sum(times.values())
        if best is None or total < best[0]:
            best = (total, times, results, cpu)
    total, times, results, cpu = best
    load = times["load"]
    return {
        "load_seconds": load,
        "query_seconds": total - load,
        "total_seconds": total,
        "cpu_seconds": cpu,
        "answers": {"service_minutes": results["service_minutes"], "edges": results["edges"]},
    }


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=1e-12)


def compare(ours: dict, theirs: dict) -> list[str]:
    """Where the two answers differ; empty when they agree."""
    problems = []
    questions = {
        "service_minutes": (("service", "minute"), ("calls", "errors"), ("error_rate", "p50_ms", "p99_ms")),
        "edges": (("caller", "callee"), ("attempts", "logical_calls"), ("amplification",)),
    }
    for question, (keys, exact, approximate) in questions.items():
        a = {tuple(row[k] for k in keys): row for row in ours[question]}
        b = {tuple(row[k] for k in keys): row for row in theirs[question]}
        for key in sorted(a.keys() - b.keys()):
            problems.append(f"{question} {key}: only faultline has it")
        for key in sorted(b.keys() - a.keys()):
            problems.append(f"{question} {key}: only DuckDB has it")
        for key in sorted(a.keys() & b.keys()):
            for field in exact:
                if a[key][field] != b[key][field]:
                    problems.append(f"{question} {key} {field}: faultline {a[key][field]}, DuckDB {b[key][field]}")
            for field in approximate:
                if not close(a[key][field], b[key][field]):
                    problems.append(f"{question} {key} {field}: faultline {a[key][field]!r}, DuckDB {b[key][field]!r}")
        if not a:
            problems.append(f"{question}: no rows (nothing compared)")
    return problems


def print_table(r: dict) -> None:
    print(f"capture: {r['capture']}: {r['spans']:,} spans, {r['file_bytes'] / 1e6:,.0f} MB; best of {r['runs']}; "
          f"DuckDB {r['duckdb_version']} on {r['duckdb_threads']} threads, {r['cpus']} CPUs")
    print()
    print(f"{'':<10} {'load s':>8} {'query s':>8} {'total s':>8} {'MB/s':>8} {'spans/s':>12} {'CPU s':>8}")
    for name in ("faultline", "duckdb"):
        s = r[name]
        print(f"{name:<10} {s['load_seconds']:>8.3f} {s['query_seconds']:>8.3f} {s['total_seconds']:>8.3f} "
              f"{s['mb_per_sec']:>8.1f} {s['spans_per_sec']:>12,.0f} {s['cpu_seconds']:>8.2f}")
    print()
    t = r["targets"]
    print(f"faultline is {r['ratio']:.1f}x DuckDB's speed (target ≥ {t['ratio_at_least']:.0f}x: "
          f"{'met' if t['ratio_met'] else 'NOT met'}); "
          f"{r['faultline']['mb_per_sec']:.0f} MB/s (target ≥ {t['faultline_mb_per_sec_at_least']:.0f}: "
          f"{'met' if t['mb_per_sec_met'] else 'NOT met'}); CPU time ratio {r['cpu_ratio']:.1f}x; "
          f"load average {r['load_average_1min']:.2f} (other work on the machine slows both sides)")
    a = r["answers"]
    if a["agree"]:
        print(f"answers agree: {a['service_minutes']} service-minutes, {a['edges']} edges")
    else:
        print("answers DIFFER:")
        for p in a["problems"]:
            print(f"  {p}")
    print()


if __name__ == "__main__":
    sys.exit(main())
