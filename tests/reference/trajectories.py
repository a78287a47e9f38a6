"""Look up the transcription of an optimizer by its torch name and run it on one array."""

import numpy as np

from tests.reference.adabelief import adabelief
from tests.reference.adadelta import adadelta
from tests.reference.adafactor import adafactor
from tests.reference.adagrad import adagrad
from tests.reference.adam import adam
from tests.reference.adamax import adamax
from tests.reference.adamw import adamw
from tests.reference.nadam import nadam
from tests.reference.radam import radam
from tests.reference.adopt import adopt
from tests.reference.lion import lion
from tests.reference.ademamix import ademamix
from tests.reference.lamb import lamb
from tests.reference.rmsprop import rmsprop
from tests.reference.schedule_free import schedule_free_adamw
from tests.reference.sgd import sgd

_BY_NAME = {
    "Adam": adam,
    "AdamW": adamw,
    "Adamax": adamax,
    "Adadelta": adadelta,
    "SGD": sgd,
    "Adagrad": adagrad,
    "RMSprop": rmsprop,
    "Adafactor": adafactor,
    # torch keeps mu_product in its default scalar dtype, float32.
    "NAdam": lambda params, grads, **hyper: nadam(params, grads, **hyper, product_dtype=np.float32),
    "RAdam": radam,
    "AdaBelief": adabelief,
    "ADOPT": adopt,
    "Lion": lion,
    "AdEMAMix": ademamix,
    "LAMB": lamb,
    "AdamWScheduleFree": schedule_free_adamw,
}


def reference_trajectory(optimizer, hyper, params, grads):
    """Run ``optimizer``'s transcription with the constructor keywords ``hyper``.

    torch's ``Adam(decoupled_weight_decay=True)`` is AdamW with Adam's default λ = 0.
    """
    hyper = dict(hyper)
    if optimizer == "Adam" and hyper.pop("decoupled_weight_decay", False):
        return adamw(params, grads, **{"weight_decay": 0.0, **hyper})
    return _BY_NAME[optimizer](params, grads, **hyper)
