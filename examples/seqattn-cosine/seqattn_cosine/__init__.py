from seqattn import hookimpl


@hookimpl
def seqattn_register(registry):
    from seqattn_cosine.cosine import CosineScorer

    registry.add("attention", "cosine", CosineScorer)
