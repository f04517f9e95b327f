"""Built-in attention scorers. Each lives in its own module; registration happens only here."""

from seqattn import hookimpl


@hookimpl
def seqattn_register(registry):
    from seqattn_attention.additive import AdditiveScorer
    from seqattn_attention.bilinear import BilinearScorer
    from seqattn_attention.ctc import CTCScorer
    from seqattn_attention.dot import DotScorer
    from seqattn_attention.gaussian import GaussianScorer
    from seqattn_attention.location import LocationAwareScorer
    from seqattn_attention.multihead import MultiHeadScorer
    from seqattn_attention.scaled_dot import ScaledDotScorer

    registry.add("attention", "additive", AdditiveScorer)
    registry.add("attention", "bilinear", BilinearScorer)
    registry.add("attention", "dot", DotScorer)
    registry.add("attention", "scaled_dot", ScaledDotScorer)
    registry.add("attention", "gaussian", GaussianScorer)
    registry.add("attention", "location", LocationAwareScorer)
    registry.add("attention", "ctc", CTCScorer)
    registry.add("attention", "multihead", MultiHeadScorer)
