"""seqattn: a plugin-based PyTorch framework for sequence-to-sequence learning.

The public face: the hook marker plugins use, and the core types they implement.
"""

import pluggy

hookimpl = pluggy.HookimplMarker("seqattn")

from seqattn.errors import SeqattnError  # noqa: E402
from seqattn.spec import ComponentSpec, Spec  # noqa: E402

__version__ = "0.1.0"
__all__ = ["hookimpl", "SeqattnError", "ComponentSpec", "Spec", "__version__"]
