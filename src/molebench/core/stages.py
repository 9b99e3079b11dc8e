"""The stages every track shares, as plain functions: the base model, the BIG-bench archive and per-task LoRAs (task
splits are written by `molebench.core.data.write_splits`, which needs no torch). Workflow scripts are thin adapters
over these (and over each track's `stages`), so every stage also runs without Snakemake."""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.request
from pathlib import Path

from molebench.core import io
from molebench.core.data import BIGBENCH_ARCHIVE, TaskSpec
from molebench.core.models import load_base, materialise_base
from molebench.core.runtime import GAIN_FILE, checkpoint_dir
from molebench.core.scoring import evaluate
from molebench.core.training import TrainConfig
from molebench.core.training import train_lora as train

BIGBENCH_INDEX = "https://pypi.org/simple/bigbench/"  # PyPI's simple index (JSON form, PEP 691)
BIGBENCH_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"  # bigbench-1.0.0.tar.gz on PyPI


def base_model(model_cfg: dict, out_dir: str) -> None:
    materialise_base(model_cfg, out_dir)


def bigbench_archive(raw_dir: str) -> None:
    """Download the bigbench sdist (358 MB) from PyPI into raw_dir and check its sha256; its task files are streamed
    from it, never unpacked. Not `pip download`: pip 26 builds the sdist's metadata and then refuses it, because
    bigbench declares a direct URL dependency (bleurt)."""
    target = Path(raw_dir) / BIGBENCH_ARCHIVE
    digest = hashlib.sha256()
    try:
        index = urllib.request.Request(BIGBENCH_INDEX, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(index, timeout=60) as reply:
            urls = [f["url"] for f in json.load(reply)["files"] if f["filename"] == BIGBENCH_ARCHIVE]
        if not urls:  # seen on 2026-12-05: PyPI lists only bigbench 0.0.1
            raise RuntimeError(f"PyPI no longer lists {BIGBENCH_ARCHIVE}: put a copy of it (sha256 {BIGBENCH_SHA256}) "
                               f"at {target}, or leave the BIG-bench tasks out of the config's groups (the mini "
                               "config's own tasks are generated and need no archive)")
        url = urls[0]
        with io.atomic_path(target) as tmp, urllib.request.urlopen(url, timeout=60) as reply, open(tmp, "wb") as out:
            while chunk := reply.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
            if digest.hexdigest() != BIGBENCH_SHA256:
                raise RuntimeError(f"{url}: sha256 {digest.hexdigest()}, expected {BIGBENCH_SHA256}")
    except OSError as error:  # urllib's errors are OSErrors
        raise RuntimeError(f"could not download {BIGBENCH_ARCHIVE} from PyPI ({error}): put it (from "
                           f"https://pypi.org/project/bigbench/1.0.0/#files) at {target}") from error


def train_lora(base_dir: str, task: str, data_dir: str, lora_cfg: dict, train_cfg: dict, seed: int,
               out_dir: str, gain_spec: TaskSpec | None = None, eval_cfg: dict | None = None) -> None:
    """One per-task LoRA. With `gain_spec` (pool LoRAs), the same job also scores the task's test split with the base
    model before training and with the LoRA after, into gain.json: the pool's gain check costs no extra job and no
    second model load (`eval_cfg`: batch_size, max_input_tokens)."""
    model, tokenizer = load_base(base_dir)
    records = io.read_jsonl(Path(data_dir) / "train.jsonl")
    test = io.read_jsonl(Path(data_dir) / "test.jsonl") if gain_spec else []
    zero_shot = _score(model, tokenizer, gain_spec, test, eval_cfg) if gain_spec else None  # before the LoRA exists
    with io.atomic_path(out_dir) as tmp:
        info = train(model, tokenizer, records, lora_cfg, TrainConfig.from_dict(train_cfg), seed, tmp,
                     desc=f"lora {task} seed {seed}", checkpoint_dir=checkpoint_dir(out_dir))
        run_info = io.provenance({"lora": lora_cfg, "train": train_cfg, "base": str(base_dir)}, seed)
        io.write_json(tmp / "run.json", {"task": task, "train_info": info, "run_info": run_info})
        if gain_spec:  # PEFT injected the LoRA into `model` in place: it now scores with the LoRA
            io.write_json(tmp / GAIN_FILE, {"task": task, "family": gain_spec.family, "metric": gain_spec.metrics[0],
                                            "n": len(test), "zero_shot": zero_shot,
                                            "lora": _score(model.eval(), tokenizer, gain_spec, test, eval_cfg),
                                            "run_info": run_info})
    shutil.rmtree(checkpoint_dir(out_dir), ignore_errors=True)


def _score(model, tokenizer, spec: TaskSpec, records: list[dict], eval_cfg: dict) -> list[float]:
    scored = evaluate(model, tokenizer, spec, records, eval_cfg["batch_size"], eval_cfg["max_input_tokens"])
    return [p["scores"][spec.metrics[0]] for p in scored["predictions"]]
