"""Study 3, part 1: the same federated job on Cohort and on Flower, interleaved.

Cohort: `cohort demo` (a coordinator and N worker processes on loopback).
Flower: real processes on loopback: one SuperLink (which starts a SuperExec
and the ServerApp) and N SuperNodes (each with a SuperExec that starts the
ClientApp), driven by `flwr run` on flower_app/.

Every run is sampled with psutil (the whole process tree of what it
started, every 0.5 s) and writes one JSON line to <out>/runs.jsonl; the
per-round lines of each system are kept under <out>/<run name>/. Runs
already in runs.jsonl are skipped, so an interrupted study continues where
it stopped.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
APP = HERE / "flower_app"
TARGET_ACCURACY = 0.85


class TreeSampler:
    """Samples the RSS of every process under some root pids until stopped.

    Keeps each pid's largest RSS (with its name) and the largest total over
    all processes alive at one sample.
    """

    def __init__(self, interval=0.5):
        self.interval = interval
        self.roots = []
        self.max_rss = {}  # pid -> (name, bytes)
        self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add_root(self, pid):
        self.roots.append(pid)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _processes(self):
        found = []
        for pid in list(self.roots):
            try:
                root = psutil.Process(pid)
                found.append(root)
                found.extend(root.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
        return found

    def sample(self):
        total = 0
        for proc in self._processes():
            try:
                rss = proc.memory_info().rss
                name = proc.name()
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            total += rss
            if rss > self.max_rss.get(proc.pid, ("", 0))[1]:
                self.max_rss[proc.pid] = (name, rss)
        self.peak_total = max(self.peak_total, total)

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def summary(self):
        by_name = {}
        for name, rss in self.max_rss.values():
            entry = by_name.setdefault(name, {"processes": 0, "max_rss_mb": 0.0})
            entry["processes"] += 1
            entry["max_rss_mb"] = max(entry["max_rss_mb"], rss / 2**20)
        return {
            "peak_total_rss_mb": self.peak_total / 2**20,
            "sum_max_rss_mb": sum(rss for _, rss in self.max_rss.values()) / 2**20,
            "processes_seen": len(self.max_rss),
            "by_name": by_name,
            "processes": [[name, rss / 2**20] for name, rss in self.max_rss.values()],
        }


def stop_tree(pids, grace=5.0):
    """SIGTERM every process under `pids`, then SIGKILL what is left after `grace` seconds."""
    procs = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs.extend(root.children(recursive=True))
            procs.append(root)
        except psutil.NoSuchProcess:
            pass
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace)


def load_average():
    return [round(x, 2) for x in os.getloadavg()]


def time_to_target(rounds):
    """Seconds of training until the first round at or above the target accuracy, or None."""
    for r in rounds:
        if r["test_accuracy"] >= TARGET_ACCURACY:
            return r["elapsed_seconds"]
    return None


def finish(record, rounds, sampler, started):
    record["rounds"] = rounds
    record["end_to_end_seconds"] = time.perf_counter() - started
    record["train_seconds"] = rounds[-1]["elapsed_seconds"] if rounds else None
    record["seconds_to_85"] = time_to_target(rounds)
    record["final_accuracy"] = rounds[-1]["test_accuracy"] if rounds else None
    record["memory"] = sampler.summary()
    record["load_after"] = load_average()
    return record


TRAINED = re.compile(r"^\[worker\] round (\d+): trained \d+ steps on \d+ samples in ([0-9.]+) s")


def run_cohort(args, run_dir, proof):
    """`cohort demo` with --verbose: the workers' lines give each one's training time per round."""
    output_dir = run_dir / "cohort-output"
    command = [
        str(args.cohort), "demo", "--json", "--verbose",
        "--workers", str(args.clients), "--rounds", str(args.rounds), "--seed", str(args.seed),
        "--local-epochs", str(args.local_epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
        "--data-dir", args.data_dir, "--output-dir", str(output_dir),
    ]
    if not proof:
        command.append("--no-proof")
    record = {"system": "cohort", "proof": proof, "command": " ".join(command), "load_before": load_average()}
    sampler = TreeSampler()
    started = time.perf_counter()
    with open(run_dir / "cohort.stderr", "w") as err, open(run_dir / "cohort.stdout", "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=err)
        sampler.add_root(proc.pid)
        sampler.start()
        code = proc.wait(timeout=args.timeout)
    sampler.stop()
    if code != 0:
        raise RuntimeError(f"cohort demo exited with {code}; see {run_dir / 'cohort.stderr'}")
    slowest = {}
    for line in open(run_dir / "cohort.stderr"):
        m = TRAINED.match(line)
        if m:
            slowest[int(m.group(1))] = max(slowest.get(int(m.group(1)), 0.0), float(m.group(2)))
    rounds, elapsed = [], 0.0
    for line in open(output_dir / "metrics.jsonl"):
        m = json.loads(line)
        elapsed += m["seconds"]["total"]
        rounds.append({
            "round": m["round"],
            "test_accuracy": m["test_accuracy"],
            "round_seconds": m["seconds"]["total"],
            "elapsed_seconds": elapsed,
            "max_train_seconds": slowest.get(m["round"]),
            "audited": m["audited"],
        })
    return finish(record, rounds, sampler, started)


def flower_env(home):
    env = dict(os.environ, FLWR_HOME=str(home))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def write_flower_config(home, port):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        '[superlink]\ndefault = "loopback"\n\n'
        f'[superlink.loopback]\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
    )


def wait_for_rounds(path, rounds, procs, deadline):
    while time.perf_counter() < deadline:
        if path.exists() and sum(1 for _ in open(path)) >= rounds:
            return
        for name, proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} before the run finished")
        time.sleep(0.5)
    raise TimeoutError(f"Flower did not finish {rounds} rounds in time")


def run_flower(args, run_dir):
    """SuperLink + N SuperNodes + `flwr run`, all on loopback, state in memory."""
    home = run_dir / "flwr-home"
    write_flower_config(home, args.flower_port)
    env = flower_env(home)
    bin_dir = Path(sys.executable).parent
    metrics = run_dir / "flower-rounds.jsonl"
    record = {"system": "flower", "proof": False, "load_before": load_average()}
    sampler = TreeSampler()
    started = time.perf_counter()
    procs = []
    logs = []
    try:
        log = open(run_dir / "superlink.log", "w")
        logs.append(log)
        superlink = subprocess.Popen(
            [str(bin_dir / "flower-superlink"), "--insecure", "--disable-runtime-dependency-installation",
             "--port", str(args.flower_port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=run_dir)
        procs.append(("flower-superlink", superlink))
        for i in range(args.clients):
            log = open(run_dir / f"supernode-{i}.log", "w")
            logs.append(log)
            node = subprocess.Popen(
                [str(bin_dir / "flower-supernode"), "--insecure",
                 "--superlink", f"127.0.0.1:{args.flower_port}", "--port", str(args.flower_port + 1 + i),
                 "--node-config", f"partition-id={i} num-partitions={args.clients}"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=run_dir)
            procs.append((f"flower-supernode {i}", node))
        for _, proc in procs:
            sampler.add_root(proc.pid)
        sampler.start()
        overrides = (
            f"num-server-rounds={args.rounds} num-clients={args.clients} local-epochs={float(args.local_epochs)} "
            f"batch-size={args.batch_size} lr={float(args.lr)} seed={args.seed} client-threads=1 "
            f"data-dir='{args.data_dir}' metrics-file='{metrics}' shard-cache='{run_dir / 'shard-cache'}'"
        )
        submit = [str(bin_dir / "flwr"), "run", str(APP), "--run-config", overrides]
        record["command"] = " ".join(submit)
        deadline = time.perf_counter() + args.timeout
        while True:  # the SuperLink takes a few seconds to listen
            done = subprocess.run(submit, env=env, cwd=run_dir, capture_output=True, text=True)
            if done.returncode == 0:
                break
            if time.perf_counter() > deadline or superlink.poll() is not None:
                raise RuntimeError(f"flwr run failed: {done.stdout}\n{done.stderr}")
            time.sleep(1.0)
        try:
            wait_for_rounds(metrics, args.rounds, procs, deadline)
        except TimeoutError as stopped:  # keep the rounds it finished
            record["stopped"] = str(stopped)
    finally:
        sampler.stop()
        stop_tree([p.pid for _, p in procs])
        for log in logs:
            log.close()
        shutil.rmtree(run_dir / "shard-cache", ignore_errors=True)
    rounds = [json.loads(line) for line in open(metrics)]
    return finish(record, rounds, sampler, started)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cohort", type=Path, required=True, help="the cohort executable")
    p.add_argument("--pairs", type=int, default=2, help="Cohort/Flower run pairs, interleaved")
    p.add_argument("--proof-runs", type=int, default=1, help="extra Cohort runs with proof of learning on")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--local-epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--flower-port", type=int, default=9850)
    p.add_argument("--timeout", type=float, default=5400.0, help="seconds allowed per run")
    p.add_argument("--flower-only", action="store_true", help="only the Flower runs of the plan")
    return p.parse_args()


def main():
    args = parse_args()
    # Absolute paths: the Flower processes run in the run directory, and
    # FLWR_HOME, the metrics file and the shard cache must mean the same
    # place to every process.
    args.out = args.out.resolve()
    args.cohort = args.cohort.resolve()
    args.data_dir = str(Path(args.data_dir).resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    plan = []
    for i in range(args.pairs):
        plan += [("cohort", i, False), ("flower", i, False)]
    plan += [("cohort-proof", i, True) for i in range(args.proof_runs)]
    if args.flower_only:
        plan = [step for step in plan if step[0] == "flower"]
    results = args.out / "runs.jsonl"
    done = {json.loads(line)["run"] for line in open(results)} if results.exists() else set()
    plan = [step for step in plan if f"{step[0]}-{step[1] + 1}" not in done]
    if done:
        print(f"skipping the runs already in {results}: {', '.join(sorted(done))}", flush=True)
    first = time.perf_counter()
    for k, (name, index, proof) in enumerate(plan):
        run_dir = args.out / f"{name}-{index + 1}"
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(run_dir)  # what an interrupted attempt left
        run_dir.mkdir(parents=True)
        spent = time.perf_counter() - first
        eta = f", about {spent / k * (len(plan) - k) / 60:.0f} min left" if k else ""
        print(f"[{k + 1}/{len(plan)}] {name} run {index + 1} (load {load_average()}){eta}", flush=True)
        record = run_flower(args, run_dir) if name == "flower" else run_cohort(args, run_dir, proof)
        record["run"] = f"{name}-{index + 1}"
        with open(results, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"      {record['train_seconds']:.1f} s of rounds, final accuracy {record['final_accuracy']:.4f}, "
              f"85% after {record['seconds_to_85']} s, peak RSS {record['memory']['peak_total_rss_mb']:.0f} MB",
              flush=True)


if __name__ == "__main__":
    main()
