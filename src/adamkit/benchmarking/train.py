"""``adamkit bench --train``: whole training steps of a GPT on the CPU, per optimizer configuration.

Each configuration of :mod:`adamkit.benchmarking.train_configs` trains the GPT of
:mod:`adamkit.benchmarking.gpt` on the corpus of :mod:`adamkit.benchmarking.train_corpus`, with
seeds 0 to ``seeds`` − 1. How each figure is measured:

- **Peak memory.** Every configuration and seed trains in a fresh process of its own
  (:mod:`adamkit.benchmarking.train_worker`), since a process's peak resident set never goes
  down: its ``VmHWM`` after the last step is that configuration's peak, imports included (the
  process's resident set before the model is built is reported beside it). The largest over
  the seeds is reported.
- **Bytes per parameter**, counted from the tensors: the parameters' storages; the most bytes
  of ``.grad`` tensors alive at once during the first step, seen from a hook at the moment
  each gradient is complete and after backward; and every tensor of ``optimizer.state``
  (moments or their 8-bit codes and scales, Kahan compensation, ``step``), after the last step.
  Persistent state is parameters plus optimizer state.
- **Time per whole step** (forward, backward, ``step()``, ``zero_grad()``): for each seed, the
  configurations' processes live side by side and are stepped in rounds, one step each per
  round, in an order rotated every round, and only one process runs at a time; so drift in the
  machine's load reaches every configuration alike. Each step is timed inside its process. The
  first ``warmup`` steps of each seed are not counted; the median of the rest over all seeds is
  reported, and its ratio to ``torch-fp32-fused``'s.
- **Final loss**: after the last step, the mean cross-entropy on fixed evaluation windows of
  the corpus (the same for every configuration and seed), computed in float32 from the trained
  weights; the mean over the seeds is reported, and its relative difference from
  ``torch-fp32-fused``'s.

A configuration whose optimizer cannot be built or stepped (say, an option not in this
adamkit yet) is reported with its error and the run goes on.
"""

import json
import os
import subprocess
import sys
from statistics import mean

import torch

from adamkit.benchmarking import train_configs
from adamkit.benchmarking.runner import finish_record, start_record
from adamkit.benchmarking.schedule import rotation
from adamkit.benchmarking.stats import timing_entry

BASELINE = "torch-fp32-fused"
# The targets, for every configuration against the baseline's figures.
TARGETS = {
    "persistent_bytes_per_param": 6.1,  # at most
    "rss_vs_baseline": 0.5,  # at most
    "time_vs_baseline": 1.0,  # at most
    "loss_vs_baseline": 0.02,  # |relative difference| at most
}


class Worker:
    """A training process for one configuration and seed, spoken to one JSON line at a time."""

    def __init__(self, job):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adamkit.benchmarking.train_worker", json.dumps(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def read(self):
        line = self.process.stdout.readline()
        if not line:
            return {"error": f"the worker exited with status {self.process.wait()} without answering"}
        return json.loads(line)

    def ask(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self):
        self.process.stdin.close()
        self.process.stdout.close()
        self.process.wait()


def run_train_benchmark(settings, *, progress=None):
    """Train every configuration of ``settings`` for every seed; return the JSON-ready record."""
    report = progress or (lambda message: None)
    record = start_record(
        settings,
        {
            "configs": list(settings.configs),
            "steps": settings.steps,
            "warmup": settings.warmup,
            "seeds": settings.seeds,
            "threads": {"requested": settings.threads, "torch": settings.threads or torch.get_num_threads()},
            "quick": settings.quick,
            "hyperparameters": train_configs.HYPERPARAMETERS,
            "baseline": BASELINE,
        },
    )
    notes = []
    configs = []
    for name in settings.configs:
        missing = train_configs.BY_NAME[name].missing()
        if missing is None:
            configs.append(name)
        else:
            notes.append(f"{name} not run: {missing}")
    runs = {name: [] for name in configs}
    errors = {}
    for seed in range(settings.seeds):
        report(f"seed {seed}: training {', '.join(name for name in configs if name not in errors)}")
        for name, run in _train_seed([name for name in configs if name not in errors], seed, settings).items():
            if "error" in run:
                errors[name] = run["error"]
            else:
                runs[name].append(run)
    record["results"] = [_summarize(name, runs[name], errors.get(name), settings) for name in configs]
    _compare_with_baseline(record["results"])
    record["notes"] = notes + [f"{name} failed: {error}" for name, error in errors.items()]
    return finish_record(record)


def _train_seed(names, seed, settings):
    """Train ``names`` side by side for one seed, stepping them in rotated rounds; return each
    one's run (or ``{"error": ...}``)."""
    workers = {}
    runs = {}
    for name in names:
        job = {"config": name, "seed": seed, "quick": settings.quick, "threads": settings.threads}
        workers[name] = Worker(job)
    try:
        for name, worker in workers.items():
            answer = worker.read()
            runs[name] = answer if "error" in answer else {"seed": seed, "times_s": [], "losses": []}
        for round_index in range(settings.steps):
            for name in rotation([name for name in names if "error" not in runs[name]], round_index):
                answer = workers[name].ask("step")
                if "error" in answer:
                    runs[name] = answer
                    continue
                runs[name]["times_s"].append(answer["time_s"])
                runs[name]["losses"].append(answer["loss"])
        for name in names:
            if "error" not in runs[name]:
                answer = workers[name].ask("finish")
                runs[name] = answer if "error" in answer else {**runs[name], **answer}
    finally:
        for worker in workers.values():
            worker.close()
    return runs


def _summarize(name, runs, error, settings):
    config = train_configs.BY_NAME[name]
    row = {"config": name, "description": config.description, "model_dtype": config.model_dtype, "error": error}
    if error is not None:
        return row
    first = runs[0]
    count = first["parameters"]
    timed = [time for run in runs for time in run["times_s"][settings.warmup :]]
    peak_rss = max(run["peak_rss_bytes"] for run in runs)
    peak_gradients = max(run["peak_live_gradient_bytes"] for run in runs)
    return {
        **row,
        "parameters": count,
        "parameter_tensors": first["parameter_tensors"],
        "bytes_per_param": {
            "parameters": first["parameter_bytes"] / count,
            "gradients_peak_live": peak_gradients / count,
            "optimizer_state": first["state_bytes"] / count,
            "persistent": (first["parameter_bytes"] + first["state_bytes"]) / count,
            "total": (first["parameter_bytes"] + peak_gradients + first["state_bytes"]) / count,
        },
        "state_bytes_per_param_by_key": {key: size / count for key, size in first["state_bytes_by_key"].items()},
        "peak_live_gradient_fraction": peak_gradients / first["full_gradient_bytes"],
        "peak_rss_bytes": peak_rss,
        "baseline_rss_bytes": max(run["baseline_rss_bytes"] for run in runs),
        "time": timing_entry(timed),
        "final_loss": mean(run["final_loss"] for run in runs),
        "runs": runs,
        "load_average_after": list(os.getloadavg()),
    }


def _compare_with_baseline(rows):
    """Add each row's ratios to the baseline's figures and whether it meets ``TARGETS``."""
    baseline = next((row for row in rows if row["config"] == BASELINE and row["error"] is None), None)
    for row in rows:
        if row["error"] is not None:
            continue
        comparison = {"persistent_bytes_per_param": row["bytes_per_param"]["persistent"]}
        if baseline is not None:
            comparison["rss_vs_baseline"] = row["peak_rss_bytes"] / baseline["peak_rss_bytes"]
            comparison["time_vs_baseline"] = row["time"]["median_ms"] / baseline["time"]["median_ms"]
            comparison["loss_vs_baseline"] = row["final_loss"] / baseline["final_loss"] - 1
        row["vs_baseline"] = comparison
        row["targets_met"] = {name: abs(value) <= TARGETS[name] for name, value in comparison.items()}
        row["targets_met"]["no_full_gradient_set"] = row["peak_live_gradient_fraction"] < 1
