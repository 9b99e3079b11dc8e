"""Method plug-ins: one module per method in this folder, each registering itself with `@register_method`.

Modules are discovered by file name (heavy dependencies are imported inside the methods that need them), and
installed packages can add methods through the `molebench.methods` entry-point group.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points

from molebench.method import Method
from molebench.registry import Registry

REGISTRY = Registry("method")


def register_method(name: str):
    def deco(cls: type[Method]) -> type[Method]:
        cls.name = name
        return REGISTRY.register(name)(cls)
    return deco


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    for ep in entry_points(group="molebench.methods"):
        ep.load()


_discovered = False


def available() -> dict[str, type[Method]]:
    global _discovered
    if not _discovered:  # a flag, not `if not REGISTRY`: importing one method module directly must not stop discovery
        _discovered = True
        _discover()
    return dict(sorted(REGISTRY.items()))


def get(name: str) -> type[Method]:
    available()
    return REGISTRY[name]
