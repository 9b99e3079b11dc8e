"""One registry type for every plug-in table (methods, task sources, generators, base-model sources, scorers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Registry(dict):
    """A name -> object table filled by a decorator. Registering a name twice raises; looking up an unknown name
    raises a KeyError that lists the known ones."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self[name] = obj
            return obj
        return deco

    def __missing__(self, name: str):
        raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self))}")
