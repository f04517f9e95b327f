"""kind -> name -> factory, each entry remembering the plugin and distribution that provided it."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

from seqattn.errors import SeqattnError

# The component kinds the core knows about. A plugin may add components of these kinds only, so
# that a typo in a kind is caught at registration rather than at lookup.
KINDS = ("tokenizer", "encoder", "attention", "decoder", "model", "task", "corpus")


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Callable
    plugin: str
    distribution: str

    @property
    def module(self) -> str:
        return getattr(self.factory, "__module__", "?")


class Registry:
    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}

    def add(self, kind: str, name: str, factory: Callable, *, plugin: str, distribution: str) -> None:
        if kind not in self._entries:
            raise SeqattnError(
                f"plugin {plugin!r} ({distribution}) registers unknown kind {kind!r}; kinds are: {', '.join(KINDS)}"
            )
        old = self._entries[kind].get(name)
        if old is not None:
            raise SeqattnError(
                f"{kind} {name!r} is registered twice: by plugin {old.plugin!r} of distribution "
                f"{old.distribution!r} and by plugin {plugin!r} of distribution {distribution!r}"
            )
        self._entries[kind][name] = Entry(kind, name, factory, plugin, distribution)

    def get(self, kind: str, name: str) -> Entry:
        known = self._entries.get(kind)
        if known is None:
            raise SeqattnError(f"unknown component kind {kind!r}; kinds are: {', '.join(KINDS)}")
        if name not in known:
            names = sorted(known)
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SeqattnError(f"unknown {kind} {name!r}{hint}; known: {', '.join(names) or 'none'}")
        return known[name]

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries[kind])

    def entries(self) -> list[Entry]:
        return [e for kind in KINDS for _, e in sorted(self._entries[kind].items())]


class Registrar:
    """What the ``seqattn_register`` hook receives: the registry, bound to the calling plugin."""

    def __init__(self, registry: Registry, plugin: str, distribution: str) -> None:
        self._registry = registry
        self.plugin = plugin
        self.distribution = distribution

    def add(self, kind: str, name: str, factory: Callable) -> None:
        self._registry.add(kind, name, factory, plugin=self.plugin, distribution=self.distribution)
