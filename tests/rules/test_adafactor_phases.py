"""Adafactor's phases (:func:`adamkit.rules.adafactor.adafactor_phases`) on the parts of a tensor
split along one axis, their sums added as processes add them (``adamkit.torch._adafactor_shards``):
each part's new parameter and factors are the whole tensor's, for vectors, matrices split by
rows and stacks of matrices split between matrices or by rows, with empty parts."""

import numpy as np
import pytest

from adamkit.rules.adafactor import adafactor, adafactor_phases

HYPER = dict(lr=0.05, beta2_decay=-0.6, eps=(1e-20, 1e-2), d=1.5, weight_decay=0.1, maximize=True)
SPLITS = [
    ((1,), 0, 0),
    ((7,), 0, 3),
    ((4097,), 0, 2049),
    ((17, 5), 0, 9),
    ((3, 17), 0, 0),
    ((3, 4, 5), 0, 2),
    ((3, 4, 5), 1, 1),
]


def _state(shape, rng):
    if len(shape) < 2:
        return None, None, np.abs(rng.standard_normal(shape))
    return (
        np.abs(rng.standard_normal(shape[:-1] + (1,))),
        np.abs(rng.standard_normal(shape[:-2] + (1,) + shape[-1:])),
        None,
    )


def _in_two_parts(param, grad, state, axis, cut, step):
    """The results of the phases of the parts ``[:cut]`` and ``[cut:]`` along ``axis``, each
    sent the sum of both parts' sums wherever a sum crosses ``axis``."""

    def part(array, i):
        if array is None or array.ndim > 1 and array.shape[axis] == 1:
            return array  # a factor reduced along the split axis: whole (replicated) in each part
        return np.split(array, [cut], axis=axis)[i]

    phases = [
        adafactor_phases(
            part(param, i), part(grad, i), *(part(s, i) for s in state), step=step, shape=param.shape, **HYPER
        )
        for i in (0, 1)
    ]
    sums = [next(phase) for phase in phases]
    while True:
        crosses = [reduced is None or reduced % param.ndim == axis for _, reduced in sums[0]]
        totals = [a + b for (a, _), (b, _) in zip(*sums)]
        resumed = []
        for phase, own in zip(phases, sums):
            try:
                resumed.append(phase.send([t if c else a for t, c, (a, _) in zip(totals, crosses, own)]))
            except StopIteration as done:
                resumed.append(done.value)
        if not isinstance(resumed[0], list):
            return resumed
        sums = resumed


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape", "axis", "cut"), SPLITS)
def test_parts_with_summed_sums_step_as_the_whole_tensor(dtype, shape, axis, cut):
    rng = np.random.default_rng(5)
    param = rng.standard_normal(shape).astype(dtype)
    state = tuple(None if s is None else s.astype(dtype) for s in _state(shape, rng))
    tolerance = dict(rtol=2e-6, atol=1e-7) if dtype is np.float32 else dict(rtol=1e-13, atol=1e-15)
    for step in (1, 2, 5):
        grad = rng.standard_normal(shape).astype(dtype)
        whole = adafactor(param, grad, *state, step=step, **HYPER)
        parts = _in_two_parts(param, grad, state, axis, cut, step)
        for key in ("param", "row_var", "col_var", "variance"):
            want = getattr(whole, key)
            if want is None:
                continue
            got = [getattr(part, key) for part in parts]
            joined = got[0] if got[0].shape == want.shape else np.concatenate(got, axis=axis)
            np.testing.assert_allclose(joined, want, **tolerance, err_msg=f"{key} at step {step}")
            if got[0].shape == want.shape:  # replicated: the same on both
                np.testing.assert_array_equal(got[0], got[1], strict=True)
        param, state = whole.param, (whole.row_var, whole.col_var, whole.variance)
