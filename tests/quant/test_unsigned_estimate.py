"""The fused Adam step counts the unsigned code from a hardware reciprocal square root estimate
(csrc/quant8_adam_avx2.c, csrc/quant8_adam_avx512.c); any estimate within 1/4 of sqrt(w) gives
the code of quant8.c's sqrtf. unsigned_estimate_check.c checks every float32 w of the range on
this processor, for each instruction set it has."""

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

COMPILER = shutil.which("cc") or shutil.which("gcc")


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or COMPILER is None, reason="x86 and a C compiler")
def test_every_w_gets_the_code_of_the_exact_square_root(tmp_path):
    source = Path(__file__).with_name("unsigned_estimate_check.c")
    program = tmp_path / "unsigned_estimate_check"
    subprocess.run([COMPILER, "-O2", "-ffp-contract=off", str(source), "-lm", "-o", str(program)], check=True)
    result = subprocess.run([str(program)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines, "no instruction set with a fused step to check"
    for line in lines:
        name, rest = line.split(": ")
        values, mismatches, error = rest.split(", ")
        assert values == "1199459329 values" and mismatches == "0 mismatches", line
        assert float(error.split()[-1]) < 0.2, line
