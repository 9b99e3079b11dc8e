"""The one denoising loop: DDPM sampling with classifier-free guidance, in pixel space (the world) or VAE latents
(Stable Diffusion). Written out instead of calling StableDiffusionPipeline because MoLE's gate training backpropagates
through the last steps, and because gates need the prompt context around every text-encoder and UNet call.

Gates: one `prompt_positions(None)` context spans a whole generation (None: gates pool over every position). The
text-encoder gates run once per prompt and hold; UNet gates are recomputed at every denoising step, because the UNet's
input changes at every step (`UNET_GATE_PREFIX`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from molebench.core.models import prompt_positions
from molebench.t2i.components import Generator, encode_prompts, from_model_space, text_states

UNET_GATE_PREFIX = "unet."


def generate(gen: Generator, prompts: list[str], seed: int | torch.Generator, steps: int, guidance: float,
             grad_steps: int = 0) -> torch.Tensor:
    """Images in [0, 1], (len(prompts), 3, H, W). The same seed gives the same images on CPU; a generator instead of
    a seed goes on drawing from where an earlier call left it (one prompt's images sampled in several batches).

    grad_steps: the last `grad_steps` denoising steps keep their graph (truncated backpropagation for gate training);
    the others run without gradients.
    """
    rng = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    device = gen.device
    n = len(prompts)
    ids = encode_prompts(gen.tokenizer, [""] * n + list(prompts)).to(device)  # unconditional first, one batch
    scheduler = type(gen.scheduler).from_config(gen.scheduler.config)  # a private copy: set_timesteps mutates it
    scheduler.set_timesteps(steps)
    x = torch.randn((n, *gen.sample_shape), generator=rng).to(device) * scheduler.init_noise_sigma
    with prompt_positions(None) as ctx:
        with torch.set_grad_enabled(grad_steps > 0):
            text = text_states(gen, ids)
        for i, t in enumerate(scheduler.timesteps):
            for key in [k for k in ctx.cache if k[1].startswith(UNET_GATE_PREFIX)]:
                del ctx.cache[key]
            with torch.set_grad_enabled(i >= len(scheduler.timesteps) - grad_steps):
                model_in = scheduler.scale_model_input(torch.cat([x, x]), t)
                uncond, cond = gen.unet(model_in, t, encoder_hidden_states=text).sample.chunk(2)
                pred = uncond + guidance * (cond - uncond)
                x = scheduler.step(pred, t, x, generator=rng).prev_sample
                if i < len(scheduler.timesteps) - grad_steps:
                    x = x.detach()
        return from_model_space(gen, x)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)


def save_png(image: np.ndarray, path: Path, metadata: dict) -> None:
    """PNG with the prompt, seed and method in its text chunks (tEXt), so an image says how it was made."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in metadata.items():
        info.add_text(key, value if isinstance(value, str) else json.dumps(value))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, pnginfo=info)

