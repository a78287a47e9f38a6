"""The rules the benchmark times and the hyperparameters it times them with.

Each case names the optimizer class, which has the same name in ``adamkit.torch``,
``torch.optim`` and ``adamkit.numpy``, and the keyword arguments that select the variant.
Everything else is the class's default.
"""

from dataclasses import dataclass, field

from adamkit import specs


@dataclass(frozen=True)
class RuleCase:
    name: str
    optimizer: str
    hyperparameters: dict = field(default_factory=dict)


CASES = tuple(
    RuleCase(variant.label, spec.name, variant.settings)
    for spec in specs.ALL
    for variant in spec.variants
    if variant.bench
)
"""The variants of the specs that ``adamkit bench`` times (:attr:`adamkit.rules._spec.Variant.bench`)."""

BY_NAME = {case.name: case for case in CASES}
NAMES = tuple(BY_NAME)
