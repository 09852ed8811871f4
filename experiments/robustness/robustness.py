"""Study 1: robustness under attack, ByzFL's benchmark protocol on Fashion-MNIST.

Each cell of the grid (aggregator, gamma, f, attack, seed) is one
`cohort simulate` run of the job in job_for(); the shared cells are also run
through ByzFL itself (byzfl_peer.py). Finished runs are kept under
results/<grid>/ and skipped on the next invocation, so the study resumes
where it stopped. Afterwards the worst case over attacks is tabulated and
plotted as ByzFL's benchmark does (evaluate_results.py): for every attack
the seed-averaged test accuracy, its maximum over the evaluation points,
then the minimum over attacks.
"""

import argparse
import concurrent.futures
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYTHON = sys.executable

# name: (pre-aggregators, rule, rule parameters); ByzFL's defaults.
AGGREGATORS = {
    "tm": (["clip", "nnm"], "trimmed-mean", {"c": "2.0"}),
    "gm": (["clip", "nnm"], "geometric-median", {"c": "2.0", "nu": "0.1", "iters": "3"}),
    "median": ([], "median", {}),
    "krum": ([], "krum", {}),
    "cc": ([], "centered-clipping", {"tau": "100", "iters": "1"}),
}
AGGREGATOR_LABELS = {"tm": "clip>NNM>TM", "gm": "clip>NNM>GM", "median": "median", "krum": "Krum",
                     "cc": "CC"}
# Cohort sends the model delta -lr * momentum (lr 0.1 makes it exactly
# -m of ByzFL), so ALIE's mu + tau sigma on ByzFL's vectors is mu - tau sigma
# on ours; sign-flip and IPM are odd in the vectors and need nothing.
ATTACKS = {
    "sign-flip": ("sign-flip", {}, "SignFlipping"),
    "optimal-ipm": ("optimal-ipm", {}, "Optimal_InnerProductManipulation"),
    "optimal-alie": ("optimal-alie", {"sign": "-"}, "Optimal_ALittleIsEnough"),
}


@dataclass(frozen=True)
class Grid:
    name: str
    steps: int
    eval_every: int
    eval_samples: int  # 0 = all 10,000 test images
    aggregators: tuple
    gammas: tuple
    fs: tuple
    seeds: tuple
    peer_gammas: tuple  # cells also run through ByzFL (trimmed mean)
    peer_fs: tuple
    peer_attacks: tuple = tuple(ATTACKS)


GRIDS = {
    # ByzFL's default benchmark, unchanged.
    "full": Grid("full", 800, 50, 0, tuple(AGGREGATORS), (1.0, 0.66, 0.33, 0.0), (1, 2, 3, 4), (1, 2, 3),
                 (1.0, 0.33), (1, 3)),
    # What two cores can do in about two hours (README.md): a quarter of the
    # steps, one seed, the IID and the most label-skewed-but-one gamma, f = 1, 3.
    "default": Grid("default", 200, 50, 0, tuple(AGGREGATORS), (1.0, 0.33), (1, 3), (1,), (1.0, 0.33), (1, 3)),
    # A smoke test of every step.
    "quick": Grid("quick", 20, 10, 1000, ("tm",), (1.0,), (1,), (1,), (1.0,), (1,), ("sign-flip",)),
}


@dataclass(frozen=True)
class Run:
    system: str  # "cohort" or "byzfl"
    aggregator: str
    gamma: float
    f: int
    attack: str
    seed: int

    @property
    def name(self):
        return f"{self.system}/{self.aggregator}_g{self.gamma:g}_f{self.f}_{self.attack}_s{self.seed}"

    @property
    def cost(self):
        """Relative run time: the tuned attacks run the pipeline 20 times a
        step, and ByzFL's NNM materialises n x (n - f) x d floats."""
        per_step = 1.0 if self.attack == "sign-flip" else 4.0
        return per_step * (6.0 if self.system == "byzfl" else 1.0)


def toml_value(value):
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def toml_table(name, entries):
    return f"[{name}]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in entries.items())


def job_for(grid, run, output_dir):
    """ByzFL's DSGD protocol as a Cohort job: 10 honest workers, one SGD
    step of batch 25 per round with momentum 0.9 kept across rounds and
    weight decay 1e-4, local lr 0.1 (so the update is -momentum), server
    step 0.1, f simulated Byzantine rows."""
    pre, rule, params = AGGREGATORS[run.aggregator]
    attack, attack_params, _ = ATTACKS[run.attack]
    sections = [
        toml_table("job", {"name": "robustness", "seed": run.seed, "rounds": grid.steps,
                           "output_dir": output_dir}),
        toml_table("model", {"name": "cnn"}),
        toml_table("data", {"partition": "gamma", "gamma": run.gamma, "eval_samples": grid.eval_samples}),
        toml_table("training", {"local_steps": 1, "batch_size": 25, "learning_rate": 0.1, "momentum": 0.9,
                                "weight_decay": 1e-4, "keep_momentum": True}),
        toml_table("aggregation", {"pre": pre, "rule": rule, "f": run.f, "server_learning_rate": 0.1}),
        toml_table("aggregation.params", params),
        toml_table("attack", {"name": attack, "byzantine": run.f}),
        toml_table("attack.params", attack_params),
        toml_table("round", {"min_workers": 10, "min_updates": 10}),
    ]
    return "\n".join(sections)


def runs_of(grid):
    """In the order they run: the shared cells (ByzFL's sign flip, Cohort's
    three attacks), the rest of Cohort's grid, one (gamma, f) at a time
    across the aggregators, and last ByzFL's tuned attacks, the slowest
    runs by far, so that a grid stopped early has the most cells."""
    cohort = [Run("cohort", a, g, f, attack, s) for g in grid.gammas for f in grid.fs for a in grid.aggregators
              for attack in ATTACKS for s in grid.seeds]
    byzfl = [Run("byzfl", "tm", g, f, attack, s) for g in grid.peer_gammas for f in grid.peer_fs
             for attack in grid.peer_attacks for s in grid.seeds]
    shared = [r for r in cohort if r.aggregator == "tm" and r.gamma in grid.peer_gammas and r.f in grid.peer_fs]
    byzfl_cheap = [r for r in byzfl if r.attack == "sign-flip"]
    byzfl_tuned = [r for r in byzfl if r.attack != "sign-flip"]
    return byzfl_cheap + shared + [r for r in cohort if r not in shared] + byzfl_tuned


def peer_environment():
    """Both systems get glibc's large-block reuse, which `cohort` sets for
    itself (cli/main.cpp): without it 40% of PyTorch's time under the tuned
    attacks went to page faults of freshly mmapped tensors."""
    env = dict(os.environ)
    env["MALLOC_MMAP_THRESHOLD_"] = str(1 << 30)
    env["MALLOC_TRIM_THRESHOLD_"] = str(1 << 30)
    return env


def execute(grid, run, results, cohort_binary):
    """Runs one cell into results/<run.name>/summary.json; returns it."""
    final = os.path.join(results, run.name)
    work = final + ".partial"
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    start = time.time()
    log = open(os.path.join(work, "log.txt"), "w")
    if run.system == "cohort":
        job = os.path.join(work, "job.toml")
        with open(job, "w") as out:
            out.write(job_for(grid, run, "out"))  # relative to the run's directory, the child's cwd
        command = ["nice", "-n", "19", cohort_binary, "simulate", "--config", job, "--eval-every",
                   str(grid.eval_every), "--threads", "1", "--quiet"]
    else:
        command = ["nice", "-n", "19", PYTHON, os.path.join(HERE, "byzfl_peer.py"), "--gamma", str(run.gamma),
                   "--f", str(run.f), "--attack", ATTACKS[run.attack][2], "--steps", str(grid.steps),
                   "--eval-every", str(grid.eval_every), "--seed", str(run.seed - 1), "--out",
                   os.path.join(work, "byzfl.json")]
        if grid.eval_samples:
            command += ["--test-samples", str(grid.eval_samples)]
    code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=work, env=peer_environment())
    log.close()
    if code != 0:
        raise RuntimeError(f"{run.name} failed (exit {code}); see {work}/log.txt")
    summary = summarize(run, work)
    summary["wall_seconds"] = time.time() - start
    with open(os.path.join(work, "summary.json"), "w") as out:
        json.dump(summary, out)
    if run.system == "cohort":
        shutil.copy(os.path.join(work, "out", "metrics.jsonl"), os.path.join(work, "metrics.jsonl"))
        shutil.rmtree(os.path.join(work, "out"))  # the 1.7 MB checkpoint is not kept
    shutil.rmtree(final, ignore_errors=True)
    os.rename(work, final)
    return summary


def summarize(run, work):
    if run.system == "byzfl":
        with open(os.path.join(work, "byzfl.json")) as f:
            peer = json.load(f)
        return {"steps": peer["steps"], "test_accuracy": peer["test_accuracy"]}
    steps, accuracies = [], []
    with open(os.path.join(work, "out", "metrics.jsonl")) as f:
        for line in f:
            metrics = json.loads(line)
            if metrics["test_accuracy"] is not None:
                steps.append(metrics["round"])
                accuracies.append(metrics["test_accuracy"])
    return {"steps": steps, "test_accuracy": accuracies}


def load_summary(results, run):
    path = os.path.join(results, run.name, "summary.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def run_grid(grid, results, jobs, cohort_binary):
    runs = runs_of(grid)
    todo = [r for r in runs if load_summary(results, r) is None]
    print(f"robustness/{grid.name}: {len(runs)} runs, {len(runs) - len(todo)} already done, {len(todo)} to go "
          f"({jobs} at a time)", flush=True)
    if not todo:
        return
    started = time.time()
    cost_left = sum(r.cost for r in todo)
    cost_done = 0.0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(execute, grid, r, results, cohort_binary): r for r in todo}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            run = futures[future]
            summary = future.result()
            cost_done += run.cost
            cost_left -= run.cost
            elapsed = time.time() - started
            eta = elapsed / cost_done * cost_left
            print(f"[{done}/{len(todo)}] {run.name}: best accuracy {max(summary['test_accuracy']):.4f} in "
                  f"{summary['wall_seconds']:.0f} s; elapsed {elapsed / 60:.1f} min, ETA {eta / 60:.1f} min",
                  flush=True)


def cell_table(grid, results, system, aggregators, gammas, fs, attacks=tuple(ATTACKS)):
    """ByzFL's cell: min over attacks of max over evaluation points of the
    seed-averaged accuracy. Rows with a missing run are left out."""
    rows = []
    for aggregator in aggregators:
        for gamma in gammas:
            for f in fs:
                per_attack = {}
                for attack in attacks:
                    best = best_of(results, grid, Run(system, aggregator, gamma, f, attack, 0))
                    if best is None:
                        break
                    per_attack[attack] = best
                else:
                    worst = min(per_attack, key=per_attack.get)
                    rows.append({"system": system, "aggregator": aggregator, "gamma": gamma, "f": f,
                                 "worst_accuracy": per_attack[worst], "worst_attack": worst,
                                 **{f"acc_{a}": per_attack.get(a) for a in ATTACKS}})
    return rows


def write_csv(path, rows):
    if not rows:
        return
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


SYSTEMS = ("cohort", "byzfl")


def best_of(results, grid, run):
    """The seed-averaged curve's maximum, or None while a seed is missing."""
    summaries = [load_summary(results, Run(run.system, run.aggregator, run.gamma, run.f, run.attack, s))
                 for s in grid.seeds]
    if any(s is None for s in summaries):
        return None
    curves = [s["test_accuracy"] for s in summaries]
    points = min(len(c) for c in curves)
    return max(sum(c[i] for c in curves) / len(curves) for i in range(points))


def worst_of(rows):
    return {(r["gamma"], r["f"]): r["worst_accuracy"] for r in rows if r["aggregator"] == "tm"}


def markdown_tables(grid, results, cohort_rows, peer_rows):
    lines = [f"Worst-case test accuracy over {{sign flip, optimal IPM, optimal ALIE}} ({grid.steps} steps, "
             f"seeds {list(grid.seeds)}), cohort simulate:", "",
             "| aggregator | gamma | " + " | ".join(f"f={f}" for f in grid.fs) + " |",
             "|---|---|" + "---|" * len(grid.fs)]
    by_key = {(r["aggregator"], r["gamma"], r["f"]): r for r in cohort_rows}
    for aggregator in grid.aggregators:
        for gamma in sorted(grid.gammas, reverse=True):
            cells = [by_key.get((aggregator, gamma, f)) for f in grid.fs]
            if all(c is None for c in cells):
                continue
            text = [f"{c['worst_accuracy']:.3f} ({c['worst_attack']})" if c else "-" for c in cells]
            lines.append(f"| {AGGREGATOR_LABELS[aggregator]} | {gamma:g} | " + " | ".join(text) + " |")
    lines += ["", "Side by side, clip>NNM>TM, per attack (best test accuracy over the evaluation points; "
              "- = not run or not finished):", "",
              "| gamma | f | attack | Cohort | ByzFL |", "|---|---|---|---|---|"]
    for gamma in sorted(grid.peer_gammas, reverse=True):
        for f in grid.peer_fs:
            for attack in grid.peer_attacks:
                both = [best_of(results, grid, Run(system, "tm", gamma, f, attack, 0)) for system in SYSTEMS]
                text = [f"{b:.3f}" if b is not None else "-" for b in both]
                lines.append(f"| {gamma:g} | {f} | {attack} | {text[0]} | {text[1]} |")
            worst = [peer_worst.get((gamma, f)) for peer_worst in (worst_of(cohort_rows), worst_of(peer_rows))]
            text = [f"{w:.3f}" if w is not None else "-" for w in worst]
            lines.append(f"| {gamma:g} | {f} | **worst** | {text[0]} | {text[1]} |")
    return "\n".join(lines) + "\n"


def plot_heatmaps(grid, rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    aggregators = [a for a in grid.aggregators if any(r["aggregator"] == a for r in rows)]
    if not aggregators:
        return
    by_key = {(r["aggregator"], r["gamma"], r["f"]): r["worst_accuracy"] for r in rows}
    gammas = sorted(grid.gammas, reverse=True)  # IID on top, as ByzFL draws them
    figure, axes = plt.subplots(1, len(aggregators), figsize=(2.5 + 1.3 * len(grid.fs) * len(aggregators), 3.4),
                                squeeze=False)
    for k, (ax, aggregator) in enumerate(zip(axes[0], aggregators)):
        values = [[by_key.get((aggregator, g, f), float("nan")) for f in grid.fs] for g in gammas]
        image = ax.imshow(values, vmin=0.0, vmax=1.0, cmap="RdYlGn")
        ax.set_xticks(range(len(grid.fs)), [str(f) for f in grid.fs])
        ax.set_yticks(range(len(gammas)), [f"{g:g}" for g in gammas] if k == 0 else [])
        ax.set_xlabel("f")
        if k == 0:
            ax.set_ylabel("gamma (1 = IID)")
        ax.set_title(AGGREGATOR_LABELS[aggregator])
        for i, row in enumerate(values):
            for j, value in enumerate(row):
                if value == value:
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9)
    figure.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="worst-case test accuracy")
    figure.suptitle(title)
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def report(grid, results):
    cohort_rows = cell_table(grid, results, "cohort", grid.aggregators, grid.gammas, grid.fs)
    peer_rows = cell_table(grid, results, "byzfl", ("tm",), grid.peer_gammas, grid.peer_fs, grid.peer_attacks)
    write_csv(os.path.join(results, "cells.csv"), cohort_rows + peer_rows)
    runs = []
    for run in runs_of(grid):
        summary = load_summary(results, run)
        if summary:
            runs.append({"system": run.system, "aggregator": run.aggregator, "gamma": run.gamma, "f": run.f,
                         "attack": run.attack, "seed": run.seed, "best_accuracy": max(summary["test_accuracy"]),
                         "final_accuracy": summary["test_accuracy"][-1],
                         "wall_seconds": round(summary["wall_seconds"], 1)})
    write_csv(os.path.join(results, "runs.csv"), runs)
    table = markdown_tables(grid, results, cohort_rows, peer_rows)
    with open(os.path.join(results, "table.md"), "w") as out:
        out.write(table)
    plot_heatmaps(grid, cohort_rows, os.path.join(results, "heatmaps.png"),
                  f"Cohort, Fashion-MNIST, worst case over 3 attacks, {grid.steps} steps")
    if peer_rows:
        peer_grid = Grid(grid.name, grid.steps, grid.eval_every, grid.eval_samples, ("tm",), grid.peer_gammas,
                         grid.peer_fs, grid.seeds, (), ())
        shared = [r for r in cohort_rows if r["aggregator"] == "tm" and r["gamma"] in grid.peer_gammas
                  and r["f"] in grid.peer_fs]
        plot_heatmaps(peer_grid, shared, os.path.join(results, "heatmap_shared_cohort.png"),
                      "Cohort (shared cells)")
        plot_heatmaps(peer_grid, peer_rows, os.path.join(results, "heatmap_shared_byzfl.png"),
                      "ByzFL 0.0.11 (shared cells)")
    total = sum(r["wall_seconds"] for r in runs)
    print(table)
    print(f"{len(runs)} runs, {total / 60:.1f} min of run time (summed); results in {results}")


def main():
    parser = argparse.ArgumentParser(description="Study 1: robustness under attack (ByzFL's benchmark)")
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--quick", action="store_true", help="a smoke test of every step (minutes)")
    choice.add_argument("--full", action="store_true", help="ByzFL's full grid (days on two cores)")
    parser.add_argument("--jobs", type=int, default=3, help="runs at a time (default 3)")
    parser.add_argument("--report-only", action="store_true", help="tabulate and plot what has finished")
    parser.add_argument("--cohort", default=os.path.join(ROOT, "build", "cohort"))
    args = parser.parse_args()
    grid = GRIDS["quick" if args.quick else "full" if args.full else "default"]
    results = os.path.join(HERE, "results", grid.name)
    os.makedirs(results, exist_ok=True)
    if not args.report_only:
        if not os.access(args.cohort, os.X_OK):
            sys.exit(f"no cohort binary at {args.cohort}; build it first (scripts/test.sh)")
        run_grid(grid, results, args.jobs, args.cohort)
    report(grid, results)


if __name__ == "__main__":
    main()
