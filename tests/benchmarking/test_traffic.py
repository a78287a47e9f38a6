import pytest
import torch

from adamkit import specs
from adamkit.benchmarking import rule_cases, traffic
from tests.torch._compare import both

FP32 = 4


def test_adam_moves_28_bytes_per_fp32_parameter():
    # Reads param, grad, exp_avg, exp_avg_sq; writes param, exp_avg, exp_avg_sq.
    reads, writes = 4, 3
    assert traffic.bytes_per_param("Adam") == (reads + writes) * FP32 == 28
    assert traffic.bytes_per_param("AdamW") == 28


def test_amsgrad_adds_a_read_and_a_write_of_max_exp_avg_sq():
    reads, writes = 5, 4
    assert traffic.bytes_per_param("AMSGrad") == (reads + writes) * FP32 == 36


def test_lion_moves_20_bytes_per_fp32_parameter():
    # Its spec's one slot: reads param, grad, exp_avg; writes param, exp_avg.
    reads, writes = 3, 2
    assert traffic.STATE_BUFFERS["Lion"] == ("exp_avg",)
    assert traffic.bytes_per_param("Lion") == (reads + writes) * FP32 == 20


def test_lamb_counts_its_norm_pass():
    # Pass 1 reads param, grad, exp_avg, exp_avg_sq and writes exp_avg, exp_avg_sq; pass 2
    # reads param, exp_avg, exp_avg_sq and writes param.
    reads, writes = 4 + 3, 2 + 1
    assert traffic.bytes_per_param("LAMB") == (reads + writes) * FP32 == 40
    assert [case.name for case in rule_cases.CASES if specs.BY_NAME[case.optimizer].norm_pass] == ["LAMB"]


def test_float64_doubles_the_bytes():
    assert traffic.bytes_per_param("Adam", itemsize=8) == 56


def test_every_benchmarked_rule_has_a_traffic_entry():
    assert set(traffic.STATE_BUFFERS) == set(rule_cases.NAMES)


def _tensor_state_keys(optimizer, param):
    return {key for key, value in optimizer.state[param].items() if key != "step" and value.dim() > 0}


@pytest.mark.parametrize("case", rule_cases.CASES, ids=lambda case: case.name)
def test_state_buffers_are_the_tensors_torch_and_adamkit_keep(case):
    for cls in both(case.optimizer):  # the rule stands in for a class torch.optim lacks
        param = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 17))
        param.grad = torch.linspace(0.5, -0.5, 17)
        optimizer = cls([param], **case.hyperparameters)
        optimizer.step()
        optimizer.step()
        assert _tensor_state_keys(optimizer, param) == set(traffic.STATE_BUFFERS[case.name]), cls


def test_cautious_reads_param_grad_and_state_again_in_its_first_pass():
    # AdamW: the plain step's 4 reads and 3 writes, and the first pass's 4 reads; Lion 3+2 and 3.
    assert traffic.step_elements("AdamW", {"cautious": True}) * FP32 == (4 + 3 + 4) * FP32 == 44
    assert traffic.step_elements("Lion", {"cautious": True}) * FP32 == (3 + 2 + 3) * FP32 == 32
    assert traffic.step_elements("AdamW", {}) == traffic.elements_per_param("AdamW")
