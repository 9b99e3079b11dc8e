"""RAMoLE's stages (issue 6): LoraRetriever, RouterLoRA training and mixed-task evaluation.

The config's `ramole:` block defines everything (config/config.yaml documents each key); workflow/rules/ramole.smk
runs one job per pool task's data and LoRA (the shared train_lora stage), so adding a task to the pool trains only
its LoRA, and one job per run seed that embeds every pool LoRA (seconds of work, where a job per LoRA spent most of
its time starting). Then:

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
from tqdm.auto import tqdm

from molebench.core import io
from molebench.core.composition import load_composition, save_trained
from molebench.core.data import pool_tasks
from molebench.core.runtime import checkpoint_dir
from molebench.core.scoring import SCORERS, generate
from molebench.core.training import TrainConfig, Trainer, seed_everything
from molebench.ramole.plan import EMBEDDERS, MIXED_METRICS
from molebench.ramole.retrieval import Embedder, Index, embed_lora, finetune, lora_samples, request

# ---- retriever -------------------------------------------------------------------------------------------------

def finetune_retriever(data_dirs: dict[str, str], cfg: dict, seed: int, out_dir: str) -> None:
    rcfg = cfg["retriever"]
    specs = pool_tasks(cfg["pool"])
    samples = {name: [request(specs[name], x) for x in lora_samples(name, Path(d) / "train.jsonl", 10**9)]
               for name, d in data_dirs.items()}
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


def embed(data_dirs: dict[str, str], finetuned_dir: str, cfg: dict, out_files: dict[str, str]) -> None:
    """Each pool LoRA's embedding by both embedders: the mean of its first m samples, as requests,
    instruction-prefixed. One run's LoRAs in one job: both embedders load once."""
    rcfg = cfg["retriever"]
    specs = pool_tasks(cfg["pool"])
    embedders = {key: Embedder(source) for key, source in zip(EMBEDDERS, (rcfg["embedder"], finetuned_dir))}
    for name, data_dir in data_dirs.items():
        samples = [request(specs[name], x)
                   for x in lora_samples(name, Path(data_dir) / "train.jsonl", rcfg["samples_per_lora"])]
        vectors = {key: embed_lora(embedder, samples, rcfg["instruction"]) for key, embedder in embedders.items()}
        with io.atomic_path(out_files[name]) as tmp:
            torch.save({**vectors, "samples": torch.tensor(len(samples))}, tmp)


def retrieve(embedding_files: dict[str, str], data_dirs: dict[str, str], finetuned_dir: str, cfg: dict,
             out_file: str) -> None:
    """Top-k LoRAs of every test query (IID and OOD) and of every router training record, with each embedder."""
    rcfg = cfg["retriever"]
    sources = dict(zip(EMBEDDERS, (rcfg["embedder"], finetuned_dir)))
    io.write_json(out_file, {key: _retrieve(key, source, embedding_files, data_dirs, cfg) for key, source in
                             sources.items()} | {"run_info": io.provenance({"retriever": rcfg})})


def _retrieve(embedder_key: str, embedder_source: str, embedding_files: dict[str, str], data_dirs: dict[str, str],
              cfg: dict) -> dict:
    """Accuracy: IID, the query's own LoRA is among the top 1 / top k; OOD (own LoRA removed), a LoRA of the query's
    domain is. Split by whether the query's task was in the retriever's fine-tuning set."""
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
        vectors = embedder([rcfg["instruction"] + request(specs[queries[i]["task"]], queries[i]["input"]) for i in ids])
    own = [queries[i]["task"] for i in ids]
    iid = index.top_k(vectors, k)
    ood = index.top_k(vectors, k, exclude=own)
    rows, out = [], {}
    for i, qid in enumerate(ids):
        task, split = queries[qid]["task"], queries[qid]["split"]
        out[qid] = {"task": task, "split": split, "iid": iid[i], "ood": ood[i]}
        if split == "test":
            domain = specs[task].family
            rows.append({"tasks": "fine-tuning tasks" if task in seen else "held-out tasks",
                         "iid_top1": iid[i][0] == task, f"iid_top{k}": task in iid[i],
                         "ood_top1": specs[ood[i][0]].family == domain,
                         f"ood_top{k}": any(specs[n].family == domain for n in ood[i])})
    accuracy = {}
    for part in ("fine-tuning tasks", "held-out tasks", "all tasks"):
        chosen = [r for r in rows if part == "all tasks" or r["tasks"] == part]
        if chosen:
            accuracy[part] = {key: round(100 * sum(r[key] for r in chosen) / len(chosen), 2)
                              for key in chosen[0] if key != "tasks"} | {"queries": len(chosen)}
    return {"k": k, "pool": index.names, "accuracy": accuracy, "queries": out}


# ---- RouterLoRA and evaluation ----------------------------------------------------------------------------------

def train_router(base_dir: str, adapter_dirs: dict[str, str], data_dirs: dict[str, str], retrieval_file: str,
                 cfg: dict, seed: int, out_dir: str) -> None:
    seed_everything(seed)
    entry = cfg["methods"]["ramole"] or {}
    method, model, tokenizer, _ = load_composition("ramole", entry.get("options", {}), base_dir, adapter_dirs)
    retrieved = io.read_json(retrieval_file)["finetuned"]["queries"]
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
        save_trained(method, model, adapter_dirs, tmp)
        io.write_json(tmp / "run.json", {"train_info": info, "pool": names, "run_info": io.provenance(
            {"ramole": entry, "router": cfg["router"]}, seed)})
    shutil.rmtree(checkpoint_dir(out_dir), ignore_errors=True)


def mixed_test_set(data_dirs: dict[str, str], per_task: int, seed: int) -> list[dict]:
    """The first `per_task` test samples of every pool task, shuffled together so that every batch mixes tasks; drawn
    with the pool's seed, so that every run seed scores the same queries (the ledger pairs them)."""
    records = [{**r, "task": task} for task, d in data_dirs.items()
               for r in io.read_jsonl(Path(d) / "test.jsonl")[:per_task]]
    random.Random(seed).shuffle(records)
    return records


def evaluate(method_name: str, settings: list[str], base_dir: str, adapter_dirs: dict[str, str],
             data_dirs: dict[str, str], retrieval_file: str, router_dir: str | None, cfg: dict, seed: int,
             out_dir: str) -> None:
    """Score one method on the mixed-task test set in each setting: out_dir/{setting}.metrics.json (+ predictions);
    `seed` is the run's (its retrieval and router), the test set the pool's."""
    seed_everything(seed)
    method, model, tokenizer, _ = load_composition(method_name, (cfg["methods"][method_name] or {}).get("options", {}),
                                                   base_dir, adapter_dirs)
    if router_dir:
        method.load(model, router_dir)
    retrieved = io.read_json(retrieval_file)["finetuned"]["queries"]
    records = mixed_test_set(data_dirs, cfg["eval"]["per_task"], cfg["seed"])
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for setting in settings:
            metrics, predictions = _score_mixed(method, model, tokenizer, list(adapter_dirs), records, retrieved,
                                                setting, cfg)
            io.write_jsonl(tmp / f"{setting}.predictions.jsonl", predictions)
            io.write_json(tmp / f"{setting}.metrics.json", {**metrics, "method": method_name, "run_info": io.provenance(
                {"method": cfg["methods"][method_name], "eval": cfg["eval"], "setting": setting}, seed)})


def _score_mixed(method, model, tokenizer, names: list[str], records: list[dict], retrieved: dict, setting: str,
                 cfg: dict) -> tuple[dict, list[dict]]:
    ecfg = cfg["eval"]
    start = time.time()
    loras = [[r["task"]] if method.own_lora else retrieved[r["id"]][setting] for r in records]
    outputs = []
    for b in tqdm(range(0, len(records), ecfg["batch_size"]), desc=f"{setting} mixed-task test set", unit="batch",
                  mininterval=5):
        batch = records[b:b + ecfg["batch_size"]]
        method.route([[names.index(n) for n in chosen] for chosen in loras[b:b + ecfg["batch_size"]]])
        outputs += generate(model, tokenizer, [r["input"] for r in batch], ecfg["max_new_tokens"],
                            ecfg["max_input_tokens"], len(batch), ecfg.get("bf16", False))
    specs = pool_tasks(cfg["pool"])
    tasks = {}
    for task in names:
        mine = [(r, p) for r, p in zip(records, outputs) if r["task"] == task]
        refs, preds = [r["references"] for r, _ in mine], [p for _, p in mine]
        tasks[task] = {"domain": specs[task].family, "n": len(mine),
                       "metrics": {m: round(SCORERS[m](preds, refs), 4) for m in MIXED_METRICS}}
    metrics = {"setting": setting, "tasks": tasks, "n": len(records), "seconds": round(time.time() - start, 2),
               "protocol": {"decoding": f"greedy, max_new_tokens={ecfg['max_new_tokens']}, cut at first newline",
                            "batches": f"{ecfg['batch_size']} samples of mixed tasks per forward, each with its own "
                                       f"LoRA set", "metrics": "exact match (lower-cased, whitespace squeezed), "
                                                              "ROUGE-L F1"}}
    predictions = [{"id": r["id"], "task": r["task"], "loras": chosen, "prediction": p, "references": r["references"]}
                   for r, chosen, p in zip(records, loras, outputs)]
    return metrics, predictions
