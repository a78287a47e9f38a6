import copy

from adamkit.benchmarking import report, runner, settings


def test_each_row_is_handed_over_as_soon_as_it_is_timed():
    snapshots = []
    chosen = settings.resolve(workloads=["C"], rules=["Adamax", "RMSprop"], quick=True, steps=2, warmup=1)
    record = runner.run_benchmark(chosen, on_row=lambda partial: snapshots.append(copy.deepcopy(partial)))
    assert [len(s["results"]) for s in snapshots] == [1, 2]
    assert [row["rule"] for row in snapshots[-1]["results"]] == ["Adamax", "RMSprop"]
    assert all(s["finished"] is None for s in snapshots)
    assert "Incomplete run" in report.markdown(snapshots[0])
    assert record["finished"] is not None and record["peak_rss_bytes"] > 0
    assert "Incomplete run" not in report.markdown(record)
    assert report.rows(snapshots[0]) == report.rows(record)[:1]
