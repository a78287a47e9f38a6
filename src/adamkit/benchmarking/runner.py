"""Run the benchmark: for each workload and rule, time every contender round-robin next to the
bandwidth probes, and summarize into a JSON-ready record.

Only one rule's contenders are alive at a time; the gradients and the initial parameters of a
workload are made once and shared by its rules.
"""

import gc
import importlib
import os
import resource
import sys
import time

import torch

from adamkit.benchmarking import bandwidth, contenders, machine, rule_cases, traffic
from adamkit.benchmarking.schedule import time_round_robin
from adamkit.benchmarking.stats import summarize, timing_entry

SEED = 0
ITEMSIZE = 4  # every workload is fp32


def apply_threads(threads):
    """Set the thread count of torch and, when its kernels offer one, of adamkit.

    Returns a description of what was set, for the record.
    """
    if threads is None:
        return {"requested": None, "torch": torch.get_num_threads(), "adamkit": "default"}
    torch.set_num_threads(threads)
    kernels = importlib.import_module("adamkit.kernels")
    setter = getattr(kernels, "set_num_threads", None)
    if callable(setter):
        setter(threads)
        adamkit_threads = threads
    else:
        adamkit_threads = "adamkit.kernels has no set_num_threads; not set"
    return {"requested": threads, "torch": torch.get_num_threads(), "adamkit": adamkit_threads}


def run_benchmark(settings, *, progress=None, on_row=None):
    """Time every workload × rule of ``settings``; return the record that reports render.

    ``progress(message)`` is told what is being timed; ``on_row(record)`` is called with the
    record so far after each row, so that a run cut short still leaves its rows behind (the
    record's ``finished`` is ``None`` until the end).
    """
    report = progress or (lambda message: None)
    threads = apply_threads(settings.threads)
    record = start_record(
        settings,
        {
            "workloads": list(settings.workloads),
            "rules": list(settings.rules),
            "steps": settings.steps,
            "warmup": settings.warmup,
            "quick": settings.quick,
            "scale": settings.scale,
            "threads": threads,
            "seed": SEED,
            "bandwidth_probe_elements": settings.triad_elements,
        },
    )
    record["bytes_per_param"] = {case.name: traffic.bytes_per_param(case.name, ITEMSIZE) for case in settings.rule_list()}
    probes = bandwidth.probes(settings.triad_elements)
    # Building every kind of contender once imports what they import lazily (torch.optim
    # pulls in torch._dynamo on first use). Freezing that large heap keeps the collections
    # that free each rule's contenders quick; it is unfrozen at the end.
    contenders.build(rule_cases.CASES[0], [torch.zeros(1)], [torch.zeros(1)])
    gc.freeze()
    try:
        for workload in settings.workload_list():
            for row in _time_workload(workload, settings, probes, report):
                record["results"].append(row)
                if on_row is not None:
                    on_row(record)
    finally:
        gc.unfreeze()
    return finish_record(record)


def start_record(settings, described_settings):
    """A run's record before any result: its command, ``described_settings``, the machine and
    its load; ``finished`` stays ``None`` until :func:`finish_record`."""
    return {
        "command": settings.command(),
        "argv": list(sys.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": described_settings,
        "machine": machine.describe(),
        # Other processes compete for the cores; the load average shows how much.
        "load_average_start": list(os.getloadavg()),
        "results": [],
        "finished": None,
        "load_average_end": None,
        "peak_rss_bytes": None,
    }


def finish_record(record):
    """Stamp ``record`` with the end of the run, the load then and the peak memory; return it."""
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    record["load_average_end"] = list(os.getloadavg())
    # Linux reports ru_maxrss in KiB.
    record["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return record


def _time_workload(workload, settings, probes, report):
    """Yield a row for every rule on ``workload``; only one rule's contenders exist at a time."""
    init, grads = _tensors(workload)
    for case in settings.rule_list():
        report(f"timing workload {workload.name} ({workload.description}), {case.name}")
        entrants, notes = contenders.build(case, init, grads)
        timings = time_round_robin(entrants + probes, warmup=settings.warmup, steps=settings.steps)
        del entrants
        gc.collect()
        yield _summarize_row(workload, case, probes, timings, notes)


def _tensors(workload):
    generator = torch.Generator().manual_seed(SEED)
    init = [torch.randn(shape, generator=generator) for shape in workload.shapes]
    grads = [torch.randn(shape, generator=generator) for shape in workload.shapes]
    return init, grads


def _summarize_row(workload, case, probes, timings, notes):
    bandwidths = {}
    for probe in probes:
        samples = timings.samples[probe.label]
        median = summarize(samples).median
        bandwidths[probe.label] = {
            "bytes_moved": probe.bytes_moved,
            "times_s": samples,
            "median_s": median,
            "gb_per_s": probe.bytes_moved / median / 1e9,
        }
    bound_source = max(bandwidths, key=lambda label: bandwidths[label]["gb_per_s"])
    bound_gb_per_s = bandwidths[bound_source]["gb_per_s"]
    bytes_per_param = traffic.bytes_per_param(case.name, ITEMSIZE, workload.shapes)
    bound_s = bytes_per_param * workload.n_params / (bound_gb_per_s * 1e9)

    entries = {}
    for label, samples in timings.samples.items():
        if label in bandwidths:
            continue
        median = summarize(samples).median
        entries[label] = {
            **timing_entry(samples),
            "pct_of_bound": 100 * bound_s / median if label in contenders.FULL_PRECISION else None,
        }
    torch_paths = [label for label in contenders.TORCH_PATHS if label in entries]
    torch_best = min(torch_paths, key=lambda label: entries[label]["median_ms"], default=None)
    return {
        "workload": workload.name,
        "workload_description": workload.description,
        "rule": case.name,
        "optimizer": case.optimizer,
        "hyperparameters": case.hyperparameters,
        "n_params": workload.n_params,
        "n_tensors": workload.n_tensors,
        "bytes_per_param": bytes_per_param,
        "bandwidth": bandwidths,
        "bound_source": bound_source,
        "bound_gb_per_s": bound_gb_per_s,
        "bound_ms": bound_s * 1e3,
        "contenders": entries,
        "torch_best": torch_best,
        "speedup_vs_torch_best": _ratio(entries, torch_best, contenders.ADAMKIT_TORCH),
        "adamkit_pct_of_bound": entries.get(contenders.ADAMKIT_TORCH, {}).get("pct_of_bound"),
        "numpy_speedup_vs_plain": _ratio(entries, contenders.PLAIN_NUMPY, contenders.ADAMKIT_NUMPY),
        # adamkit's 8-bit step as a fraction of torch's fused fp32 step (below 1: faster).
        "int8_time_vs_torch_fused": _ratio(entries, contenders.ADAMKIT_INT8, "torch fused"),
        # Each compact-state step as a fraction of the fastest torch.optim fp32 step.
        "compact_time_vs_torch_best": {
            label: _ratio(entries, label, torch_best) for label in contenders.COMPACT_STATE if label in entries
        },
        "int8_speedup_vs": {
            label: _ratio(entries, label, contenders.ADAMKIT_INT8) for label in contenders.EIGHT_BIT if label in entries
        },
        "notes": notes + [f"{label} skipped: {reason}" for label, reason in timings.skipped.items()],
        "load_average_after": list(os.getloadavg()),
    }


def _ratio(entries, baseline, contender):
    """``baseline``'s median time over ``contender``'s: above 1 means ``contender`` is faster."""
    if baseline not in entries or contender not in entries:
        return None
    return entries[baseline]["median_ms"] / entries[contender]["median_ms"]
