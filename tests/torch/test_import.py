"""``import adamkit.torch`` imports no more of torch than it needs: ``torch.distributed.tensor``
(most of a second) only comes in when the user's code imports it (FSDP2; the distributed tests
check that adamkit then steps its DTensors)."""

import subprocess
import sys


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_import_adamkit_torch_does_not_import_torch_distributed_tensor():
    assert _run("import sys, adamkit.torch; print('torch.distributed.tensor' in sys.modules)") == ["False"]

