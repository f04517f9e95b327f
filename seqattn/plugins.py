"""The pluggy plugin manager: every plugin, built-in or third-party, arrives through the
``seqattn`` entry-point group."""

from __future__ import annotations

import functools
import os
import sys
from importlib.metadata import entry_points

import pluggy

from seqattn import hookspecs
from seqattn.errors import SeqattnError
from seqattn.registry import Registrar, Registry

GROUP = "seqattn"


class PluginManager:
    """Loads plugins, then asks each to register its components into one :class:`Registry`.

    ``failures`` lists ``(distribution, entry point, error)`` for plugins whose import failed; the
    other plugins still load. Names in the environment variable ``SEQATTN_DISABLE_PLUGINS``
    (comma-separated entry-point names) are skipped.
    """

    def __init__(self, extra_plugins: tuple = ()) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.distributions: dict[str, str] = {}
        self.failures: list[tuple[str, str, str]] = []
        disabled = {n.strip() for n in os.environ.get("SEQATTN_DISABLE_PLUGINS", "").split(",") if n.strip()}
        for ep in entry_points(group=GROUP):
            if ep.name in disabled or self.pm.has_plugin(ep.name):
                continue
            dist = ep.dist.name if ep.dist is not None else "?"
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                self.failures.append((dist, ep.name, f"{type(exc).__name__}: {exc}"))
                continue
            self.pm.register(plugin, name=ep.name)
            self.distributions[ep.name] = dist
        for name, plugin in extra_plugins:
            self.pm.register(plugin, name=name)
            self.distributions[name] = "<in-process>"
        self.pm.check_pending()
        self.registry = Registry()
        for impl in self.pm.hook.seqattn_register.get_hookimpls():
            dist = self.distributions.get(impl.plugin_name, "?")
            try:
                impl.function(registry=Registrar(self.registry, impl.plugin_name, dist))
            except SeqattnError:
                raise  # a duplicate name or unknown kind: the user must resolve it
            except Exception as exc:  # its modules failed to import: report it, keep the others
                self.failures.append((dist, impl.plugin_name, f"{type(exc).__name__}: {exc}"))

    def report_failures(self, stream=sys.stderr) -> None:
        for dist, name, err in self.failures:
            print(f"warning: plugin {name!r} of distribution {dist!r} failed to load: {err}", file=stream)


@functools.lru_cache(maxsize=1)
def default_manager() -> PluginManager:
    """The process-wide manager over installed plugins (built once)."""
    return PluginManager()


def get_registry() -> Registry:
    return default_manager().registry
