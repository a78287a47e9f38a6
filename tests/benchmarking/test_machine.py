import numpy as np
import torch

from adamkit.benchmarking import machine
from adamkit.kernels import native


def test_the_record_names_the_software_and_the_kernels_in_use():
    described = machine.describe()
    assert (described["numpy"], described["torch"]) == (np.__version__, torch.__version__)
    assert described["torch_threads"] == torch.get_num_threads()
    assert described["logical_cores"] >= 1 and described["cpu_model"]
    kernels = described["adamkit_kernels"]
    assert kernels["native"] == native.available()
    assert kernels["isas"] == list(native.available_isas())


def test_cpuinfo_fields_are_read_by_name(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2\n")
    assert machine._cpuinfo_field("model name", cpuinfo) == "Test CPU 9000"
    assert machine._cpuinfo_field("flags", cpuinfo) == "fpu avx2"
    assert machine._cpuinfo_field("bogomips", cpuinfo) is None
    assert machine._cpuinfo_field("model name", tmp_path / "absent") is None


def test_the_environment_variables_that_change_speed_are_recorded(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "1")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setenv("UNRELATED_VARIABLE", "x")
    assert machine.describe()["environment"] == {"OMP_WAIT_POLICY": "PASSIVE", "THP_MEM_ALLOC_ENABLE": "1"}
