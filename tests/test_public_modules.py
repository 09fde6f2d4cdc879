"""Properties of the public modules themselves (not of what they hold)."""

import importlib

import pytest

PUBLIC_MODULES = [
    "nursery",
    "nursery.lowlevel",
    "nursery.compat",
    "nursery.socket",
    "nursery.to_thread",
    "nursery.from_thread",
    "nursery.testing",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_module_has_no_module_getattr(name):
    # A module-level __getattr__ (PEP 562, e.g. for lazy imports) stops the
    # interpreter from specializing reads of the module's attributes: every
    # `nursery.sleep(...)` or `asyncio.sleep(...)` (asyncio being
    # nursery.compat) then costs ~30 ns more, about 6% of a task switch.
    module = importlib.import_module(name)
    assert "__getattr__" not in vars(module), (
        f"{name} defines a module-level __getattr__: attribute reads on it are no longer "
        "specialized by the interpreter (measured: +6% per kernel task switch)"
    )


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_name_in_all_is_there(name):
    module = importlib.import_module(name)
    missing = [n for n in getattr(module, "__all__", ()) if n not in vars(module)]
    assert missing == [], f"{name}.__all__ names that the module does not define: {missing}"
