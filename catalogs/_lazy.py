"""Lazy package exports: ``from package import name`` imports ``name``'s module on first use.

Every package of the project exports its API this way, so ``import flows`` and
``changevg --help`` do not pull in torch, transformers, geopandas or Prefect.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, MutableMapping
from collections.abc import Mapping as MappingT

__all__ = ["lazy_exports"]

Home = str | tuple[str, str]


def lazy_exports(
    package: str, homes: MappingT[str, Home], namespace: MutableMapping[str, object]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``(__getattr__, __dir__)`` pair of a package whose exports live in its modules.

    Args:
        package: The package's ``__name__``.
        homes: Export name → its module (absolute, e.g. ``"flows.monitor"``, or a submodule
            name such as ``"writer"``), or ``(module, attribute)`` to export under another name.
        namespace: The package's ``globals()``; a loaded export is cached there.
    """

    def getattr_(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        home = homes[name]
        module, attr = home if isinstance(home, tuple) else (home, name)
        if "." not in module:
            module = f"{package}.{module}"
        value = getattr(importlib.import_module(module), attr)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted([*namespace, *homes])

    return getattr_, dir_
