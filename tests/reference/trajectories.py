"""Look up the transcription of an optimizer by its torch name and run it on one array."""

from tests.reference.adadelta import adadelta
from tests.reference.adagrad import adagrad
from tests.reference.adam import adam
from tests.reference.adamax import adamax
from tests.reference.adamw import adamw
from tests.reference.lamb import lamb
from tests.reference.rmsprop import rmsprop
from tests.reference.sgd import sgd

_BY_NAME = {
    "Adam": adam,
    "AdamW": adamw,
    "Adamax": adamax,
    "Adadelta": adadelta,
    "SGD": sgd,
    "Adagrad": adagrad,
    "RMSprop": rmsprop,
    "LAMB": lamb,
}


def reference_trajectory(optimizer, hyper, params, grads):
    """Run ``optimizer``'s transcription with the constructor keywords ``hyper``.

    torch's ``Adam(decoupled_weight_decay=True)`` is AdamW with Adam's default λ = 0.
    """
    hyper = dict(hyper)
    if optimizer == "Adam" and hyper.pop("decoupled_weight_decay", False):
        return adamw(params, grads, **{"weight_decay": 0.0, **hyper})
    return _BY_NAME[optimizer](params, grads, **hyper)
