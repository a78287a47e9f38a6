"""Independent float64 transcriptions of the papers, written without reading ``adamkit.rules``.

Each module runs a whole trajectory of one rule on one parameter array: it takes the initial
parameters, the gradient of every step and the hyperparameters, and returns the final
parameters and the state under torch's keys. The code is deliberately plain: float64 NumPy,
one line per line of the paper's pseudo-code, with torch 2.13's conventions where the paper
leaves a choice open.
"""
