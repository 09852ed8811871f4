"""Study 3, part 2: robust aggregation rules alone, Cohort against Flower, on identical arrays.

Cohort's time: tests/benchmarks/aggregation_bench (the rule's pipeline run
in process, warm, on a random [n, d] float32 stack: the rule plus its NaN/Inf
check; google-benchmark medians of 3 repetitions), with 1 and with 2 ATen
threads. `cohort aggregate --json` is also run once per case on the very
arrays Flower gets: its output is compared with Flower's, and its "seconds"
(the pipeline's run in a fresh process, no .npy IO) is kept too; in a fresh
process that one call also pays ATen's first-use costs, which the benchmark's
repeated calls do not. Flower: the functions its strategies call
(flwr.server.strategy.aggregate: aggregate_krum, aggregate_bulyan,
aggregate_median, aggregate_trimmed_avg), timed with perf_counter around the
call, on the same float32 rows passed as one layer per client.

Parameters are matched: f = max(1, (n - 3) // 4) (the aggregation_bench
convention) for Krum and Bulyan; Flower's trimmed mean cuts floor(beta n)
values at each end, so beta = (f + 0.5) / n cuts exactly f, as Cohort's
trimmed-mean does. Writes one JSON line per (rule, n, d) to <out>.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from flwr.server.strategy.aggregate import (
    aggregate_bulyan,
    aggregate_krum,
    aggregate_median,
    aggregate_trimmed_avg,
)

RULES = ("krum", "bulyan", "median", "trimmed-mean")


def byzantine_count(n):
    return max(1, (n - 3) // 4)


def flower_work(rule, n, f, d):
    """What Flower's time grows with: d times the number of row pairs it takes a distance of.

    Krum computes the full n x n matrix; Bulyan re-runs Krum on the n - 2f
    shrinking sets (n, n - 1, ..., 2f + 1 rows). Median and trimmed mean are
    linear in n d.
    """
    if rule == "krum":
        return d * n * n
    if rule == "bulyan":
        return d * sum(k * k for k in range(2 * f + 1, n + 1))
    return d * n


def flower_call(rule, rows, f):
    """Calls Flower's function for `rule` on the rows (one single-layer model per client)."""
    results = [([row], 1) for row in rows]
    n = len(rows)
    if rule == "krum":
        return aggregate_krum(results, num_malicious=f, to_keep=0)[0]
    if rule == "bulyan":  # pops from the list it is given: a fresh list per call
        return aggregate_bulyan(results, num_malicious=f, aggregation_rule=aggregate_krum, to_keep=0)[0]
    if rule == "median":
        return aggregate_median(results)[0]
    if rule == "trimmed-mean":
        return aggregate_trimmed_avg(results, proportiontocut=(f + 0.5) / n)[0]
    raise ValueError(rule)


def time_flower(rule, rows, f, repeats, long_call):
    """Median of up to `repeats` calls; a call longer than `long_call` seconds is not repeated."""
    times, output = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        output = flower_call(rule, rows, f)
        times.append(time.perf_counter() - start)
        if times[-1] > long_call:
            break
    return times, output


def thread_env(threads):
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))


def cohort_cli(cohort, rule, f, rows_path, out_path):
    """One `cohort aggregate` call (1 thread): (its "seconds", the aggregate)."""
    done = subprocess.run(
        [str(cohort), "aggregate", "--rule", rule, "--f", str(f), "--input", str(rows_path),
         "--output", str(out_path), "--json"],
        env=thread_env(1), capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"], np.load(out_path)


def cohort_bench(bench, threads, repeats, n_values, dims):
    """{(rule, n, d): median seconds} from aggregation_bench."""
    pattern = "^rule/({})/({})/({})/".format(
        "|".join(RULES), "|".join(map(str, n_values)), "|".join(map(str, dims)))
    done = subprocess.run(
        [str(bench), f"--benchmark_filter={pattern}", f"--benchmark_repetitions={repeats}",
         "--benchmark_format=json", "--benchmark_report_aggregates_only=true"],
        env=thread_env(threads), capture_output=True, text=True, check=True)
    medians = {}
    for b in json.loads(done.stdout)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        _, rule, n, d = b["run_name"].split("/")[:4]
        medians[(rule, int(n), int(d))] = b["real_time"] / 1e3  # reported in ms
    return medians


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cohort", type=Path, required=True)
    p.add_argument("--bench", type=Path, required=True, help="tests/benchmarks/aggregation_bench")
    p.add_argument("--out", type=Path, required=True, help="JSON lines, one per case")
    p.add_argument("--n", type=int, nargs="+", default=[10, 50, 100])
    p.add_argument("--d", type=float, nargs="+", default=[1e5, 1e6])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--long-call", type=float, default=10.0,
                   help="a Flower call longer than this is not repeated (seconds)")
    p.add_argument("--skip-above", type=float, default=300.0,
                   help="skip a Flower case whose estimate (scaled by flower_work from a measured smaller case) "
                        "exceeds this (seconds)")
    args = p.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    dims = sorted(int(d) for d in args.d)
    cases = [(n, d) for d in dims for n in sorted(args.n)]  # smallest first: they feed the estimates
    flower_median = {}  # (rule, n, d) -> seconds, for the estimates
    bench = {}
    for threads in (1, 2):
        print(f"aggregation_bench, {threads} thread(s) ...", flush=True)
        bench[threads] = cohort_bench(args.bench, threads, args.repeats, args.n, dims)
    with tempfile.TemporaryDirectory() as tmp:
        rows_path, out_path = Path(tmp) / "rows.npy", Path(tmp) / "out.npy"
        for k, (n, d) in enumerate(cases):
            rows = np.random.default_rng(1000 * n + d % 997).standard_normal((n, d), dtype=np.float32)
            np.save(rows_path, rows)
            f = byzantine_count(n)
            for rule in RULES:
                line = {"rule": rule, "n": n, "d": d, "f": f, "load": [round(x, 2) for x in os.getloadavg()]}
                for threads in (1, 2):
                    line[f"cohort_{threads}t_median"] = bench[threads][(rule, n, d)]
                line["cohort_cli_seconds"], cohort_out = cohort_cli(args.cohort, rule, f, rows_path, out_path)
                # From the largest case of this rule measured so far.
                measured = [(flower_work(rule, m, byzantine_count(m), e), seconds)
                            for (r, m, e), seconds in flower_median.items() if r == rule]
                estimate = None
                if measured:
                    base_work, base_seconds = max(measured)
                    estimate = base_seconds * flower_work(rule, n, f, d) / base_work
                if estimate is not None and estimate > args.skip_above:
                    line["flower_estimate_seconds"] = estimate
                    print(f"[{k + 1}/{len(cases)}] {rule} n={n} d={d}: Flower skipped, estimated {estimate:.0f} s",
                          flush=True)
                else:
                    times, flower_out = time_flower(rule, rows, f, args.repeats, args.long_call)
                    line["flower_seconds"] = times
                    line["flower_median"] = flower_median[(rule, n, d)] = statistics.median(times)
                    line["max_abs_diff"] = float(np.max(np.abs(flower_out.astype(np.float64) - cohort_out)))
                    line["ratio_1t"] = line["cohort_1t_median"] / line["flower_median"]
                    line["ratio_2t"] = line["cohort_2t_median"] / line["flower_median"]
                    line["ratio_cli"] = line["cohort_cli_seconds"] / line["flower_median"]
                    print(f"[{k + 1}/{len(cases)}] {rule} n={n} d={d}: cohort {line['cohort_1t_median'] * 1e3:.1f} ms "
                          f"(in process, 1 thread; CLI call {line['cohort_cli_seconds'] * 1e3:.0f} ms), Flower {line['flower_median'] * 1e3:.1f} ms, ratio {line['ratio_1t']:.4f}, "
                          f"max |diff| {line['max_abs_diff']:.2e}", flush=True)
                with open(args.out, "a") as out:
                    out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
