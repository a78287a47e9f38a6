"""How pytest-xdist shares the tests out (``--dist loadgroup``, see pyproject.toml)."""

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """The tests of a module that use one of its module-scoped fixtures (a benchmark run, a
    training run, a server, a browser) go to one worker together, so that the fixture is built
    once rather than once on each worker. Tests already in a group stay in theirs."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        definitions = getattr(item, "_fixtureinfo", None)
        if definitions is None:
            continue
        if any(fixture[-1].scope == "module" for fixture in definitions.name2fixturedefs.values()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
