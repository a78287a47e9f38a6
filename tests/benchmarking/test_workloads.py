import math

from adamkit.benchmarking import workloads


def test_workload_a_is_20m_params_in_50_tensors():
    a = workloads.FULL["A"]
    assert (a.n_tensors, a.n_params) == (50, 20_000_000)


def test_workload_b_has_gpt2_smalls_parameter_count():
    # GPT-2 small (124M) has 124,439,808 parameters in 148 tensors.
    b = workloads.FULL["B"]
    assert (b.n_tensors, b.n_params) == (148, 124_439_808)
    assert b.shapes[0] == (50257, 768) and b.shapes[1] == (1024, 768)
    assert b.shapes.count((768, 2304)) == 12 and b.shapes.count((3072, 768)) == 12


def test_workload_c_is_ten_thousand_small_tensors():
    c = workloads.FULL["C"]
    assert (c.n_tensors, c.n_params) == (10_000, 10_000_000)


def test_quick_workloads_are_tiny_versions_of_the_same_structure():
    for name in workloads.NAMES:
        assert workloads.QUICK[name].n_params < 20_000
    assert workloads.QUICK["C"].n_tensors > workloads.QUICK["A"].n_tensors


def test_scale_multiplies_the_first_dimension_and_keeps_the_tensor_count():
    b = workloads.FULL["B"]
    half = b.scaled(0.5)
    assert half.n_tensors == b.n_tensors
    assert half.shapes[0] == (25128, 768)
    assert all(s[1:] == t[1:] for s, t in zip(half.shapes, b.shapes))
    assert math.isclose(half.n_params, b.n_params / 2, rel_tol=1e-4)


def test_scale_never_empties_a_tensor():
    tiny = workloads.FULL["C"].scaled(1e-9)
    assert set(tiny.shapes) == {(1,)}


def test_select_keeps_the_order_given_and_applies_quick_and_scale():
    chosen = workloads.select(["C", "A"], quick=True, scale=3)
    assert [w.name for w in chosen] == ["C", "A"]
    assert chosen[1].n_params == 3 * workloads.QUICK["A"].n_params
