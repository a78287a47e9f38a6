"""Run fuzzing sequences in subprocesses, with a timeout, and name the sequence behind a crash.

A subprocess (``python -m tests.fuzz.harness --worker ...``) runs a batch of sequences one
after another, printing ``BEGIN <seed>`` before each and ``RESULT <json>`` after it, so that
importing torch (seconds) is paid once per batch. When the subprocess dies of a signal, or a
sequence outlasts the timeout, the sequence it had begun is the suspect; the rest of the batch
runs in a new subprocess. A suspect is then re-run alone: if it does not fail alone, the
sequences before it in its batch are bisected for the first one after which it fails (heap
corruption left by an earlier sequence), and the outcome names both.

From the command line (it prints each failing sequence, its seed and how to re-run it)::

    python -m tests.fuzz.harness --front torch --count 2000 --seed 0
    python -m tests.fuzz.harness --front numpy --seeds 17,42 --show

The seeds decide everything; ``--count`` and ``--seed`` only choose how many are run.
"""

import argparse
import concurrent.futures
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 300  # importing torch: seconds, minutes on a loaded machine or under a sanitizer
SEQUENCE_SECONDS = 120  # one sequence steps a few small tensors: milliseconds, but the machine may be loaded


def _worker(front, seeds, mirror, sequences_file):
    """Run the sequences of ``seeds``, or those listed in the JSON file ``sequences_file``
    (then ``BEGIN`` names each by its position in the list)."""
    from tests.fuzz.execute import run_sequence
    from tests.fuzz.sequences import draw_sequence

    if front == "torch":
        import torch

        torch.set_num_threads(1)
    if sequences_file is not None:
        with open(sequences_file) as file:
            jobs = list(enumerate(json.load(file)))
    else:
        jobs = [(seed, draw_sequence(seed, front)) for seed in seeds]
    for name, sequence in jobs:
        print(f"BEGIN {name}", flush=True)
        outcome = run_sequence(sequence, mirror=mirror)
        print("RESULT " + json.dumps(outcome), flush=True)


def _command(front, seeds, mirror, sequences_file):
    command = [sys.executable, "-m", "tests.fuzz.harness", "--worker", "--front", front]
    if sequences_file is not None:
        command += ["--sequences", sequences_file]
    else:
        command += ["--seeds", ",".join(map(str, seeds))]
    return command + ([] if mirror else ["--no-mirror"])


def _environment():
    """The worker runs this process's adamkit, with ``tests`` importable from the repository."""
    import adamkit

    source = str(Path(adamkit.__file__).resolve().parents[1])
    paths = [source, str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _lines(pipe, deadline):
    """The lines ``pipe`` gives until it closes, then stops; ``None`` once ``deadline()`` (a
    monotonic time, read at each wait) passes without a whole line."""
    selector = selectors.DefaultSelector()
    selector.register(pipe, selectors.EVENT_READ)
    pending = b""
    while True:
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode(errors="replace")
        if not selector.select(timeout=max(deadline() - time.monotonic(), 0)):
            yield None
            return
        chunk = os.read(pipe.fileno(), 65536)
        if not chunk:
            return
        pending += chunk


def _run_once(front, seeds, mirror, timeout, sequences=None):
    """Run ``seeds`` (or the given ``sequences``) in one subprocess until it ends or fails:
    ``(outcomes, failure)``, where ``failure`` is ``None`` or the outcome (``crash`` or
    ``timeout``) of the sequence it had begun (whose ``seed`` is then its position in
    ``sequences``, if given)."""
    outcomes = []
    with tempfile.TemporaryFile() as stderr, tempfile.NamedTemporaryFile("w", suffix=".json") as listed:
        if sequences is not None:
            json.dump(sequences, listed)
            listed.flush()
        command = _command(front, seeds, mirror, listed.name if sequences is not None else None)
        process = subprocess.Popen(command, cwd=ROOT, env=_environment(),
                                   stdout=subprocess.PIPE, stderr=stderr, bufsize=0)
        running, deadline = None, time.monotonic() + STARTUP_SECONDS
        failure = None
        for line in _lines(process.stdout, lambda: deadline):
            if line is None:
                process.kill()
                failure = {"status": "timeout", "seed": running, "detail": f"no result after {timeout} s"}
                break
            if line.startswith("BEGIN "):
                running, deadline = int(line.split()[1]), time.monotonic() + timeout
            elif line.startswith("RESULT "):
                outcomes.append(json.loads(line[len("RESULT "):]))
                running = None
        code = process.wait()
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")
        if failure is None and (code != 0 or running is not None):
            signal = f"signal {-code}" if code < 0 else f"exit code {code}"
            failure = {"status": "crash", "seed": running, "detail": signal}
        if failure is not None:
            failure.update(front=front, at=None, stderr="\n".join(_excerpt(errors)))
    return outcomes, failure


def _fails(front, seeds, mirror, timeout):
    """Whether running ``seeds`` in one subprocess fails at its last seed."""
    _, failure = _run_once(front, seeds, mirror, timeout)
    return failure is not None and failure["seed"] == seeds[-1]


def _attribute(front, ran, failure, mirror, timeout, bisect):
    """Re-run a crashed or hung sequence alone; if it passes alone and ``bisect``, bisect the
    sequences that ran before it (``ran`` up to it) for the latest one after which it still fails."""
    seed = failure["seed"]
    if seed is None:
        failure["detail"] += " before any sequence began"
        return failure
    if _fails(front, [seed], mirror, timeout):
        failure["detail"] += " (alone too)"
        return failure
    if not bisect:
        failure["detail"] += " (not alone: after the sequences before it in its batch)"
        return failure
    before = ran[: ran.index(seed)]
    if not before or not _fails(front, before + [seed], mirror, timeout):
        failure["detail"] += " (not reproduced: neither alone nor after its batch)"
        return failure
    low, high = 0, len(before) - 1  # before[low:] + [seed] fails; find the largest such low
    while low < high:
        middle = (low + high + 1) // 2
        if _fails(front, before[middle:] + [seed], mirror, timeout):
            low = middle
        else:
            high = middle - 1
    failure["detail"] += f" (only after sequence {before[low]} ran in the same process)"
    failure["after"] = before[low]
    return failure


def run_batch(front, seeds, mirror=True, timeout=SEQUENCE_SECONDS, bisect=True):
    """The outcome of every seed in ``seeds``, run in as few subprocesses as crashes allow."""
    outcomes, remaining = [], list(seeds)
    while remaining:
        done, failure = _run_once(front, remaining, mirror, timeout)
        outcomes += done
        if failure is None:
            break
        outcomes.append(_attribute(front, remaining, failure, mirror, timeout, bisect))
        if failure["seed"] is None:
            break
        remaining = remaining[remaining.index(failure["seed"]) + 1 :]
    return outcomes


def run(front, seeds, mirror=True, timeout=SEQUENCE_SECONDS, batch=200, jobs=2, bisect=True):
    """Run ``seeds`` in batches of ``batch`` on ``jobs`` subprocesses at a time; every outcome."""
    batches = [seeds[i : i + batch] for i in range(0, len(seeds), batch)]
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        results = pool.map(lambda part: run_batch(front, part, mirror, timeout, bisect), batches)
        return [outcome for outcomes in results for outcome in outcomes]


def report(outcome):
    """A failing outcome with its sequence and the command that re-runs it."""
    from tests.fuzz.sequences import draw_sequence

    sequence = draw_sequence(outcome["seed"], outcome["front"]) if outcome["seed"] is not None else None
    lines = [f"{outcome['status'].upper()} {outcome['front']} seed {outcome['seed']}: {outcome['detail']}"]
    if outcome.get("at") is not None:
        lines.append(f"  at operation {outcome['at']}: {json.dumps(sequence['ops'][outcome['at']])}")
    if sequence is not None:
        lines.append("  config: " + json.dumps(sequence["config"]))
        lines += [f"  {i:3d} {json.dumps(op)}" for i, op in enumerate(sequence["ops"])]
        lines.append(f"  re-run: python -m tests.fuzz.harness --front {outcome['front']} --seeds {outcome['seed']}")
    if outcome.get("stderr"):
        lines += ["  stderr:"] + ["    " + line for line in outcome["stderr"].splitlines()]
    return "\n".join(lines)


_REPORT_STARTS = ("ERROR: AddressSanitizer", "runtime error:", "Fatal Python error")


def _excerpt(errors):
    """The lines of a crash's stderr worth reading: a sanitizer's report (its first frames and
    summary) or Python's fatal error, else the last lines."""
    lines = errors.strip().splitlines()
    start = next((i for i, line in enumerate(lines) if any(mark in line for mark in _REPORT_STARTS)), None)
    if start is None:
        return lines[-25:]
    summary = [line for line in lines[start + 12 :] if line.startswith("SUMMARY:")]
    return lines[start : start + 12] + summary


def minimize(outcome, mirror=True, timeout=SEQUENCE_SECONDS):
    """The failing sequence of ``outcome`` with as many operations removed as keep the failure
    (the same status), and that failure's outcome: chunks of operations are dropped, halving
    the chunk size whenever no chunk can go, and the first candidate that fails the same way is
    kept. The candidates of a round run in one subprocess, and the result is checked alone;
    heap corruption crashes reliably only under ``scripts/sanitize``."""
    from tests.fuzz.sequences import draw_sequence

    front, status = outcome["front"], outcome["status"]
    sequence = draw_sequence(outcome["seed"], front)
    ops = sequence["ops"]
    chunk = len(ops) // 2
    while chunk >= 1:
        candidates = [{**sequence, "ops": ops[:i] + ops[i + chunk :]} for i in range(0, len(ops), chunk)]
        found = _first_failing(front, candidates, status, mirror, timeout)
        if found is None:
            chunk //= 2
            continue
        index, _ = found
        ops = candidates[index]["ops"]
        chunk = min(chunk, len(ops) // 2)
    alone = _first_failing(front, [{**sequence, "ops": ops}], status, mirror, timeout)
    if alone is None:
        return sequence, outcome
    return {**sequence, "ops": ops}, alone[1]


def _first_failing(front, candidates, status, mirror, timeout):
    """``(index, outcome)`` of the first of ``candidates`` that fails with ``status``, or
    ``None``. They run in a subprocess: a sequence that writes out of bounds may corrupt the
    process it runs in long before anything crashes."""
    outcomes, failure = _run_once(front, None, mirror, timeout, sequences=candidates)
    for index, candidate_outcome in enumerate(outcomes):
        if candidate_outcome["status"] == status:
            return index, candidate_outcome
    if failure is not None and failure["status"] == status and failure["seed"] is not None:
        return failure["seed"], failure
    return None


def minimized_report(outcome, mirror=True, timeout=SEQUENCE_SECONDS):
    """The shortest failing form :func:`minimize` finds of ``outcome``'s sequence, as text."""
    sequence, failing = minimize(outcome, mirror, timeout)
    lines = [f"  minimized ({len(sequence['ops'])} operations): {failing['status']} {failing['detail']}"]
    if failing.get("at") is not None:
        lines[0] += f" at operation {failing['at']}"
    lines += [f"    {i:3d} {json.dumps(op)}" for i, op in enumerate(sequence["ops"])]
    if failing.get("stderr"):
        lines += ["    stderr: " + line for line in failing["stderr"].splitlines()]
    return "\n".join(lines)


def _parse_seeds(text):
    return [int(seed) for seed in text.split(",") if seed]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.harness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--front", choices=("torch", "numpy", "both"), default="both")
    parser.add_argument("--count", type=int, default=200, help="how many sequences per front end")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--seeds", type=_parse_seeds, help="these seeds instead of --count from --seed")
    parser.add_argument("--batch", type=int, default=200, help="sequences per subprocess")
    parser.add_argument("--jobs", type=int, default=2, help="subprocesses at a time")
    parser.add_argument("--timeout", type=float, default=SEQUENCE_SECONDS, help="seconds per sequence")
    parser.add_argument("--no-mirror", dest="mirror", action="store_false", help="leave torch.optim out")
    parser.add_argument("--show", action="store_true", help="print every sequence run, not only failures")
    parser.add_argument("--minimize", action="store_true", help="shorten each failing sequence and print it")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sequences", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else list(range(args.seed, args.seed + args.count))
    if args.worker:
        _worker(args.front, seeds, args.mirror, args.sequences)
        return 0
    fronts = ("torch", "numpy") if args.front == "both" else (args.front,)
    failed = 0
    for front in fronts:
        started = time.monotonic()
        outcomes = run(front, seeds, args.mirror, args.timeout, args.batch, args.jobs)
        counts = {}
        for outcome in outcomes:
            counts[outcome["status"]] = counts.get(outcome["status"], 0) + 1
            if args.show or outcome["status"] not in ("ok", "raised"):
                print(report(outcome), flush=True)
            if args.minimize and outcome["status"] not in ("ok", "raised") and outcome["seed"] is not None:
                print(minimized_report(outcome, args.mirror, args.timeout), flush=True)
        failed += sum(count for status, count in counts.items() if status not in ("ok", "raised"))
        print(f"{front}: {len(outcomes)} sequences in {time.monotonic() - started:.0f} s: {json.dumps(counts)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
