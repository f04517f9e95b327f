"""The one exception type that means "bad input": the CLI prints it as one line and exits 2."""


class SeqattnError(Exception):
    """A user-facing error: a malformed recipe, an unknown component, a missing file, a corrupt
    checkpoint. The message must be one line that names what is wrong and what was expected."""


class TrainingStopped(Exception):
    """Training cannot go on (e.g. repeated non-finite losses); the last good checkpoint is kept.
    The CLI prints it as one line and exits 1."""
