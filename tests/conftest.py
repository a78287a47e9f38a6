"""How pytest-xdist shares the tests out (``--dist loadgroup``, see pyproject.toml), and the
mode new Schedule-Free optimizers start in."""

import pytest

from adamkit import specs


@pytest.fixture(autouse=True)
def optimizers_with_modes_start_in_train_mode(monkeypatch):
    """New optimizers with a train and an eval mode (Schedule-Free) start in train mode, so that
    the shared tests, which step every optimizer as torch.optim's are stepped, step them too. They
    start in eval mode, as ``schedulefree``'s, where a module defines a fixture of this name that
    does nothing (``tests/torch/test_schedule_free.py``), which tests the modes themselves."""
    for spec in specs.ALL:
        if spec.has_modes:
            monkeypatch.setitem(spec.group_state, "train_mode", True)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    _group_the_users_of_module_fixtures(items)
    result = yield
    if getattr(config.option, "loadgroup", False):
        _put_the_groups_in_the_ids(items)
    return result


def _group_the_users_of_module_fixtures(items):
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


def _put_the_groups_in_the_ids(items):
    """End the id of each test in an ``xdist_group`` with ``@group``, which is how the
    controller sees the groups. pytest-xdist 3.8 does this by setting ``item._nodeid``, which
    pytest 9 no longer reads (its ids live in ``item._id``): without this every group is split
    over the workers as if it had no mark."""
    for item in items:
        marks = list(item.iter_markers("xdist_group"))
        if not marks or "@" in item.nodeid.rpartition("]")[2]:
            continue
        names = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default")) for mark in marks})
        item._id = type(item._id).parse(f"{item.nodeid}@{'_'.join(names)}")
