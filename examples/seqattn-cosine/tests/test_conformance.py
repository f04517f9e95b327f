from seqattn_cosine.cosine import CosineScorer


def test_cosine_conforms(scorer_conformance):
    scorer_conformance(CosineScorer)
