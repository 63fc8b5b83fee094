"""A tiny name -> factory registry, so a new strategy, teacher, annotator or task is one file plus one line."""

from collections.abc import Callable
from typing import Generic, TypeVar

from elad.errors import EladError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def add(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._factories[name] = factory
            return factory

        return add

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._factories:
            known = ", ".join(sorted(self._factories))
            raise EladError(f"unknown {self.kind} '{name}'; known: {known}")
        return self._factories[name]

    def create(self, name: str, *args, **kwargs) -> T:
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: str) -> bool:
        return name in self._factories
