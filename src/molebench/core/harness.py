"""Scoring through lm-evaluation-harness: any composed model, wrapped as an `HFLM` built on the model instance, on
lm-eval tasks (registry names, or YAML definitions in a local folder read through `TaskManager(include_path=...)`).

lm-eval's per-sample logs are converted to the project's score files (the same `{task}.json` metrics, 0-100, and
per-example scores in `{task}.predictions.jsonl`), so that tables and the claims ledger's paired statistics treat an
lm-eval task like any other. A task's metric is lm-eval's per-sample value (acc, exact_match, ...) times 100; its mean
is the score (lm-eval's own aggregate is recorded beside it).

Input-dependent compositions (MoLE's gates) decide from the prompt: every model call opens a `prompt_positions`
context. For generation and for encoder-decoder models the prompt is the whole encoder or generation input; for a
decoder-only model's loglikelihood requests lm-eval passes context and continuation as one sequence and does not say
where the context ends, so there the gates read the whole sequence (docs/methods.md states this departure).
"""

from __future__ import annotations

from importlib.metadata import version

from molebench.core.models import prompt_positions
from molebench.core.training import is_seq2seq


def _lm(model, tokenizer, batch_size: int):
    """An HFLM over the model instance whose every model call runs inside a `prompt_positions` context."""
    from lm_eval.models.huggingface import HFLM

    class ComposedLM(HFLM):
        def _model_call(self, inps, attn_mask=None, labels=None):
            with prompt_positions(attn_mask):  # seq2seq: the encoder input is the prompt; causal: None, all of it
                return super()._model_call(inps, attn_mask, labels)

        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            with prompt_positions(generation_kwargs.get("attention_mask")):
                return super()._model_generate(context, max_length, stop, **generation_kwargs)

    return ComposedLM(pretrained=model, tokenizer=tokenizer, backend="seq2seq" if is_seq2seq(model) else "causal",
                      batch_size=batch_size, device=str(model.device))


def _prediction(resps: list) -> str:
    """A sample's answer: the chosen option's index (loglikelihood per option) or the generated text."""
    if resps and isinstance(resps[0], list | tuple):
        return str(max(range(len(resps)), key=lambda i: float(resps[i][0])))
    return str(resps[0]) if resps else ""


def score(model, tokenizer, tasks: dict[str, list[str]], include_path: str | None, registry: bool, batch_size: int,
          num_fewshot: int | None = None, limit: int | None = None) -> dict[str, dict]:
    """Score `model` on lm-eval tasks (name -> the metrics kept) in one `simple_evaluate` run.

    Returns task -> {metrics, n, protocol, predictions} in the layout of `molebench.core.scoring.evaluate`.

    Raises:
        KeyError: a task that lm-eval does not know, that is a group of tasks, or lacks a metric named for it.
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=include_path, include_defaults=registry)
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise KeyError(f"lm-eval knows no task {unknown} (include_path {include_path!r}, registry {registry}); add "
                       f"its YAML to include_path or set lm_eval.registry: true")
    result = lm_eval.simple_evaluate(model=_lm(model, tokenizer, batch_size), tasks=list(tasks),
                                     num_fewshot=num_fewshot, limit=limit, log_samples=True, task_manager=manager,
                                     bootstrap_iters=0)
    out = {}
    for task, metrics in tasks.items():
        samples = sorted(result["samples"].get(task, []), key=lambda s: s["doc_id"])
        if not samples:
            raise KeyError(f"lm-eval task {task!r} logged no samples (a group of tasks?); list its tasks instead")
        absent = [m for m in metrics if m not in samples[0]]
        if absent:
            known = [k for k, v in samples[0].items() if isinstance(v, int | float) and k != "doc_id"]
            raise KeyError(f"lm-eval task {task!r} has no per-sample metric {absent}; it logs {known}")
        per_example = {m: [100.0 * float(s[m]) for s in samples] for m in metrics}
        out[task] = {
            "metrics": {m: round(sum(v) / len(v), 4) for m, v in per_example.items()},
            "n": len(samples),
            "protocol": {"harness": f"lm-eval {version('lm_eval')} simple_evaluate, HFLM on the composed model",
                         "task_version": result["versions"].get(task), "num_fewshot": result["n-shot"].get(task),
                         "limit": limit, "lm_eval_results": result["results"].get(task, {}),
                         "task_config": {k: v for k, v in result["configs"].get(task, {}).items()
                                         if k in ("output_type", "dataset_path", "test_split", "doc_to_text",
                                                  "doc_to_choice", "doc_to_target", "target_delimiter")}},
            "predictions": [{"id": str(s["doc"].get("id", s["doc_id"])) if isinstance(s["doc"], dict) else
                             str(s["doc_id"]), "prediction": _prediction(s["filtered_resps"]),
                             "references": [str(s["target"])],
                             "scores": {m: round(per_example[m][i], 4) for m in metrics}}
                            for i, s in enumerate(samples)],
        }
    return out
