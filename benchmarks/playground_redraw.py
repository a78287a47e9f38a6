"""What a redraw of ``adamkit playground`` costs the server (issue 19: "any change redraws within
about 200 ms for 8 optimizers × 500 steps").

Times, in one process, alternating, ``--repeats`` times each, and prints the medians and minima
of the wall-clock time and of the process's CPU time (which a busy machine inflates less):

- ``paths``: :func:`adamkit.playground.paths.paths` of the settings (by default Rosenbrock's,
  whose default is all 8 optimizers), each optimizer stepped ``--steps`` times;
- ``redraw``: every request the page sends after a change, through the Flask app's routes (JSON
  in and out): ``/api/contours``, ``/api/paths``, ``/api/step`` of the optimizer whose state is
  the largest (AMSGrad's, else the last) at its last step, and the four requests of the
  side-by-side panels (bias correction on and off, L2 and decoupled weight decay);
- ``numpy step``: one ``adamkit.numpy.Adam`` step of a 2-element parameter, the playground's.

``--heavy`` turns on every knob that adds work to a step: AMSGrad, decoupled weight decay and
gradient noise. Run with ``PYTHONPATH`` pointing at the code to time::

    PYTHONPATH=src .venv/bin/python benchmarks/playground_redraw.py [--function rosenbrock]
        [--steps 500] [--repeats 15] [--heavy]

On a shared machine pin it to one core (``taskset -c 1``) and read the minima beside the medians.
"""

import argparse
import os
import statistics
import time

import numpy as np

import adamkit.numpy
from adamkit.playground.app import create_app
from adamkit.playground.paths import paths
from adamkit.playground.settings import read_settings

HEAVY = {"amsgrad": True, "decay": "decoupled", "weight_decay": 0.1, "noise": 1.0}
# What playground.js sends for its side-by-side panels (BIAS_PAIR_STEPS, DECAY_PAIR_DEFAULT).
BIAS_PAIR_STEPS = 40
DECAY_PAIR_DEFAULT = 0.1


def redraw_requests(body, settings):
    """``(route, body)`` of each request the page sends after a change of ``body``."""
    names = [run.name for run in settings.runs]
    focus = names.index("amsgrad") if "amsgrad" in names else len(names) - 1
    adam = [{"name": "adam"}]
    decay = body.get("weight_decay") or DECAY_PAIR_DEFAULT
    return [
        ("/api/contours", body),
        ("/api/paths", body),
        ("/api/step", {**body, "optimizer": focus, "t": settings.steps}),
        ("/api/paths", {**body, "optimizers": adam, "steps": BIAS_PAIR_STEPS, "bias_correction": True}),
        ("/api/paths", {**body, "optimizers": adam, "steps": BIAS_PAIR_STEPS, "bias_correction": False}),
        ("/api/paths", {**body, "optimizers": adam, "weight_decay": decay, "decay": "l2"}),
        ("/api/paths", {**body, "optimizers": adam, "weight_decay": decay, "decay": "decoupled"}),
    ]


def redraw(client, requests):
    for route, body in requests:
        response = client.post(route, json=body)
        assert response.status_code == 200, response.data
        response.get_data()  # the streamed answers are computed as they are read


def numpy_steps(count=1000):
    """The mean wall-clock and CPU time of one ``adamkit.numpy.Adam`` step of a 2-element
    parameter, over ``count``."""
    point, gradient = np.array([1.0, 2.0]), np.array([0.1, -0.2])
    optimizer = adamkit.numpy.Adam([point], lr=1e-3)
    optimizer.step([gradient])
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        optimizer.step([gradient])
    return (time.perf_counter() - wall) / count, (time.process_time() - cpu) / count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--function", default="rosenbrock")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--heavy", action="store_true", help="AMSGrad, decoupled weight decay, noise")
    args = parser.parse_args()
    body = {"function": args.function, "steps": args.steps, **(HEAVY if args.heavy else {})}
    settings = read_settings(body)
    client = create_app().test_client()
    requests = redraw_requests(body, settings)
    contenders = {
        "paths": lambda: paths(settings),
        "redraw": lambda: redraw(client, requests),
        "numpy step": numpy_steps,
    }
    for contender in contenders.values():  # warm up: imports, caches
        contender()
    times = {name: ([], []) for name in contenders}
    load = os.getloadavg()[0]
    for _ in range(args.repeats):
        for name, contender in contenders.items():
            wall, cpu = time.perf_counter(), time.process_time()
            result = contender()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if name == "numpy step":
                wall, cpu = result
            times[name][0].append(wall)
            times[name][1].append(cpu)
    print(f"settings: {body}; {len(settings.runs)} optimizers × {settings.steps} steps; "
          f"{args.repeats} repeats; load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")
    print()
    print("| what | wall median | wall minimum | CPU median | CPU minimum |")
    print("|---|---:|---:|---:|---:|")
    for name, (wall, cpu) in times.items():
        unit, scale = ("µs", 1e6) if name == "numpy step" else ("ms", 1e3)
        cells = [f"{value * scale:.1f} {unit}" for values in (wall, cpu) for value in (statistics.median(values), min(values))]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
