"""The examples in the library's docstrings are true: each module's doctests run (``+SKIP`` ones need real data)."""

import doctest
import importlib
import pkgutil

import pytest

import behavior

MODULES = sorted(m.name for m in pkgutil.iter_modules(behavior.__path__, "behavior."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} are wrong"
