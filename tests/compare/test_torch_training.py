"""compare's torch training with another precision and extra optimizer options (benchmarks/quality.py)."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

import torch

from adamkit.compare import torch_training
from adamkit.compare.models import build, evaluate
from adamkit.compare.precision import FLOAT32, Precision, as_float32
from adamkit.compare.tasks import BATCH_SIZE, TASKS, Split, digits_split

SEED = 2
LR = 1e-3


@pytest.fixture(scope="module")
def split():
    return digits_split(SEED)


@pytest.fixture(scope="module")
def two_batches(split):
    """The first two minibatches of ``split``: enough for the optimizer to hold its state."""
    head = slice(2 * BATCH_SIZE)
    return Split(split.train_inputs[head], split.train_labels[head], split.test_inputs[head], split.test_labels[head])


@pytest.fixture(scope="module")
def float32_run(split):
    return train_mlp(split)


def train_mlp(split, precision=FLOAT32, **options):
    _, run = torch_training.train(TASKS["mlp"], "adam", LR, split, seed=SEED, epochs=1,
                                  precision=precision, optimizer_options=options)
    return run


def state_bytes_at(split, bytes_per_element):
    """The state bytes of the MLP with ``bytes_per_element`` per parameter and a float32 step each."""
    sizes = [param.numel() for param in build("mlp", split.features, split.classes, SEED).parameters()]
    return bytes_per_element * sum(sizes) + 4 * len(sizes)


def test_bf16_parameters_train_with_bf16_state_and_kahan_and_are_evaluated_in_float32(split, float32_run):
    rounded = build("mlp", split.features, split.classes, SEED).to(torch.bfloat16).float()
    expected = evaluate(rounded, torch_training.as_tensors(split))[0]

    run = train_mlp(split, Precision(torch.bfloat16))

    assert run.train_loss[0] == expected
    assert run.train_loss[0] != float32_run.train_loss[0]
    assert run.train_loss[-1] < run.train_loss[0]
    assert run.state_bytes == state_bytes_at(split, 6)


@pytest.mark.parametrize(
    ("options", "bytes_per_element"), [({"state_dtype": "fp32"}, 10), ({"kahan_summation": False}, 4)]
)
def test_bf16_parameters_get_the_optimizer_options(split, two_batches, options, bytes_per_element):
    run = train_mlp(two_batches, Precision(torch.bfloat16), **options)

    assert run.state_bytes == state_bytes_at(split, bytes_per_element)


def test_int8_state_reaches_the_optimizer(split, two_batches, float32_run):
    assert float32_run.state_bytes == state_bytes_at(split, 8)
    assert train_mlp(two_batches, state_dtype="int8").state_bytes < float32_run.state_bytes / 3


def test_autocast_covers_the_training_forward_but_not_the_evaluation(split, float32_run):
    plain, autocast = float32_run, train_mlp(split, Precision(autocast=torch.bfloat16))

    assert autocast.train_loss[0] == plain.train_loss[0]
    assert autocast.batch_loss[0] != plain.batch_loss[0]
    assert autocast.batch_loss[0] == pytest.approx(plain.batch_loss[0], rel=2e-2)


def test_as_float32_copies_only_models_that_are_not_float32():
    model = torch.nn.Linear(3, 2)
    assert as_float32(model) is model

    half = torch.nn.Linear(3, 2).to(torch.bfloat16)
    copy = as_float32(half)

    assert copy is not half and half.weight.dtype == torch.bfloat16
    assert copy.weight.dtype == torch.float32 and torch.equal(copy.weight, half.weight.float())
