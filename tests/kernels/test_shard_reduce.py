"""The kernels' ``reduce`` (``ak_call.reduce``): the whole-tensor sums of shards.

Two threads stand for two processes: each steps its shards of the same tensors through
``native.update_pointers`` (the kernels release the GIL), and their reducers meet at a barrier
to add their local sums, as ``adamkit.torch._shard_sums`` does across processes. The shards
stepped so must give the whole tensors' step: bitwise for ``cautious=True`` (its sums are counts)
and for LAMB split at a block boundary, to rounding elsewhere. A reducer that raises stops the
step before any parameter changes; one that returns the wrong number of sums is refused.
"""

import threading

import numpy as np
import pytest

from adamkit import specs
from adamkit.kernels import native

pytestmark = pytest.mark.skipif(not native.available(), reason="native kernels not built")

SIZES = [1, 7, 17, 4097, 8192]
LAMB = {**specs.LAMB.rule_arguments(specs.LAMB.defaults), "lr": 0.05, "weight_decay": 0.1, "trust_clip": 2.0}
CASES = {
    "LAMB": (specs.LAMB, LAMB),
    "Adam-cautious": (specs.ADAM, {**specs.ADAM.rule_arguments(specs.ADAM.defaults), "lr": 0.01, "cautious": True}),
    "Lion-cautious": (
        specs.LION,
        {**specs.LION.rule_arguments(specs.LION.defaults), "weight_decay": 0.1, "cautious": True},
    ),
}


def _tensors(spec, seed):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(size).astype(np.float32) for size in SIZES]
    states = [{slot.key: np.zeros_like(p) for slot in spec.slots if slot.key != "max_exp_avg_sq"} for p in params]
    return params, states


def _step(spec, hyper, params, grads, states, step, reduce=None):
    keys = [slot.key for slot in spec.active_slots(hyper)]
    native.update_pointers(
        spec,
        hyper,
        "float32",
        [p.size for p in params],
        [p.ctypes.data for p in params],
        [g.ctypes.data for g in grads],
        {key: [state[key].ctypes.data for state in states] for key in keys},
        [step] * len(params),
        reduce=reduce,
        num_threads=2,
    )


def _split(arrays, cuts):
    return [a[:cut] for a, cut in zip(arrays, cuts)], [a[cut:] for a, cut in zip(arrays, cuts)]


def _stepped_in_two_threads(spec, hyper, params, grads, states, step, cuts):
    """Step the shards ``[:cut]`` and ``[cut:]`` of every tensor in two threads whose reducers
    add each other's local sums (the first shard's first)."""
    barrier, local = threading.Barrier(2), [None, None]

    def reducer(rank):
        def reduce(sums):
            local[rank] = np.array(sums)
            barrier.wait()
            return (local[0] + local[1]).tolist()

        return reduce

    shards = [_split(column, cuts) for column in (params, grads)]
    state_shards = [
        [{k: v[:cut] for k, v in s.items()} for s, cut in zip(states, cuts)],
        [{k: v[cut:] for k, v in s.items()} for s, cut in zip(states, cuts)],
    ]
    errors = []

    def run(rank):
        try:
            _step(spec, hyper, shards[0][rank], shards[1][rank], state_shards[rank], step, reducer(rank))
        except BaseException as error:  # reported below
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(rank,)) for rank in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("at_blocks", [False, True])
def test_shards_with_summed_sums_step_as_the_whole_tensors(name, at_blocks):
    spec, hyper = CASES[name]
    cuts = [0, 7, 0, 4096, 4096] if at_blocks else [1, 4, 8, 2049, 4100]  # at_blocks: an empty shard or whole blocks
    whole, whole_states = _tensors(spec, 0)
    split, split_states = _tensors(spec, 0)
    rng = np.random.default_rng(1)
    for step in (1.0, 2.0, 3.0):
        grads = [rng.standard_normal(size).astype(np.float32) for size in SIZES]
        _step(spec, hyper, whole, grads, whole_states, step)
        _stepped_in_two_threads(spec, hyper, split, grads, split_states, step, cuts)
    exact = name != "LAMB" or at_blocks
    for index, (got, want) in enumerate(zip(split, whole)):
        if exact:
            np.testing.assert_array_equal(got, want, err_msg=f"params[{index}]", strict=True)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=f"params[{index}]")
    assert not np.array_equal(whole[3], _tensors(spec, 0)[0][3]), "the step did not move the parameters"


def test_local_sums_are_the_norms_and_counts_of_the_call():
    spec, hyper = CASES["Adam-cautious"]
    params, states = _tensors(spec, 2)
    grads = [np.ones_like(p) for p in params]
    seen = []
    _step(spec, hyper, params, grads, states, 1.0, lambda sums: seen.append(sums) or sums)
    # First step, m = (1 - beta1) g: every element agrees with its gradient.
    assert seen == [tuple(float(x) for size in SIZES for x in (size, size))]


@pytest.mark.parametrize("name", ["LAMB", "Adam-cautious"])
def test_a_reducer_that_raises_stops_the_step_before_the_parameters(name):
    spec, hyper = CASES[name]
    params, states = _tensors(spec, 3)
    before = [p.copy() for p in params]
    grads = [np.ones_like(p) for p in params]

    def reduce(sums):
        raise ConnectionError("the other process left")

    with pytest.raises(ConnectionError, match="the other process left"):
        _step(spec, hyper, params, grads, states, 1.0, reduce)
    for got, want in zip(params, before):
        np.testing.assert_array_equal(got, want, strict=True)


@pytest.mark.parametrize(
    ("reduce", "error", "message"),
    [
        (lambda sums: sums[:-1], ValueError, f"reduce returned {2 * len(SIZES) - 1} sums for {2 * len(SIZES)}"),
        (lambda sums: ["x"] * len(sums), TypeError, "must be real number"),
        (lambda sums: 3, TypeError, "reduce must return a sequence of floats"),
        ("not callable", TypeError, "reduce must be None or callable"),
    ],
)
def test_bad_reducers_are_refused(reduce, error, message):
    spec, hyper = CASES["LAMB"]
    params, states = _tensors(spec, 4)
    with pytest.raises(error, match=message):
        _step(spec, hyper, params, [np.ones_like(p) for p in params], states, 1.0, reduce)
