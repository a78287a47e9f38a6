"""What ``adamkit compare`` runs: the Adam paper's three small models on scikit-learn's digits,
trained with each optimizer (the command's arguments are parsed in :mod:`adamkit.cli.compare`).

:mod:`~adamkit.compare.tasks` holds the tasks and their data, :mod:`~adamkit.compare.choices`
the optimizers, :mod:`~adamkit.compare.torch_training` and :mod:`~adamkit.compare.numpy_training`
one training run on either front end, :mod:`~adamkit.compare.comparison` one task over every
optimizer and seed, and :mod:`~adamkit.compare.report` and :mod:`~adamkit.compare.plot` what it
writes.
"""
