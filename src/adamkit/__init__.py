"""adamkit: the Adam family of optimizers, exactly right, for PyTorch and NumPy.

Importing ``adamkit`` needs only NumPy. The front ends live in subpackages:
``adamkit.torch`` (drop-in ``torch.optim`` optimizers), ``adamkit.numpy`` (optimizers over
NumPy arrays) and :func:`adamkit.minimize` (a SciPy-style driver). The math is in
``adamkit.rules``.
"""

from adamkit import rules
from adamkit.numpy.minimizer import as_scipy_method, minimize
from adamkit.nonfinite import NonFiniteGradientWarning

__all__ = ["NonFiniteGradientWarning", "as_scipy_method", "minimize", "rules"]
__version__ = "0.1.0"
