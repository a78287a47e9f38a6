import pytest
import torch

from adamkit.benchmarking import machine, report, runner


@pytest.mark.parametrize(
    "value, shown",
    [(1234.5, "1234"), (123.44, "123"), (12.345, "12.3"), (1.2345, "1.23"), (0.012345, "0.0123"), (0.5, "0.5")],
)
def test_figures_keep_three_significant_digits_without_exponents(value, shown):
    assert report.figure(value) == shown


def test_threads_are_applied_to_torch_and_recorded():
    before = torch.get_num_threads()
    try:
        applied = runner.apply_threads(1)
        assert torch.get_num_threads() == 1
        assert applied["requested"] == 1 and applied["torch"] == 1
    finally:
        torch.set_num_threads(before)
    assert runner.apply_threads(None) == {"requested": None, "torch": before, "adamkit": "default"}


def test_the_machine_line_names_the_environment_that_changes_speed():
    record = {"machine": machine.describe(), "settings": {"threads": {"torch": 2}}}
    record["machine"]["environment"] = {"OMP_WAIT_POLICY": "PASSIVE", "THP_MEM_ALLOC_ENABLE": "1"}
    assert report.machine_line(record).endswith(", OMP_WAIT_POLICY=PASSIVE, THP_MEM_ALLOC_ENABLE=1")
    record["machine"]["environment"] = {}
    assert report.machine_line(record).endswith(f"Python {record['machine']['python']}")
