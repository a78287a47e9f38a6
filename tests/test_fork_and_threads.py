"""A process forked after the kernels ran on OpenMP threads steps, bit for bit as its parent;
one optimizer stepped from two Python threads at once neither crashes nor loses a step.

Fork: libgomp's thread pool does not survive ``fork``. Its record of the parent's worker
threads is copied into the child, the threads are not, and a child that enters a parallel
region waits for them forever. Before, a child forked (``os.fork``, a multiprocessing 'fork'
context, DataLoader workers) after a parallel step blocked in ``GOMP_parallel`` at its first
step. torch's own operators run on the same libgomp and would wait just the same, so a child
here runs nothing but the steps of tensors made before the fork, whose torch operators are
small enough to stay on one thread. It does not call ``torch.set_num_threads(1)``, as
DataLoader workers do: that sets OpenMP's default thread count, which is the kernels' default
too, and would hide a child that still takes it.

A lock that another thread held at the fork stays held in the child: a child forked while a
thread of the parent is inside ``step`` steps with a lock of its own.

Threads: two threads stepping one NumPy optimizer were seen to crash the process in 7 of 23
runs and lost steps in the others (the cached step plan was rebuilt by one thread while the
other ran it); the torch front end lost steps too. With a constant gradient the order of the
steps does not matter, so two threads of N steps each must end exactly where 2N steps in a row
end.

Each check runs in a fresh interpreter, in a process group of its own: a hang fails the test
after a timeout (and the group is killed) instead of hanging the suite, and a signal fails it.
"""

import os
import signal
import subprocess
import sys

import pytest

from adamkit.kernels import native

pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not native.available(), reason="native kernels not built")

TIMEOUT_SECONDS = 300  # generous, for importing torch on a loaded machine
CHILD_TIMEOUT_SECONDS = 60  # for a few steps: a forked child still stepping then hangs


def run_isolated(code, *args):
    """Run ``code`` with ``args`` in a fresh interpreter in a new process group; return its stdout."""
    process = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        pytest.fail(f"no answer in {TIMEOUT_SECONDS} s: the process hangs\n{stderr}", pytrace=False)
    if process.returncode < 0:
        pytest.fail(f"killed by {signal.Signals(-process.returncode).name}\n{stderr}")
    assert process.returncode == 0, stderr
    return stdout.strip()


PRELUDE = f"""
import os, pickle, signal, sys, tempfile, threading, time, traceback
import multiprocessing
import numpy as np
import torch
import adamkit.numpy
import adamkit.torch
from adamkit.kernels import set_num_threads

# Four of the kernels' 32,768-element chunks, and sixteen spans of 8-bit blocks: big enough
# that both threads take part. The embedding's 2^18 gradient elements are over the sparse
# kernel's 2^17 below which it runs on one thread.
N = 1 << 17
ROWS, WIDTH, ENTRIES = 4096, 64, 4096
CHILD_TIMEOUT_SECONDS = {CHILD_TIMEOUT_SECONDS}
HANG = f"the forked child did not finish in {{CHILD_TIMEOUT_SECONDS}} s: it hangs"


def normal(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# Each problem is (step, the parameter's bytes), with a constant gradient.
def torch_dense(state_dtype, size=N):
    param = torch.nn.Parameter(torch.from_numpy(normal(0, size)))
    param.grad = torch.from_numpy(normal(1, size))
    optimizer = adamkit.torch.Adam([param], lr=1e-2, state_dtype=state_dtype)
    return optimizer.step, lambda: param.detach().numpy().tobytes()


def torch_sparse():
    table = torch.nn.Parameter(torch.from_numpy(normal(2, ROWS, WIDTH)))
    rows = torch.from_numpy(np.random.default_rng(3).integers(0, ROWS, ENTRIES))
    values = torch.from_numpy(normal(4, ENTRIES, WIDTH))
    table.grad = torch.sparse_coo_tensor(rows[None], values, (ROWS, WIDTH), check_invariants=True)
    optimizer = adamkit.torch.Adam([table], lr=1e-2)
    return optimizer.step, lambda: table.detach().numpy().tobytes()


def numpy_dense(state_dtype, size=N):
    param, grad = normal(5, size), normal(6, size)
    optimizer = adamkit.numpy.Adam([param], lr=1e-2, state_dtype=state_dtype)
    return lambda: optimizer.step([grad]), param.tobytes


def wait_for(pid):
    deadline = time.monotonic() + CHILD_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    sys.exit(HANG)


def in_child(work, path):
    with open(path, "wb") as file:
        pickle.dump(work(), file)


def forked(how, work):
    \"\"\"What ``work()`` returns in a child forked by ``how`` (os.fork or multiprocessing).\"\"\"
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "result")
        if how == "os.fork":
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    in_child(work, path)
                    code = 0
                except BaseException:
                    traceback.print_exc()
                os._exit(code)
            exit_code = wait_for(pid)
        else:
            child = multiprocessing.get_context("fork").Process(target=in_child, args=(work, path))
            child.start()
            child.join(CHILD_TIMEOUT_SECONDS)
            if child.is_alive():
                child.kill()
                sys.exit(HANG)
            exit_code = child.exitcode
        assert exit_code == 0, f"the forked child exited with {{exit_code}}"
        with open(path, "rb") as file:
            return pickle.load(file)
"""

FORK = (
    PRELUDE
    + """
def two_steps_in_the_child():
    try:
        set_num_threads(2)
    except RuntimeError:
        pass
    else:
        raise AssertionError("set_num_threads(2) was accepted in a forked child")
    for step, _ in runs.values():
        step()
        step()
    return {name: result() for name, (_, result) in runs.items()}


set_num_threads(2)
runs = {
    "torch": torch_dense(None),
    "torch int8": torch_dense("int8"),
    "torch sparse": torch_sparse(),
    "numpy": numpy_dense(None),
    "numpy int8": numpy_dense("int8"),
}
for step, _ in runs.values():
    step()
in_the_child = forked(sys.argv[1], two_steps_in_the_child)
for step, _ in runs.values():
    step()
    step()
differ = [name for name, (_, result) in runs.items() if in_the_child[name] != result()]
assert not differ, f"the child's steps differ from the parent's: {differ}"
print("ok")
"""
)


@pytest.mark.parametrize("how", ["os.fork", "multiprocessing"])
def test_a_forked_child_steps_as_the_parent(how):
    assert run_isolated(FORK, how) == "ok"


LOCK_HELD_AT_FORK = (
    PRELUDE
    + """
step, result = torch_dense(None, 17)
inside, leave = threading.Event(), threading.Event()


def closure():
    inside.set()
    leave.wait()


stepping = threading.Thread(target=step, args=(closure,), daemon=True)  # if the child hangs
stepping.start()
inside.wait()


def one_step_in_the_child():
    step()
    return result()


in_the_child = forked("os.fork", one_step_in_the_child)
leave.set()
stepping.join()
assert in_the_child == result(), "the child's step differs from the parent's"
print("ok")
"""
)


def test_a_child_forked_while_a_thread_steps_steps_too():
    assert run_isolated(LOCK_HELD_AT_FORK) == "ok"


THREADS = (
    PRELUDE
    + """
# Without the lock, 20 repeats of 20 steps lost steps in each of the four cases in every run
# of six (19 or 20 of 20 repeats with NumPy and 2^17 elements, 2 to 17 in the other cases).
STEPS, REPEATS = 20, 20


def two_threads(step):
    \"\"\"The errors of two threads, started together, each calling ``step`` STEPS times.\"\"\"
    start, errors = threading.Barrier(2), []

    def run():
        start.wait()
        try:
            for _ in range(STEPS):
                step()
        except BaseException as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


set_num_threads(2)
wrong = []
for name, make in {"torch": torch_dense, "numpy": numpy_dense}.items():
    for size in (17, N):
        step, result = make(None, size)
        for _ in range(2 * STEPS):
            step()
        expected = result()
        for repeat in range(REPEATS):
            step, result = make(None, size)
            errors = two_threads(step)
            if errors or result() != expected:
                wrong.append((name, size, repeat, errors[:1]))
assert not wrong, f"{len(wrong)} of {4 * REPEATS} runs lost steps or raised: {wrong[:5]}"
print("ok")
"""
)


def test_two_threads_stepping_one_optimizer_lose_no_step():
    assert run_isolated(THREADS) == "ok"
