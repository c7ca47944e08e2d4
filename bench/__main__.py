"""`make bench`: the baselines and the platform measured in one run, on a platform of its own.

    python -m bench [--seconds 20] [--scale 10000,100000,1000000] [--json bench-results/latest.json]
    python -m bench --smoke        # a few seconds: that it runs and the orders check out, no figures judged

Prints a table with each target, its value, its limit (a ratio to the baselines of the same run)
and PASS/MISS; writes every figure, the machine and its load average to the JSON file.
"""
import argparse
import json
import os
import platform as host
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import baselines, workload
from bench.platform import BenchPlatform

ROOT = Path(__file__).resolve().parents[1]
# the platform as `make up` runs it, but for the rate limit (an integrator's bulk load is the point)
PLATFORM_ENV = {"GATEWAY_RATE_LIMIT_RATE": "0", "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO")}


def machine():
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": memory, "kernel": host.release(),
            "python": host.python_version()}


def targets(result):
    """(name, value, limit, passed) for each target of issue 11, limits from the same run's baselines."""
    rows = []
    echo = max((r for r in result["baselines"] if r["kind"] == "nameko"), key=lambda r: r["per_second"])
    at32 = result["orders"].get("32")
    if at32:
        rows.append(("orders/s at 32 clients ≥ ¼ nameko echo calls/s", at32["per_second"],
                     round(echo["per_second"] / 4, 1), at32["per_second"] >= echo["per_second"] / 4))
        rows.append(("order p99 at 32 (ms) ≤ 20 × nameko echo p99", at32["p99_ms"], round(echo["p99_ms"] * 20, 1),
                     at32["p99_ms"] is not None and at32["p99_ms"] <= echo["p99_ms"] * 20))
        rows.append(("order errors at 32 = 0", at32["errors"], 0, at32["errors"] == 0))
        rows.append(("CPU ms per order at 32 ≤ 5 × nameko echo CPU ms per call", at32["cpu_ms_per_call"],
                     round(echo["cpu_ms_per_call"] * 5, 2),
                     at32["cpu_ms_per_call"] is not None and at32["cpu_ms_per_call"] <= echo["cpu_ms_per_call"] * 5))
    overview = result["reads"].get("overview")
    if overview:
        rows.append(("customer overview p99 at 8 (ms) ≤ 100", overview["p99_ms"], 100,
                     overview["p99_ms"] is not None and overview["p99_ms"] <= 100))
    rows.append(("every order confirmed, stock and credit reserved once", len(result["check"]["problems"]), 0,
                 not result["check"]["problems"]))
    for size, reads in sorted(result.get("scale", {}).items(), key=lambda kv: int(kv[0])):
        for name, row in reads.get("timings", {}).items():
            limit = 50 if name.startswith("customer list page") else 1000
            rows.append((f"{name} at {int(size):,} lines (ms) ≤ {limit}", row["p50_ms"], limit,
                         row["p50_ms"] is not None and row["p50_ms"] <= limit))
    return rows


def print_tables(result):
    print("\nBaselines (the message floor of this machine, this run)")
    print(f"  {'':<8}{'in flight':>10}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/call':>13}")
    for r in result["baselines"]:
        print(f"  {r['kind']:<8}{r['inflight']:>10}{r['per_second']:>10}{r['p50_ms']:>9}{r['p99_ms']:>9}"
              f"{r['cpu_ms_per_call']:>13}")
    print("\nOrders (place + confirm, 3 lines, over HTTP)")
    print(f"  {'clients':>8}{'orders':>8}{'orders/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
          f"{'CPU ms/order':>14}")
    for c, r in result["orders"].items():
        print(f"  {c:>8}{r['calls']:>8}{r['per_second']:>10}{r['p50_ms']!s:>9}{r['p95_ms']!s:>9}{r['p99_ms']!s:>9}"
              f"{r['errors']:>8}{r['cpu_ms_per_call']!s:>14}")
    print("\nReads at concurrency 8")
    for name, r in result["reads"].items():
        print(f"  {name:<10} {r['per_second']:>8}/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  errors {r['errors']}"
              f"  CPU {r['cpu_ms_per_call']} ms/read")
    for size, reads in sorted(result.get("scale", {}).items(), key=lambda kv: int(kv[0])):
        if "error" in reads:
            print(f"\nScale: {int(size):,} order lines: {reads['error']}")
            continue
        print(f"\nScale: {reads['order_lines']:,} order lines, {reads['orders']:,} orders, {reads['customers']:,} "
              f"customers (loaded in {reads['load_seconds']} s)")
        for name, r in reads["timings"].items():
            print(f"  {name:<40} p50 {r['p50_ms']} ms  max {r['max_ms']} ms  ({r['calls']} calls)"
                  + (f"  FAILED: {r['error'][:100]}" if r.get("error") else ""))
    check = result["check"]
    print(f"\nCheck: {check['orders']} orders, {len(check['problems'])} problems")
    for problem in check["problems"][:20]:
        print(f"  ! {problem}")
    if result.get("targets"):
        print("\nTargets")
        for name, value, limit, passed in result["targets"]:
            print(f"  {'PASS' if passed else 'MISS'}  {name:<62} {value!s:>10}   limit {limit}")
    print(f"\nload average before/after: {result['load_average']['before']} / {result['load_average']['after']}")


def profile(platform, folder, seconds):
    """py-spy on every platform process for `seconds` (an order or a read phase): collapsed stacks in `folder`."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--duration",
                              str(int(seconds)), "--rate", "200", "--format", "raw", "--nonblocking",
                              "-o", str(Path(folder) / f"{name}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, pid in platform.pids().items()]


def run(args):
    result = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
              "load_average": {"before": list(os.getloadavg())}, "settings": vars(args), "orders": {}, "reads": {}}
    with BenchPlatform(env=PLATFORM_ENV) as platform:
        print(f"platform up on vhost {platform.vhost}, logs in {platform.log_dir}", flush=True)
        if not (args.smoke or args.skip_baselines):
            print("baselines …", flush=True)
            result["baselines"] = baselines.run_all(platform.amqp_uri, args.baseline_seconds)
        concurrencies = [int(c) for c in args.concurrency.split(",")]
        org = workload.Org(platform, customers=max(concurrencies))
        print(f"org ready: {len(org.customers)} customers, 3 products", flush=True)
        order_ids = []
        for concurrency in concurrencies:
            profiling = profile(platform, args.profile, args.seconds) if (
                args.profile and concurrency == max(concurrencies)) else []
            row, ids = workload.orders(platform, org, args.seconds, concurrency)
            for spy in profiling:
                spy.wait(60)
            order_ids += ids
            result["orders"][str(concurrency)] = row
            print(f"  orders at {concurrency}: {row['per_second']}/s p50 {row['p50_ms']} p99 {row['p99_ms']} ms, "
                  f"{row['errors']} errors, CPU {row['cpu_ms_per_call']} ms/order", flush=True)
        if order_ids:
            result["reads"] = workload.reads(
                platform, org, args.seconds, 8, order_ids,
                profile=(lambda name: profile(platform, Path(args.profile) / name, args.seconds)) if args.profile
                else None)
        problems, checked = workload.check(platform, org)
        result["check"] = {"orders": checked, "placed_in_bench": len(order_ids), "problems": problems}
        if args.scale:
            from bench import scale

            result["scale"] = scale.run(platform, org, [int(s) for s in args.scale.split(",")])
    result["load_average"]["after"] = list(os.getloadavg())
    result["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if result.get("baselines"):
        result["targets"] = targets(result)
    else:
        result["baselines"] = []
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="each order and read phase (default 20)")
    parser.add_argument("--baseline-seconds", type=float, default=10)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--scale", default="10000,100000",
                        help="order-line counts to load and time the reads at, comma-separated ('' for none); "
                             "1000000 adds about 10 minutes of loading on a 2-core machine")
    parser.add_argument("--json", default=str(ROOT / "bench-results" / "latest.json"))
    parser.add_argument("--profile", metavar="FOLDER",
                        help="py-spy every process during the orders at the highest concurrency (collapsed stacks "
                             "in FOLDER) and during each read (in FOLDER/overview, FOLDER/timeline)")
    parser.add_argument("--skip-baselines", action="store_true", help="(while working on one part)")
    parser.add_argument("--smoke", action="store_true", help="a few seconds, no baselines, no scale")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds, args.concurrency, args.scale = min(args.seconds, 2), "1,4", ""
    begun = time.monotonic()
    result = run(args)
    result["wall_seconds"] = round(time.monotonic() - begun, 1)
    print_tables(result)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwritten {path} ({result['wall_seconds']} s)")
    return 1 if result["check"]["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
