"""The ``adamkit`` command.

``adamkit compare`` trains the Adam paper's three small models on scikit-learn's digits with
each optimizer and reports losses, accuracy, time and optimizer-state memory;
``adamkit trajectories`` draws the optimizers' paths on 2-D test functions; ``adamkit bench``
times the rules. Every subcommand is a module here exposing ``add_arguments(parser)`` and
``run(args) -> int``; :mod:`adamkit.cli.main` registers them. The command needs the ``cli``
extra: ``pip install 'adamkit[cli]'``.
"""
