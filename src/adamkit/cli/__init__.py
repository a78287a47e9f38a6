"""The ``adamkit`` command.

``adamkit compare`` trains one small network with each optimizer and reports losses,
accuracy, time and optimizer-state memory. Every subcommand is a module here exposing
``add_arguments(parser)`` and ``run(args) -> int``; :mod:`adamkit.cli.main` registers them.
The command needs the ``cli`` extra: ``pip install 'adamkit[cli]'``.
"""
