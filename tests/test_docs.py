"""The examples in the library's docstrings are true: each module's doctests run (``+SKIP`` ones need real data)."""

import doctest
import importlib
import pkgutil

import pytest

import behavior
import tools

MODULES = sorted(m.name for package in (behavior, tools)
                 for m in pkgutil.walk_packages(package.__path__, package.__name__ + "."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} are wrong"
