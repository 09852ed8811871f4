"""Summarises and plots Study 2 (proof of learning): python plot.py RESULTS_DIR.

Reads detection.csv, honest.csv and cost.csv written by pol_experiment and
writes summary.md, detection.png and cost.png next to them.
"""
import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The default job's task (README): 469 steps of batch 32 over a 15,000-image
# shard, in segments of [proof] segment_steps = 50.
DEFAULT_TASK_SEGMENTS = math.ceil(469 / 50)
DEFAULT_RHO = 0.1
DEFAULT_S = 7


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def wilson(successes, trials, z=1.96):
    """95% Wilson score interval of a binomial proportion."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return (max(0.0, centre - half), min(1.0, centre + half))


def hypergeometric_catch(candidates, faked, s):
    """P(at least one of s distinct segments drawn from `candidates` is faked)."""
    s = min(s, candidates)
    return 1.0 - math.comb(candidates - faked, s) / math.comb(candidates, s)


def summarise_detection(rows):
    cells = defaultdict(lambda: {"caught": 0, "trials": 0, "exact": [], "tasks": 0})
    for r in rows:
        cell = cells[(float(r["q"]), int(r["s"]))]
        cell["caught"] += int(r["caught"])
        cell["trials"] += int(r["trials"])
        cell["tasks"] += 1
        # Faked segments are among segments 1..S-1; the last is always audited
        # and never faked.
        cell["exact"].append(hypergeometric_catch(int(r["segments"]) - 1, int(r["faked"]), int(r["s"])))
    out = []
    for (q, s), c in sorted(cells.items()):
        low, high = wilson(c["caught"], c["trials"])
        out.append({
            "q": q, "s": s, "tasks": c["tasks"], "trials": c["trials"],
            "empirical": c["caught"] / c["trials"], "low": low, "high": high,
            "exact": sum(c["exact"]) / len(c["exact"]), "formula": 1 - (1 - q) ** s,
        })
    return out


def summarise_cost(rows):
    plain = sum(float(r["train_plain_cpu"]) for r in rows)
    committed = sum(float(r["train_committed_cpu"]) for r in rows)
    segments = [math.ceil(int(r["steps"]) / int(r["segment_steps"])) for r in rows]
    train_per_segment = committed / sum(segments)
    verify_per_segment = sum(float(r["verify_cpu_per_segment"]) for r in rows) / len(rows)
    return {
        "tasks": len(rows),
        "segment_steps": int(rows[0]["segment_steps"]),
        "commit_overhead": committed / plain - 1.0,
        "verify_ratio": verify_per_segment / train_per_segment,
        "train_per_segment": train_per_segment,
        "verify_per_segment": verify_per_segment,
    }


def verification_fraction(cost, rho, s, segments=DEFAULT_TASK_SEGMENTS):
    """Re-execution compute over training compute: an audited task re-executes
    min(s, S-1) random segments plus the last one."""
    return rho * (min(s, segments - 1) + 1) / segments * cost["verify_ratio"]


def plot_detection(detection, out):
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for q in sorted({d["q"] for d in detection}):
        cells = [d for d in detection if d["q"] == q]
        s = [d["s"] for d in cells]
        line = ax.errorbar(s, [d["empirical"] for d in cells],
                           yerr=[[d["empirical"] - d["low"] for d in cells], [d["high"] - d["empirical"] for d in cells]],
                           fmt="o", capsize=3, label=f"q = {q:g}: measured")
        fine = [x / 10 for x in range(10, 81)]
        ax.plot(fine, [1 - (1 - q) ** x for x in fine], "--", color=line[0].get_color(), alpha=0.6,
                label=f"q = {q:g}: 1-(1-q)^s")
    ax.axhline(0.99, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("s, random segments re-executed per audited task (+ the last one)")
    ax.set_ylabel("P(caught | audited)")
    ax.set_title("Cheaters faking a fraction q of their segments")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    ax.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(out / "detection.png", dpi=120)


def plot_cost(detection, cost, segments, out):
    """Both axes for the detection study's tasks (`segments` segments)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for rho in (0.1, 0.25, 0.5):
        for q in (0.1, 0.5):
            cells = [d for d in detection if d["q"] == q]
            x = [100 * verification_fraction(cost, rho, d["s"], segments) for d in cells]
            # Per task: P(audited and caught) = rho * P(caught | audited).
            ax.plot(x, [rho * d["empirical"] for d in cells], "o-", ms=4,
                    label=f"rho = {rho:g}, q = {q:g}")
    ax.set_xlabel(f"verification compute, % of training (tasks of {segments} segments)")
    ax.set_ylabel("P(caught) per task")
    ax.set_title("Detection against audit cost (s = 1, 2, 4, 7, 8)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "cost.png", dpi=120)


def write_summary(detection, honest, cost, out):
    lines = ["# Study 2 results", "",
             "## Detection (P caught | audited)", "",
             "| q | s | tasks | trials | measured | 95% CI | exact (hypergeometric) | 1-(1-q)^s |",
             "|---|---|---|---|---|---|---|---|"]
    for d in detection:
        lines.append(f"| {d['q']:g} | {d['s']} | {d['tasks']} | {d['trials']} | {d['empirical']:.4f} | "
                     f"[{d['low']:.4f}, {d['high']:.4f}] | {d['exact']:.4f} | {d['formula']:.4f} |")
    failing = sum(int(r["failing"]) for r in honest)
    segments = sum(int(r["segments"]) for r in honest)
    lines += ["", "## Honest work", "",
              f"{len(honest)} honest tasks (trained at 1 thread, re-executed at 2), {segments} segments "
              f"re-executed: {failing} failed (false positives).", ""]
    if cost:
        lines += ["## Cost (model cnn, CPU seconds)", "",
                  f"- tasks timed: {cost['tasks']}, segments of {cost['segment_steps']} steps",
                  f"- committing (hashing and writing every state): {100 * cost['commit_overhead']:+.2f}% of training",
                  f"- re-executing one segment: {cost['verify_per_segment']:.3f} s CPU, "
                  f"{cost['verify_ratio']:.2f}x training it ({cost['train_per_segment']:.3f} s)",
                  f"- verification at the defaults (rho = {DEFAULT_RHO}, s = {DEFAULT_S}, a task of "
                  f"{DEFAULT_TASK_SEGMENTS} segments): "
                  f"{100 * verification_fraction(cost, DEFAULT_RHO, DEFAULT_S):.1f}% of training compute", ""]
    (out / "summary.md").write_text("\n".join(lines))


def main():
    out = Path(sys.argv[1])
    detection_rows = read(out / "detection.csv")
    detection = summarise_detection(detection_rows)
    honest = read(out / "honest.csv")
    cost = summarise_cost(read(out / "cost.csv")) if (out / "cost.csv").exists() else None
    plot_detection(detection, out)
    if cost:
        plot_cost(detection, cost, int(detection_rows[0]["segments"]), out)
    write_summary(detection, honest, cost, out)
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
