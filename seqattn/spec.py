"""Component specs: what a validated recipe entry ``{name: ..., key: value}`` becomes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any, Callable


@dataclass(frozen=True)
class _Kind:
    kind: str


def Spec(kind: str):
    """The annotation of a factory parameter that takes a nested component of ``kind``."""
    return Annotated[ComponentSpec, _Kind(kind)]


@dataclass(frozen=True)
class ComponentSpec:
    """A validated component: build it with the runtime (positional) arguments its factory needs."""

    kind: str
    name: str
    factory: Callable
    kwargs: dict
    path: str

    def build(self, *args):
        return self.factory(*args, **self.kwargs)

    def to_dict(self) -> dict:
        return {"name": self.name, **{k: to_plain(v) for k, v in self.kwargs.items()}}


def to_plain(value: Any) -> Any:
    """Validated values back to YAML-able data (for the resolved recipe)."""
    if isinstance(value, ComponentSpec):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value
