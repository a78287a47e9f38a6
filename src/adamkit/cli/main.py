"""The ``adamkit`` entry point: an argparse parser with one subparser per subcommand module.

A subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``; its docstring's
first line is its help. ``main`` returns the exit status: 0 on success, 2 for a usage error or
a missing extra.
"""

import argparse
import importlib
import sys
import types

# The modules of the ``cli`` extra that every subcommand needs. torch is needed by some
# subcommands only (``compare --backend numpy`` and ``trajectories`` run without it); a
# subcommand module that cannot be imported without it is replaced by one that says so.
EXTRA_MODULES = ("sklearn", "matplotlib", "rich")
OPTIONAL_EXTRAS = ("torch",)
INSTALL_HINT = "pip install 'adamkit[cli]'"

# Subcommand name -> (module, whether the subcommand may be absent from this install).
SUBCOMMANDS = {
    "compare": ("adamkit.cli.compare", False),
    "trajectories": ("adamkit.cli.trajectories", False),
    "bench": ("adamkit.cli.bench", True),
    "playground": ("adamkit.cli.playground", False),
}


def missing_extra():
    """The first module every subcommand needs that cannot be imported, or ``None``."""
    for name in EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


def load_subcommands():
    """Import the subcommand modules; an optional one is skipped only if it does not exist.

    A module that needs an uninstalled optional extra (torch) is replaced by a stand-in that
    reports it. Any other import error raised from inside an existing module is a bug in it
    and propagates.
    """
    loaded = {}
    for name, (module_name, optional) in SUBCOMMANDS.items():
        try:
            loaded[name] = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            missing = (error.name or "").partition(".")[0]
            if missing in OPTIONAL_EXTRAS:
                loaded[name] = needs_extra(name, missing)
            elif not (optional and error.name == module_name):
                raise
    return loaded


def needs_extra(command, missing):
    """A stand-in subcommand that takes any arguments and exits 2 saying that ``command`` needs ``missing``."""

    def add_arguments(parser):
        parser.set_defaults(ignores_arguments=True)

    def run(args):
        print(f"adamkit {command}: needs {missing!r}, which is not installed; run: {INSTALL_HINT}",
              file=sys.stderr)
        return 2

    return types.SimpleNamespace(
        __doc__=f"(unavailable: needs {missing!r}, which is not installed)",
        add_arguments=add_arguments,
        run=run,
    )


def build_parser(subcommands):
    parser = argparse.ArgumentParser(
        prog="adamkit", description="Compare, visualise and benchmark the adamkit optimizers."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in subcommands.items():
        doc = (module.__doc__ or "").strip()
        subparser = commands.add_parser(
            name,
            help=doc.splitlines()[0] if doc else None,
            description=doc or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(subparser)
        subparser.set_defaults(run=module.run)
    return parser


def main(argv=None):
    """Run ``adamkit`` with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    missing = missing_extra()
    if missing is not None:
        print(
            f"adamkit: the command needs {missing!r}, which is not installed; "
            f"run: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    parser = build_parser(load_subcommands())
    args, unknown = parser.parse_known_args(argv)
    # Only a stand-in for a subcommand that cannot run takes any arguments.
    if unknown and not getattr(args, "ignores_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
