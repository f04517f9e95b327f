"""Every seqattn hook, in one place.

A plugin is a module (or object) exposing functions decorated with ``seqattn.hookimpl`` whose
names match the specs below. Plugins are found through the ``seqattn`` entry-point group, the
built-in ones included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from seqattn.registry import Registrar

hookspec = pluggy.HookspecMarker("seqattn")


@hookspec
def seqattn_register(registry: Registrar) -> None:
    """Register this plugin's components.

    Called once per plugin when the plugin manager is built. ``registry.add(kind, name, factory)``
    adds one component; ``registry`` knows which plugin and distribution is calling, so listings
    and duplicate errors name them. Importing a plugin module must register nothing by itself.
    Returns nothing.
    """
