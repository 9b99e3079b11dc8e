"""Per-example scores (for the ledger's paired statistics) agree with the corpus scores they come from."""

import pytest
import torch

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


def char_tokenizer_with_newline():
    """A real fast tokenizer whose vocabulary is single characters, newline included (the tiny SentencePiece
    tokenizers of the other tests cannot write one)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = ["<pad>", "<s>", "</s>", "<unk>", "\n", " ", *"abcdefghijklmnopqrstuvwxyz"]
    raw = Tokenizer(models.WordLevel({c: i for i, c in enumerate(chars)}, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    raw.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def test_generation_stops_at_the_first_newline_with_the_same_answers(monkeypatch):
    from transformers import LlamaConfig, LlamaForCausalLM

    from molebench.core import scoring

    tokenizer = char_tokenizer_with_newline()
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)).eval()
    newline, d = tokenizer.convert_tokens_to_ids(["\n", "d"])
    model.lm_head.weight.data[newline] = model.lm_head.weight.data[d]  # a tie: greedy writes a newline for each "d"
    prompts = [" ".join("abcdefgh"[j:j + i % 5 + 1] for j in range(3)) for i in range(16)]
    stopped = scoring.generate(model, tokenizer, prompts, 24, 32, 8)
    monkeypatch.setattr(scoring, "stop_at_newline", lambda tokenizer: [])
    full = scoring.generate(model, tokenizer, prompts, 24, 32, 8)
    assert stopped == full
    # the stop mattered: without it, some rows went on past a newline (checked on the raw continuations)
    ids = tokenizer(prompts[:8], return_tensors="pt", padding=True, padding_side="left")
    raw = tokenizer.batch_decode(model.generate(**ids, max_new_tokens=24, do_sample=False,
                                                pad_token_id=tokenizer.pad_token_id)[:, ids["input_ids"].shape[1]:],
                                 skip_special_tokens=True)
    assert any("\n" in text.rstrip("\n") for text in raw)
