"""Per-example scores (for the ledger's paired statistics) agree with the corpus scores they come from."""

import pytest

from molebench.core.scoring import EXAMPLE_SCORERS, SCORERS

PREDICTIONS = ["the cat sat", "a dog", "x", "The Cat"]
REFERENCES = [["the cat sat on"], ["a dog", "the dog"], ["y"], ["the cat"]]


@pytest.mark.parametrize("metric", ["exact_match", "rouge1", "rouge2", "rougeL", "accuracy"])
def test_per_example_scores_average_to_the_corpus_score(metric):
    scores = EXAMPLE_SCORERS[metric](PREDICTIONS, REFERENCES)
    assert len(scores) == len(PREDICTIONS) and all(0 <= s <= 100 for s in scores)
    assert sum(scores) / len(scores) == pytest.approx(SCORERS[metric](PREDICTIONS, REFERENCES))


def test_bleu_per_example_is_sentence_bleu():
    scores = EXAMPLE_SCORERS["bleu"](PREDICTIONS, REFERENCES)
    assert scores[1] == pytest.approx(100) and scores[2] == 0  # an exact reference, and nothing in common
    assert set(EXAMPLE_SCORERS) == set(SCORERS)  # every metric can be paired example by example
