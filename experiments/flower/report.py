"""Study 3: tables (summary.md) and plots (PNG) from fl_runs.jsonl and aggregation.jsonl."""
import argparse
import json
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"cohort": "tab:blue", "flower": "tab:orange", "cohort-proof": "tab:green"}
LABELS = {"cohort": "Cohort (no proof)", "flower": "Flower", "cohort-proof": "Cohort (proof of learning)"}


def kind(run):
    return "cohort-proof" if run["proof"] else run["system"]


def load_lines(path):
    return [json.loads(line) for line in open(path)] if path.exists() else []


def memory_by_role(run):
    """Sum of the largest RSS of each process, one per role instance.

    Flower's SuperNodes start a new ClientApp process for every round, so
    summing every process ever seen would count each client once per round:
    ClientApps count once per client (the largest one seen) instead.
    """
    if not run.get("memory"):
        return None
    by_name = run["memory"]["by_name"]
    if "flwr-clientapp" not in by_name:  # every process lives for the whole run
        return run["memory"]["sum_max_rss_mb"]
    supernodes = by_name.get("flower-supernod", {"processes": 0})["processes"]
    total = 0.0
    for name, entry in by_name.items():
        count = supernodes if name == "flwr-clientapp" else entry["processes"]
        total += count * entry["max_rss_mb"]
    return total


def run_metrics(run):
    rounds = run["rounds"]
    times = [r["round_seconds"] for r in rounds]
    overhead = [r["round_seconds"] - r["max_train_seconds"] for r in rounds if r["max_train_seconds"] is not None]
    return {
        "round_median": statistics.median(times),
        "overhead_median": statistics.median(overhead) if overhead else None,
        "train_median": statistics.median(r["max_train_seconds"] for r in rounds if r["max_train_seconds"]),
        "train_seconds": run["train_seconds"],
        "seconds_to_85": run["seconds_to_85"],
        "end_to_end": run["end_to_end_seconds"],
        "peak_rss": run["memory"]["peak_total_rss_mb"] if run.get("memory") else None,
        "role_rss": memory_by_role(run),
        "final_accuracy": run["final_accuracy"],
        "load": run["load_before"][0],
        "startup": statistics.median(
            [r["max_clientapp_startup_seconds"] for r in rounds if r.get("max_clientapp_startup_seconds")] or [0.0]),
    }


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, "n/a"
    med = statistics.median(values)
    text = f"{med:.1f}" if len(values) == 1 else f"{med:.1f} ({min(values):.1f}-{max(values):.1f})"
    return med, text


def cell(value, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}"


def fl_tables(runs):
    lines = ["## Federated job: Cohort vs Flower", ""]
    lines += ["| run | load (1 min) before | median round s | median overhead s | slowest ClientApp start s | "
              "rounds total s | s to 85% | end to end s | peak RSS MB | RSS by role MB | final accuracy |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        m = run_metrics(run)
        name = run["run"] + (f" ({len(run['rounds'])} rounds, stopped)" if run.get("stopped") else "")
        lines.append(
            f"| {name} | {m['load']:.1f} | {m['round_median']:.1f} | "
            f"{m['overhead_median']:.1f} | {format(m['startup'], '.1f') if m['startup'] else '-'} | "
            f"{m['train_seconds']:.1f} | "
            f"{'-' if m['seconds_to_85'] is None else format(m['seconds_to_85'], '.1f')} | "
            f"{cell(m['end_to_end'])} | {cell(m['peak_rss'], 0)} | {cell(m['role_rss'], 0)} | "
            f"{m['final_accuracy']:.4f} |")
    lines.append("")
    groups = {}
    for run in runs:
        groups.setdefault(kind(run), []).append(run_metrics(run))
    keys = [("round_median", "wall time per round (median over rounds), s"),
            ("seconds_to_85", "time to 85% test accuracy, s"),
            ("overhead_median", "per-round overhead outside local training, s"),
            ("train_median", "slowest client's local training per round (same computation: a load gauge), s"),
            ("peak_rss", "peak memory, sampled total RSS, MB"),
            ("role_rss", "sum of per-process max RSS (one per role), MB")]
    header = "| metric | " + " | ".join(LABELS[k] for k in groups) + " | cohort / Flower | cohort with proof / Flower |"
    lines += ["Medians over runs (min-max in brackets):", "", header,
              "|---" * (len(groups) + 3) + "|"]
    for key, title in keys:
        cells, medians = [], {}
        for name, metrics in groups.items():
            medians[name], text = spread([m[key] for m in metrics])
            cells.append(text)
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {ratio(medians.get('cohort'), medians.get('flower'))} | "
                     f"{ratio(medians.get('cohort-proof'), medians.get('flower'))} |")
    lines += ["", "Test accuracy per round:", ""]
    width = max(len(run["rounds"]) for run in runs)
    lines.append("| run | " + " | ".join(str(i + 1) for i in range(width)) + " |")
    lines.append("|---" * (width + 1) + "|")
    for run in runs:
        lines.append(f"| {run['run']} | " + " | ".join(f"{r['test_accuracy']:.4f}" for r in run["rounds"]) + " |")
    cohort = [r for r in runs if kind(r) == "cohort"]
    flower = [r for r in runs if kind(r) == "flower"]
    if cohort and flower:
        acc_ratio = [c["test_accuracy"] / f["test_accuracy"]
                     for c, f in zip(cohort[0]["rounds"], flower[0]["rounds"])]
        lines.append("| ratio cohort / Flower (first runs) | " + " | ".join(f"{x:.4f}" for x in acc_ratio) + " |")
    return lines


def plot_accuracy(runs, path):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    seen = set()
    for run in runs:
        k = kind(run)
        xs = [r["elapsed_seconds"] for r in run["rounds"]]
        ys = [r["test_accuracy"] for r in run["rounds"]]
        ax.plot(xs, ys, marker="o", ms=3, color=COLORS[k], label=None if k in seen else LABELS[k],
                linestyle="--" if k == "cohort-proof" else "-")
        seen.add(k)
    ax.axhline(0.85, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("wall time since round 1 started (s)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Fashion-MNIST CNN, FedAvg: accuracy against wall time")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_round_times(runs, path):
    groups = {}
    for run in runs:
        groups.setdefault(kind(run), []).append(run)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(groups)
    for g, (k, members) in enumerate(groups.items()):
        count = min(len(r["rounds"]) for r in members)
        train = [statistics.median(r["rounds"][i]["max_train_seconds"] for r in members) for i in range(count)]
        total = [statistics.median(r["rounds"][i]["round_seconds"] for r in members) for i in range(count)]
        xs = [i + 1 + (g - (len(groups) - 1) / 2) * width for i in range(count)]
        ax.bar(xs, train, width, color=COLORS[k], label=f"{LABELS[k]}: slowest client's training")
        ax.bar(xs, [t - tr for t, tr in zip(total, train)], width, bottom=train, color=COLORS[k], alpha=0.35,
               label=f"{LABELS[k]}: rest of the round")
    ax.set_xticks(range(1, max(len(r["rounds"]) for r in runs) + 1))
    ax.set_xlabel("round")
    ax.set_ylabel("seconds (median over runs)")
    ax.set_title("Round wall time: training vs. everything else")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def agg_tables(rows):
    lines = ["## Aggregation rules alone", "",
             "Ratios are Cohort / Flower (< 1: Cohort faster). CLI: one `cohort aggregate` call on the same arrays, "
             "its reported rule time; bench: aggregation_bench medians, 1 or 2 threads.", "",
             "| rule | n | d | f | Cohort CLI ms | Cohort bench 1 thread ms | bench 2 threads ms | Flower ms | "
             "ratio CLI | ratio bench 1 thread | ratio bench 2 threads | max abs diff |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "flower_median" in r:
            flower = f"{r['flower_median'] * 1e3:.1f}"
            if len(r["flower_seconds"]) < 3:
                flower += f" ({len(r['flower_seconds'])} call{'s' if len(r['flower_seconds']) > 1 else ''})"
            ratios = (f"{r['ratio_cli']:.4f} | {r['ratio_1t']:.4f} | {r['ratio_2t']:.4f} | "
                      f"{r['max_abs_diff']:.1e}")
        else:
            est = r["flower_estimate_seconds"]
            flower = f"not run (est. {est:.0f} s)"
            ratios = (f"~{r['cohort_cli_seconds'] / est:.5f} (est.) | ~{r['cohort_1t_median'] / est:.5f} (est.) | "
                      f"~{r['cohort_2t_median'] / est:.5f} (est.) | -")
        lines.append(f"| {r['rule']} | {r['n']} | {r['d']:.0e} | {r['f']} | {r['cohort_cli_seconds'] * 1e3:.1f} | "
                     f"{r['cohort_1t_median'] * 1e3:.1f} | {r['cohort_2t_median'] * 1e3:.1f} | {flower} | {ratios} |")
    return lines


def plot_aggregation(rows, path):
    rules = list(dict.fromkeys(r["rule"] for r in rows))
    cases = list(dict.fromkeys((r["n"], r["d"]) for r in rows))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(rules)
    smallest = 1.0
    for k, rule in enumerate(rules):
        xs, ys, hatch = [], [], []
        for i, case in enumerate(cases):
            match = [r for r in rows if r["rule"] == rule and (r["n"], r["d"]) == case]
            if not match:
                continue
            r = match[0]
            flower = r.get("flower_median", r.get("flower_estimate_seconds"))
            xs.append(i + (k - (len(rules) - 1) / 2) * width)
            ys.append(r["cohort_cli_seconds"] / flower)
            hatch.append("flower_median" not in r)
        smallest = min([smallest] + ys)
        bars = ax.bar(xs, ys, width, label=rule)
        for bar, estimated in zip(bars, hatch):
            if estimated:
                bar.set_hatch("//")
    ax.set_yscale("log")
    ax.set_ylim(bottom=smallest / 2)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(cases)), [f"n={n}\nd={d:.0e}" for n, d in cases])
    ax.set_ylabel("time ratio Cohort / Flower (log; < 1: Cohort faster)")
    ax.set_title("Rule time, `cohort aggregate` (1 thread) / Flower; hatched: Flower estimated", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", type=Path, required=True)
    args = p.parse_args()
    runs = load_lines(args.results / "fl_runs.jsonl")
    agg = load_lines(args.results / "aggregation.jsonl")
    lines = ["# Study 3 results (generated by report.py)", ""]
    if runs:
        lines += fl_tables(runs) + [""]
        plot_accuracy(runs, args.results / "accuracy_vs_time.png")
        plot_round_times(runs, args.results / "round_times.png")
    if agg:
        lines += agg_tables(agg) + [""]
        plot_aggregation(agg, args.results / "aggregation_ratios.png")
    (args.results / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
