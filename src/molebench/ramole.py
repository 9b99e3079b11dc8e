"""RAMoLE's stages (issue 6): the LoRA pool, LoraRetriever, RouterLoRA training and mixed-task evaluation.

The config's `ramole:` block defines everything (config/config.yaml documents each key); workflow/rules/ramole.smk
runs one job per pool task's data, LoRA (the spine's train_lora script) and LoRA embedding, so adding a task to the
pool adds exactly those jobs and re-embeds nothing else. Then:

    retriever   contrastive instruction fine-tuning of the embedder on `finetune_tasks` (40% of the pool)
    retrieve    top-k LoRAs of every query, IID (whole pool) and OOD (the query's own LoRA removed), with the
                pretrained and the fine-tuned embedder; retrieval accuracy
    router      RouterLoRA trained on the fine-tuning tasks' samples over their retrieved LoRAs, with LoRA dropout
    evaluate    one method on the mixed-task test set (every pool task's test samples, shuffled together), IID or OOD:
                every batch mixes tasks, each sample composes its own retrieved LoRAs in one forward
"""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import torch

from molebench import io
from molebench.data import TaskSpec, pool_tasks

SETTINGS = ("iid", "ood")
EMBEDDERS = ("pretrained", "finetuned")
TABLE_TITLES = {
    "ramole_retrieval": "RAMoLE: LoraRetriever accuracy, IID and OOD, before and after instruction fine-tuning",
    "ramole_mixed_iid": "RAMoLE: mixed-task evaluation, IID (every task's own LoRA is in the pool)",
    "ramole_mixed_ood": "RAMoLE: mixed-task evaluation, OOD (each query's own LoRA removed from the pool)",
}


class RAMoLEConfigError(ValueError):
    pass


def pool(config: dict) -> dict[str, TaskSpec]:
    cfg = config["ramole"]
    return pool_tasks(cfg["pool"], cfg["eval"]["max_new_tokens"])


def check(config: dict) -> None:
    """What the schema cannot say about the `ramole:` block, with messages that name the fix."""
    from molebench import methods

    cfg = config["ramole"]
    try:
        specs = pool(config)
    except (KeyError, ValueError) as err:
        raise RAMoLEConfigError(f"ramole.pool: {err}") from None
    if not specs:
        raise RAMoLEConfigError("ramole.pool is empty: the retriever needs at least k + 1 LoRAs")
    k = cfg["retriever"]["top_k"]
    if len(specs) < k + 1:
        raise RAMoLEConfigError(f"ramole.pool has {len(specs)} LoRAs; OOD top-{k} retrieval needs at least {k + 1}")
    unknown = [t for t in cfg["retriever"]["finetune_tasks"] if t not in specs]
    if unknown:
        raise RAMoLEConfigError(f"ramole.retriever.finetune_tasks: {unknown} are not LoRAs of ramole.pool "
                                f"({', '.join(specs)})")
    for name, entry in cfg["methods"].items():
        try:
            cls = methods.get(name)
        except KeyError as err:
            raise RAMoLEConfigError(f"ramole.methods: {err.args[0]}") from None
        if not hasattr(cls, "route"):
            raise RAMoLEConfigError(f"ramole.methods: {name!r} does not compose retrieved LoRAs; use ramole, "
                                    f"mixture, fusion, selection or oracle")
        try:
            cls.config_class.from_dict((entry or {}).get("options", {}))
        except (TypeError, ValueError) as err:
            raise RAMoLEConfigError(f"ramole.methods.{name}.options: {err}") from None


def evaluations(config: dict) -> list[tuple[str, str]]:
    """(method, setting) pairs: the oracle needs the query's own LoRA, so it has no OOD run."""
    from molebench import methods

    return [(m, s) for m in config["ramole"]["methods"] for s in SETTINGS
            if not (s == "ood" and methods.get(m).own_lora)]


# ---- retriever -------------------------------------------------------------------------------------------------

def finetune_retriever(data_dirs: dict[str, str], cfg: dict, seed: int, out_dir: str) -> None:
    from molebench.retrieval import Embedder, finetune, lora_samples

    rcfg = cfg["retriever"]
    samples = {name: lora_samples(name, Path(d) / "train.jsonl", 10**9) for name, d in data_dirs.items()}
    embedder = Embedder(rcfg["embedder"])
    start = time.time()
    ft = rcfg["finetune"]
    losses = finetune(embedder, samples, rcfg["instruction"], ft["steps"], ft["batch_tasks"], ft["lr"],
                      ft["temperature"], seed)
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        embedder.save(tmp)
        io.write_json(tmp / "run.json", {"tasks": sorted(samples), "losses": losses,
                                         "seconds": round(time.time() - start, 2),
                                         "run_info": io.provenance({"retriever": rcfg}, seed)})


def embed(name: str, data_dir: str, finetuned_dir: str, cfg: dict, out_file: str) -> None:
    """One LoRA's embedding by both embedders: the mean of its first m instruction-prefixed samples."""
    from molebench.retrieval import Embedder, embed_lora, lora_samples

    rcfg = cfg["retriever"]
    samples = lora_samples(name, Path(data_dir) / "train.jsonl", rcfg["samples_per_lora"])
    vectors = {key: embed_lora(Embedder(source), samples, rcfg["instruction"])
               for key, source in zip(EMBEDDERS, (rcfg["embedder"], finetuned_dir))}
    with io.atomic_path(out_file) as tmp:
        torch.save({**vectors, "samples": torch.tensor(len(samples))}, tmp)


def retrieve(embedder_key: str, embedder_source: str, embedding_files: dict[str, str], data_dirs: dict[str, str],
             cfg: dict, out_file: str) -> None:
    """Top-k LoRAs for every test query (IID and OOD) and every router training record (IID), plus accuracy.

    Accuracy: IID, the query's own LoRA is among the top 1 / top k; OOD (own LoRA removed), a LoRA of the query's
    domain is among them. Split by whether the query's task was in the retriever's fine-tuning set."""
    from molebench.retrieval import Embedder, Index

    specs = pool_tasks(cfg["pool"])
    rcfg = cfg["retriever"]
    k = rcfg["top_k"]
    index = Index.from_files(embedding_files, embedder_key)
    embedder = Embedder(embedder_source)
    seen = set(rcfg["finetune_tasks"])
    queries = {}
    for name, d in data_dirs.items():
        for r in io.read_jsonl(Path(d) / "test.jsonl"):
            queries[r["id"]] = {"task": name, "split": "test", "input": r["input"]}
        if name in seen:
            for r in io.read_jsonl(Path(d) / "train.jsonl")[: cfg["router"]["records_per_task"]]:
                queries[r["id"]] = {"task": name, "split": "train", "input": r["input"]}
    ids = list(queries)
    with torch.no_grad():
        vectors = embedder([rcfg["instruction"] + queries[i]["input"] for i in ids])
    own = [queries[i]["task"] for i in ids]
    iid = index.top_k(vectors, k)
    ood = index.top_k(vectors, k, exclude=own)
    rows = []
    for i, qid in enumerate(ids):
        q = queries.pop(qid)
        queries[qid] = {"task": q["task"], "split": q["split"], "iid": iid[i], "ood": ood[i]}
        if q["split"] == "test":
            domain = specs[q["task"]].family
            rows.append({"tasks": "fine-tuning tasks" if q["task"] in seen else "held-out tasks",
                         "iid_top1": iid[i][0] == q["task"], f"iid_top{k}": q["task"] in iid[i],
                         "ood_top1": specs[ood[i][0]].family == domain,
                         f"ood_top{k}": any(specs[n].family == domain for n in ood[i])})
    accuracy = {}
    for part in ("fine-tuning tasks", "held-out tasks", "all tasks"):
        chosen = [r for r in rows if part == "all tasks" or r["tasks"] == part]
        if chosen:
            accuracy[part] = {key: round(100 * sum(r[key] for r in chosen) / len(chosen), 2)
                              for key in chosen[0] if key != "tasks"} | {"queries": len(chosen)}
    io.write_json(out_file, {"embedder": embedder_key, "k": k, "pool": index.names, "accuracy": accuracy,
                             "queries": queries, "run_info": io.provenance({"retriever": rcfg})})


# ---- RouterLoRA and evaluation ----------------------------------------------------------------------------------

def _build(method_name: str, options: dict, base_dir: str, adapter_dirs: dict[str, str]):
    from molebench import methods
    from molebench.adapters import load_expert
    from molebench.models import load_base

    cls = methods.get(method_name)
    method = cls(cls.config_class.from_dict(options))
    model, tokenizer = load_base(base_dir)
    experts = [load_expert(d, model, name=name) for name, d in adapter_dirs.items()]
    return method, method.build(model, experts), tokenizer


def train_router(base_dir: str, adapter_dirs: dict[str, str], data_dirs: dict[str, str], retrieval_file: str,
                 cfg: dict, seed: int, out_dir: str) -> None:
    from molebench.pipeline import checkpoint_dir
    from molebench.training import TrainConfig, Trainer, seed_everything

    seed_everything(seed)
    entry = cfg["methods"]["ramole"] or {}
    method, model, tokenizer = _build("ramole", entry.get("options", {}), base_dir, adapter_dirs)
    retrieved = io.read_json(retrieval_file)["queries"]
    names = list(adapter_dirs)
    records = []
    for task in cfg["retriever"]["finetune_tasks"]:
        for r in io.read_jsonl(Path(data_dirs[task]) / "train.jsonl")[: cfg["router"]["records_per_task"]]:
            records.append({**r, "lora_indices": [names.index(n) for n in retrieved[r["id"]]["iid"]]})
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        trainer = Trainer(TrainConfig.from_dict(cfg["router"]["train"]), seed, tmp / "train_log.jsonl",
                          f"ramole router seed {seed}", checkpoint_dir(out_dir))
        info = method.fit(model, tokenizer, records, trainer)
        method.save(model, tmp)
        io.write_json(tmp / "run.json", {"train_info": info, "pool": names, "run_info": io.provenance(
            {"ramole": entry, "router": cfg["router"]}, seed)})
    shutil.rmtree(checkpoint_dir(out_dir), ignore_errors=True)


def mixed_test_set(data_dirs: dict[str, str], per_task: int, seed: int) -> list[dict]:
    """The first `per_task` test samples of every pool task, shuffled together so that every batch mixes tasks."""
    records = [{**r, "task": task} for task, d in data_dirs.items()
               for r in io.read_jsonl(Path(d) / "test.jsonl")[:per_task]]
    random.Random(seed).shuffle(records)
    return records


def evaluate(method_name: str, setting: str, base_dir: str, adapter_dirs: dict[str, str], data_dirs: dict[str, str],
             retrieval_file: str, router_dir: str | None, cfg: dict, seed: int, out_dir: str) -> None:
    from molebench.scoring import SCORERS, generate
    from molebench.training import seed_everything

    seed_everything(seed)
    ecfg = cfg["eval"]
    method, model, tokenizer = _build(method_name, (cfg["methods"][method_name] or {}).get("options", {}), base_dir,
                                      adapter_dirs)
    if router_dir:
        method.load(model, router_dir)
    names = list(adapter_dirs)
    retrieved = io.read_json(retrieval_file)["queries"]
    records = mixed_test_set(data_dirs, ecfg["per_task"], seed)
    start = time.time()
    predictions = []
    for b in range(0, len(records), ecfg["batch_size"]):
        batch = records[b:b + ecfg["batch_size"]]
        method.route([[names.index(r["task"])] if method.own_lora else
                      [names.index(n) for n in retrieved[r["id"]][setting]] for r in batch])
        predictions += generate(model, tokenizer, [r["input"] for r in batch], ecfg["max_new_tokens"],
                                ecfg["max_input_tokens"], len(batch), ecfg.get("bf16", False))
    specs = pool_tasks(cfg["pool"])
    tasks = {}
    for task in names:
        mine = [(r, p) for r, p in zip(records, predictions) if r["task"] == task]
        refs, preds = [r["references"] for r, _ in mine], [p for _, p in mine]
        tasks[task] = {"domain": specs[task].family, "n": len(mine),
                       "metrics": {m: round(SCORERS[m](preds, refs), 4) for m in ("exact_match", "rougeL")}}
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        io.write_jsonl(tmp / "predictions.jsonl", [
            {"id": r["id"], "task": r["task"], "loras": retrieved[r["id"]][setting] if not method.own_lora
             else [r["task"]], "prediction": p, "references": r["references"]} for r, p in zip(records, predictions)])
        io.write_json(tmp / "metrics.json", {
            "method": method_name, "setting": setting, "tasks": tasks, "n": len(records),
            "seconds": round(time.time() - start, 2),
            "protocol": {"decoding": f"greedy, max_new_tokens={ecfg['max_new_tokens']}, cut at first newline",
                         "batches": "mixed tasks, one forward per batch, per-sample LoRA sets",
                         "metrics": "exact match (lower-cased, whitespace squeezed) and ROUGE-L"},
            "run_info": io.provenance({"method": cfg["methods"][method_name], "eval": ecfg, "setting": setting},
                                      seed)})
