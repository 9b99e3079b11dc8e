"""One scorer registry and one evaluation routine for every method.

Scores are on a 0-100 scale, as the papers report them. Generation is greedy and batched with the KV cache;
multiple choice picks the option with the highest summed log-likelihood (lm-eval's `acc`). Every score file records
its protocol (decoding, prompt, metric implementation and version).
"""

from __future__ import annotations

from importlib.metadata import version

import torch
from tqdm.auto import tqdm

from molebench.core.data import TaskSpec
from molebench.core.models import prompt_positions
from molebench.core.registry import Registry
from molebench.core.training import (
    BF16,
    answer_logprobs,
    autocast,
    collate,
    count_over_long,
    encode_answer,
    encode_prompt,
    is_seq2seq,
    uses_bf16,
)

# name -> fn(predictions, references: list[list[str]]) -> float in [0, 100]
SCORERS = Registry("metric")
# name -> fn(predictions, references) -> one score per example in [0, 100], for statistics paired example by example
# (the claims ledger); its mean is the corpus score except for BLEU, whose per-example score is sentence BLEU
EXAMPLE_SCORERS = Registry("per-example metric")
SCORER_IMPL: dict[str, str] = {}  # name -> implementation and version, recorded in every score file


def register_scorer(name: str, implementation: str):
    SCORER_IMPL[name] = implementation
    return SCORERS.register(name)


def per_example(name: str):
    """Register fn(prediction, references) -> float as the per-example score of metric `name`."""
    def deco(fn):
        EXAMPLE_SCORERS.register(name)(lambda predictions, references: [fn(p, r) for p, r in
                                                                         zip(predictions, references)])
        return fn
    return deco


def normalise(text: str) -> str:
    """Lower-case and squeeze whitespace (RAMoLE's protocol). Punctuation and signs are kept: they are the answer in
    Dyck languages, arithmetic and option letters."""
    return " ".join(text.lower().split())


@per_example("exact_match")
def _exact_match_one(prediction: str, references: list[str]) -> float:
    return 100.0 * any(normalise(prediction) == normalise(r) for r in references)


@register_scorer("exact_match", "molebench normalise(): lower-case, whitespace squeezed")
def exact_match(predictions: list[str], references: list[list[str]]) -> float:
    hits = [any(normalise(p) == normalise(r) for r in refs) for p, refs in zip(predictions, references)]
    return 100.0 * sum(hits) / len(hits)


@register_scorer("bleu", f"sacrebleu {version('sacrebleu')} corpus_bleu, default 13a tokenisation")
def bleu(predictions: list[str], references: list[list[str]]) -> float:
    import sacrebleu

    width = max(len(r) for r in references)
    # sacrebleu wants one stream per reference position; pad short reference lists with their first reference
    streams = [[refs[i] if i < len(refs) else refs[0] for refs in references] for i in range(width)]
    return sacrebleu.corpus_bleu(predictions, streams).score


@per_example("bleu")
def _sentence_bleu(prediction: str, references: list[str]) -> float:
    import sacrebleu

    return sacrebleu.sentence_bleu(prediction, references).score


def _best_fmeasures(kind: str, predictions: list[str], references: list[list[str]]) -> list[float]:
    """Best reference per example (multi-reference tasks such as WebNLG), F-measure."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer([kind], use_stemmer=True)
    return [max(scorer.score(r, p)[kind].fmeasure for r in refs) for p, refs in zip(predictions, references)]


def _rouge(kind: str):
    def score(predictions: list[str], references: list[list[str]]) -> float:
        best = _best_fmeasures(kind, predictions, references)
        return 100.0 * sum(best) / len(best)
    return score


for _kind in ("rouge1", "rouge2", "rougeL"):
    register_scorer(_kind, f"rouge-score {version('rouge-score')} {_kind} F1, stemmer, best reference")(_rouge(_kind))
    EXAMPLE_SCORERS.register(_kind)(lambda predictions, references, kind=_kind: [
        100.0 * f for f in _best_fmeasures(kind, predictions, references)])


@per_example("accuracy")
def _accuracy_one(prediction: str, references: list[str]) -> float:
    return 100.0 * (prediction == references[0])


@register_scorer("accuracy", "argmax of summed option log-likelihood (lm-eval acc)")
def accuracy(predictions: list[str], references: list[list[str]]) -> float:
    hits = [p == refs[0] for p, refs in zip(predictions, references)]
    return 100.0 * sum(hits) / len(hits)


def cut_at_stop(text: str) -> str:
    """Answers are one line: keep generation up to the first newline."""
    return text.split("\n")[0].strip()


def stop_at_newline(tokenizer) -> list:
    """Stop a row at its first newline, where cut_at_stop would cut it anyway: the same answers, without generating
    the rest (a base model zero-shot rambles to max_new_tokens). A vocabulary that cannot write a newline (the tiny
    test tokenizers) needs no stop."""
    from transformers import StopStringCriteria

    try:
        return [StopStringCriteria(tokenizer, ["\n"])]
    except ValueError:
        return []


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], max_new_tokens: int, max_input_tokens: int, batch_size: int,
             bf16: BF16 = False, desc: str | None = None) -> list[str]:
    """Greedy answers, one line each; with `desc`, a progress bar over the batches (elapsed and time left)."""
    seq2seq = is_seq2seq(model)
    stop = stop_at_newline(tokenizer)
    outputs = []
    starts = range(0, len(prompts), batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", mininterval=5) if desc else starts:
        ids = [encode_prompt(tokenizer, p, max_input_tokens) for p in prompts[start:start + batch_size]]
        batch = {k: v.to(model.device) for k, v in collate(tokenizer, [(p, []) for p in ids], seq2seq,
                                                           pad_left=not seq2seq).items()}
        with prompt_positions(batch["prompt_mask"]), autocast(bf16, model.device):
            out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                 max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                                 stopping_criteria=stop)
        new = out if seq2seq else out[:, batch["input_ids"].shape[1]:]
        outputs += [cut_at_stop(t) for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    return outputs


@torch.no_grad()
def option_loglikelihoods(model, tokenizer, records: list[dict], max_input_tokens: int, batch_size: int,
                          bf16: BF16 = False) -> list[list[float]]:
    """Summed log-likelihood of each option given the prompt (the option follows after one space)."""
    pairs = [(encode_prompt(tokenizer, r["input"], max_input_tokens), encode_answer(tokenizer, o, 64, add_eos=False))
             for r in records for o in r["options"]]
    flat = []
    for start in range(0, len(pairs), batch_size):
        batch = collate(tokenizer, pairs[start:start + batch_size], is_seq2seq(model))
        with autocast(bf16, model.device):
            flat += answer_logprobs(model, batch).sum(-1).tolist()
    out, k = [], 0
    for r in records:
        out.append(flat[k:k + len(r["options"])])
        k += len(r["options"])
    return out


@torch.no_grad()
def label_logits(model, tokenizer, records: list[dict], max_input_tokens: int, batch_size: int,
                 bf16: BF16 = False) -> list[list[float]]:
    """The official MixLoRA protocol: the logits at the prompt's last position (the first answer position of a
    seq2seq decoder), read at each option's first token. Options of a record must start with different tokens."""
    firsts = []
    for r in records:
        ids = [encode_answer(tokenizer, o, 1, add_eos=False)[0] for o in r["options"]]
        if len(set(ids)) < len(ids):
            raise ValueError(f"record {r['id']}: options {r['options']} share a first token, so the label-logit "
                             f"protocol cannot tell them apart; score this task with mc_scoring: loglikelihood")
        firsts.append(ids)
    seq2seq = is_seq2seq(model)
    out = []
    for start in range(0, len(records), batch_size):
        chunk = records[start:start + batch_size]
        pairs = [(encode_prompt(tokenizer, r["input"], max_input_tokens), [firsts[start + i][0]] if seq2seq else [])
                 for i, r in enumerate(chunk)]
        batch = {k: v.to(model.device) for k, v in collate(tokenizer, pairs, seq2seq, pad_left=not seq2seq).items()}
        with prompt_positions(batch["prompt_mask"]), autocast(bf16, model.device):
            if seq2seq:  # one decoder position: the label is only there to make the decoder's input
                last = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             labels=batch["labels"]).logits[:, 0]
            else:  # left padded: the last position is every prompt's last token
                last = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             logits_to_keep=1).logits[:, -1]
        out += [last[i, firsts[start + i]].float().tolist() for i in range(len(chunk))]
    return out


MC_SCORING = {"loglikelihood": (option_loglikelihoods, "option log-likelihood (sum), no generation"),
              "label_logit": (label_logits, ("last-token logit of each option's first token (official MixLoRA), "
                                             "no generation"))}


def evaluate(model, tokenizer, spec: TaskSpec, records: list[dict], batch_size: int = 8, max_input_tokens: int = 160,
             bf16: BF16 = False, mc_scoring: str = "loglikelihood") -> dict:
    """Score `model` on `records` of task `spec` with every metric the task names; multiple choice by `mc_scoring`
    (a key of MC_SCORING)."""
    unknown = [m for m in spec.metrics if m not in SCORERS]
    if unknown:
        raise KeyError(f"task {spec.name}: unknown metric(s) {unknown}; known: {sorted(SCORERS)}")
    if spec.answer == "multiple_choice":
        score_options, decoding = MC_SCORING[mc_scoring]
        scores = score_options(model, tokenizer, records, max_input_tokens, batch_size, bf16)
        predictions = [r["options"][max(range(len(s)), key=s.__getitem__)] for r, s in zip(records, scores)]
    else:
        predictions = generate(model, tokenizer, [r["input"] for r in records], spec.max_new_tokens,
                               max_input_tokens, batch_size, bf16, desc=f"score {spec.name}")
        decoding = f"greedy, max_new_tokens={spec.max_new_tokens}, cut at first newline, KV cache"
    references = [r["references"] for r in records]
    example_scores = {m: EXAMPLE_SCORERS[m](predictions, references) for m in spec.metrics}
    return {
        "metrics": {m: round(SCORERS[m](predictions, references), 4) for m in spec.metrics},
        "n": len(records),
        "protocol": {"decoding": decoding, "mc_scoring": mc_scoring if spec.answer == "multiple_choice" else None,
                     "template": spec.template, "task_version": spec.version,
                     "max_input_tokens": max_input_tokens, "bf16": uses_bf16(bf16, model.device),
                     "truncated_prompts": count_over_long(tokenizer, [r["input"] for r in records], max_input_tokens),
                     "metric_implementations": {m: SCORER_IMPL[m] for m in spec.metrics}},
        "predictions": [{"id": r["id"], "prediction": p, "references": r["references"],
                         "scores": {m: round(example_scores[m][i], 4) for m in spec.metrics}}
                        for i, (r, p) in enumerate(zip(records, predictions))],
    }
