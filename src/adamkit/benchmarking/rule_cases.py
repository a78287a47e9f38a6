"""The rules the benchmark times and the hyperparameters it times them with.

Each case names the optimizer class, which has the same name in ``adamkit.torch``,
``torch.optim`` and ``adamkit.numpy``, and the keyword arguments that select the variant.
Everything else is the class's default.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RuleCase:
    name: str
    optimizer: str
    hyperparameters: dict = field(default_factory=dict)


CASES = (
    RuleCase("Adam", "Adam"),
    RuleCase("AdamW", "AdamW"),
    RuleCase("AMSGrad", "Adam", {"amsgrad": True}),
    RuleCase("Adamax", "Adamax"),
    RuleCase("Adadelta", "Adadelta"),
    RuleCase("RMSprop", "RMSprop"),
    RuleCase("Adagrad", "Adagrad"),
    RuleCase("SGD-momentum", "SGD", {"lr": 1e-3, "momentum": 0.9}),
)

BY_NAME = {case.name: case for case in CASES}
NAMES = tuple(BY_NAME)
