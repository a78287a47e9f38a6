"""``adamkit bench --reference``: the run whose tables head ``BENCHMARKS.md``.

Four parts, one after the other, each the record its own run gives:

- ``dense``: every rule on workload A, adamkit (float32, bfloat16 and 8-bit state) against
  torch.optim's paths (:func:`adamkit.benchmarking.runner.run_benchmark`);
- ``sparse``: lazy sparse Adam on an embedding table (:mod:`adamkit.benchmarking.sparse`);
- ``distributed``: the step under DDP, ZeRO and FSDP2 on two processes
  (:mod:`adamkit.benchmarking.distributed`);
- ``quality``: the final train loss of every optimizer that takes bfloat16 and 8-bit state, with
  them against float32 state (:mod:`adamkit.benchmarking.quality`), last, since it runs on one thread.
"""

from adamkit.benchmarking import distributed, quality, runner, sparse

KIND = "reference"


def run_reference(settings, *, progress=None):
    """Run the four parts of ``settings`` (:class:`~adamkit.benchmarking.settings.ReferenceSettings`);
    return the JSON-ready record, which holds each part's record under ``results``."""
    record = runner.start_record(
        settings,
        {
            "steps": settings.dense.steps,
            "warmup": settings.dense.warmup,
            "quick": settings.dense.quick,
            "threads": settings.dense.threads,
        },
    )
    record["kind"] = KIND
    record["results"] = {
        "dense": runner.run_benchmark(settings.dense, progress=progress),
        "sparse": sparse.run_sparse_benchmark(settings.sparse, progress=progress),
        "distributed": distributed.run_distributed(settings.distributed, progress=progress),
        "quality": quality.run_quality(settings.quality, progress=progress),
    }
    return runner.finish_record(record)


def is_reference(record):
    """Whether ``record`` is an ``adamkit bench --reference`` record."""
    return record.get("kind") == KIND
