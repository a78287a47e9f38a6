"""What the benchmark ran on: CPU, cores, memory, library versions, thread counts, and the
environment variables that change how fast (never what) the optimizers compute."""

import importlib
import os
import platform

import numpy as np
import torch

import adamkit


def _cpuinfo_field(name, path="/proc/cpuinfo"):
    try:
        with open(path) as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        return None
    return None


def _memory_total_bytes(path="/proc/meminfo"):
    try:
        with open(path) as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def adamkit_kernels():
    """Whether adamkit's C kernels are built here, and the instruction sets they can use."""
    try:
        native = importlib.import_module("adamkit.kernels.native")
    except ImportError as error:
        return {"native": False, "isas": [], "reason": str(error)}
    available = getattr(native, "available", None)
    isas = getattr(native, "available_isas", None)
    return {
        "native": bool(available()) if callable(available) else False,
        "isas": list(isas()) if callable(isas) else [],
    }


# OpenMP's thread count and waiting (a spinning worker takes a core from the other processes on
# a shared machine), and torch's huge pages for large tensors (scattered rows, as in a lazy
# sparse step, cost fewer address translations).
TIMING_ENVIRONMENT = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "THP_MEM_ALLOC_ENABLE")


def describe():
    """A JSON-ready description of this machine and the software being timed."""
    flags = set((_cpuinfo_field("flags") or "").split())
    return {
        "cpu_model": _cpuinfo_field("model name") or platform.processor() or platform.machine(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "simd": [flag for flag in ("avx2", "fma", "avx512f", "avx512bw", "avx512_bf16") if flag in flags],
        "memory_bytes": _memory_total_bytes(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "adamkit": adamkit.__version__,
        "adamkit_kernels": adamkit_kernels(),
        "torch_threads": torch.get_num_threads(),
        "environment": {name: os.environ[name] for name in TIMING_ENVIRONMENT if name in os.environ},
    }
