"""What an optimizer's state says about its steps, per parameter group, read without disturbing it.

>>> import numpy as np, adamkit.numpy
>>> from adamkit.diagnostics import diagnose
>>> w = np.ones(4)
>>> opt = adamkit.numpy.Adam([w], lr=0.1)
>>> opt.step([np.array([1.0, -1.0, 1e-9, 0.0])])
>>> [group] = diagnose(opt)
>>> group.bias_correction1, group.eps_dominated
(0.09999999999999998, 0.5)

:func:`diagnose` reads ``param_groups`` and ``state`` of a torch or NumPy adamkit optimizer
and returns one :class:`GroupDiagnostics` per parameter group; nothing runs unless it is called.
:mod:`adamkit.diagnostics.formulas` holds each rule's formulas.
"""

from adamkit.diagnostics.formulas import QUANTILE_LEVELS, bias_corrections
from adamkit.diagnostics.summary import GroupDiagnostics, Quantiles, diagnose

__all__ = ["QUANTILE_LEVELS", "GroupDiagnostics", "Quantiles", "bias_corrections", "diagnose"]
