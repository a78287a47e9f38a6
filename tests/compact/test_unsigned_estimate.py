"""The fused Adam step counts the unsigned code from a hardware reciprocal square root estimate
(csrc/quant8_adam_avx2.c, csrc/quant8_adam_avx512.c); any estimate within 1/4 of sqrt(w) gives
the code of quant8.c's sqrtf. unsigned_estimate_check.c, built around each fused file's own
store_unsigned_codes, checks every float32 w from 0 to infinity (the w of an infinite second
moment, in a block whose scale is the largest float32) on this processor."""

import platform
import shutil
import subprocess
from pathlib import Path

import pytest

COMPILER = shutil.which("cc") or shutil.which("gcc")
CSRC = Path(__file__).resolve().parents[2] / "csrc"
VALUES = 0x7F80_0000 + 1  # the float32 bit patterns from 0 to infinity


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or COMPILER is None, reason="x86 and a C compiler")
@pytest.mark.parametrize("fused_file", ["quant8_adam_avx2.c", "quant8_adam_avx512.c"])
def test_every_w_gets_the_code_of_the_exact_square_root(tmp_path, fused_file):
    source = Path(__file__).with_name("unsigned_estimate_check.c")
    program = tmp_path / "unsigned_estimate_check"
    subprocess.run(
        [COMPILER, "-O2", "-ffp-contract=off", f"-I{CSRC}", f'-DFUSED_FILE="{fused_file}"', str(source), "-lm",
         "-o", str(program)],
        check=True,
    )
    result = subprocess.run([str(program)], capture_output=True, text=True, timeout=600)
    if result.returncode == 2:
        pytest.skip(f"this CPU lacks the instruction set of {fused_file}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{fused_file}: {VALUES} values, 0 mismatches"
