"""Complex parameters follow torch.optim, which treats each complex number as a (real, imag)
pair (Adam's second moment is |g|² per component, not g·ḡ)."""

import pytest
import torch

from tests.cases import gradients, initial_params
from tests.torch._compare import TOLERANCE, Agreement, both, set_grads

COMPLEX_CASES = (
    pytest.param("Adam", dict(lr=1e-2, weight_decay=0.1), id="Adam"),
    pytest.param("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True), id="AdamW-amsgrad"),
    pytest.param("Adamax", dict(lr=1e-2, weight_decay=0.05, maximize=True), id="Adamax"),
    pytest.param("Adadelta", dict(lr=0.5, rho=0.8), id="Adadelta"),
    pytest.param("SGD", dict(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.1), id="SGD"),
    pytest.param("Adagrad", dict(lr=0.1, lr_decay=0.01), id="Adagrad"),
    pytest.param(
        "Adagrad", dict(lr=0.1, initial_accumulator_value=0.1), id="Adagrad-initial_accumulator_value"
    ),
    pytest.param("RMSprop", dict(lr=1e-2, centered=True, momentum=0.5), id="RMSprop"),
)
STEPS = 20


def _complex(real_parts, imaginary_parts, dtype):
    pairs = zip(real_parts, imaginary_parts, strict=True)
    return [torch.complex(torch.tensor(re), torch.tensor(im)).to(dtype) for re, im in pairs]


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128], ids=str)
@pytest.mark.parametrize(("name", "hyper"), COMPLEX_CASES)
def test_complex_parameters_follow_torch(name, hyper, dtype):
    torch_class, adamkit_class = both(name)
    start = _complex(initial_params("float64", seed=0), initial_params("float64", seed=5), dtype)
    real_grads = gradients("float64", steps=STEPS, seed=1)
    imaginary_grads = gradients("float64", steps=STEPS, seed=2)
    ours = [torch.nn.Parameter(value.clone()) for value in start]
    theirs = [torch.nn.Parameter(value.clone()) for value in start]
    adamkit_optimizer = adamkit_class(ours, **hyper)
    torch_optimizer = torch_class(theirs, **hyper)
    agreement = Agreement(TOLERANCE[dtype])
    for re, im in zip(real_grads, imaginary_grads):
        grads = _complex(re, im, dtype)
        set_grads(ours, grads)
        set_grads(theirs, grads)
        adamkit_optimizer.step()
        torch_optimizer.step()
        agreement.check_all("param", ours, theirs)
        agreement.check_states(adamkit_optimizer, torch_optimizer)
    for param in ours:
        assert param.dtype == dtype
        for key, value in adamkit_optimizer.state[param].items():
            if key != "step":
                assert value.dtype == dtype, key
