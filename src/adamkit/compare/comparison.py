"""One task of ``adamkit compare``: every chosen optimizer trained over the seeds, then the
results table, the figures and the JSON document.

:func:`run_task` takes the parsed options of the command (:mod:`adamkit.cli.compare`).
"""

import contextlib
import math

from adamkit.compare.choices import OPTIMIZERS
from adamkit.compare.records import Summary, diagnostic_steps
from adamkit.compare.tasks import BATCH_SIZE, TEST_FRACTION, digits_split

# The networks are too small to gain much from more threads, and with one the timings do not
# depend on how busy the other cores are.
TORCH_THREADS = 1


def plot_file(task):
    return f"{task}.png"


def json_file(task):
    return f"{task}.json"


def diagnostics_file(task):
    return f"{task}-diagnostics.png"


def run_task(args, task, lrs, console):
    """Train each of ``args.optimizers`` on ``task`` at its learning rate in ``lrs`` over the seeds
    of ``args``, print the table to ``console`` (unless ``args.quiet``) and write the files to
    ``args.out``."""
    from adamkit.compare.plot import plot_curves, plot_diagnostics
    from adamkit.compare.report import document, results_table, write_json

    epochs = args.epochs or task.epochs
    seeds = list(range(args.seed, args.seed + args.seeds))
    with _torch_threads(args.backend):
        summaries, samples = _train_all(args, task, lrs, epochs, seeds, console)
    seeds_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean of seeds {seeds[0]}–{seeds[-1]}"
    title = (f"sklearn digits, {task.name}: {task.model}\n{epochs} epochs, batch {BATCH_SIZE}, "
             f"lr schedule {task.lr_schedule}, {seeds_text}, {args.backend} backend")
    config = {
        "task": task.name,
        "model": task.model,
        "dataset": "sklearn.datasets.load_digits",
        "backend": args.backend,
        "epochs": epochs,
        "seeds": seeds,
        "batch_size": BATCH_SIZE,
        "lr_schedule": task.lr_schedule,
        "test_fraction": TEST_FRACTION,
        "train_samples": samples[0],
        "test_samples": samples[1],
        "torch_threads": TORCH_THREADS if args.backend == "torch" else None,
    }
    plot_path, json_path = args.out / plot_file(task.name), args.out / json_file(task.name)
    plot_curves(summaries, plot_path, title)
    written = [plot_path, json_path]
    if args.diagnostics:
        diagnostics_path = args.out / diagnostics_file(task.name)
        plot_diagnostics(summaries, diagnostics_path, f"adamkit.diagnostics over training, first seed; {title}")
        written.insert(1, diagnostics_path)
    write_json(json_path, document(config, summaries, _versions(args.backend)))
    if not args.quiet:
        console.print(results_table(summaries, title))
        console.print(f"wrote {', '.join(map(str, written))}")


def _train_all(args, task, lrs, epochs, seeds, console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if args.backend == "numpy":
        from adamkit.compare import numpy_training as training
    else:
        from adamkit.compare import torch_training as training
    progress = Progress(
        TextColumn(f"{task.name:<6} {{task.description:<12}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("train loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=console,
        disable=args.quiet,
    )
    splits = {seed: digits_split(seed) for seed in seeds}
    first = splits[seeds[0]]
    steps = epochs * math.ceil(len(first.train_labels) / BATCH_SIZE)
    read_at = diagnostic_steps(steps) if args.diagnostics else []
    summaries = []
    with progress:
        bars = {name: progress.add_task(OPTIMIZERS[name].label, total=epochs * len(seeds),
                                        start=False, loss="-")
                for name in args.optimizers}
        for name in args.optimizers:
            progress.start_task(bars[name])

            def advance(run, bar=bars[name]):
                progress.update(bar, advance=1, loss=f"{run.train_loss[-1]:.4g}")

            runs = []
            for seed in seeds:
                used, run = training.train(
                    task, name, lrs[name], splits[seed], seed=seed, epochs=epochs,
                    diagnostic_steps=read_at if seed == seeds[0] else (), on_epoch=advance,
                )
                runs.append(run)
            choice = OPTIMIZERS[name]
            summaries.append(Summary(name, choice.label, choice.class_name, used, runs))
    return summaries, (len(first.train_labels), len(first.test_labels))


@contextlib.contextmanager
def _torch_threads(backend):
    """With the torch backend, run the block on TORCH_THREADS threads, then restore the setting."""
    if backend != "torch":
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(TORCH_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _versions(backend):
    import adamkit

    versions = {"adamkit": adamkit.__version__}
    if backend == "torch":
        import torch

        versions["torch"] = torch.__version__
    return versions
