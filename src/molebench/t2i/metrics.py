"""CLIP alignment (MoLE Section 4.1, after DreamBooth and SVDiff) and, in the generated world, subject presence.

    text alignment   mean over generated images of cos(CLIP_image(x), CLIP_text(prompt))
    image alignment  per concept: mean over (generated, reference) pairs of cos(CLIP_image(x), CLIP_image(ref))
    presence         per concept: share of generated images in which the world's classifier finds the subject's
                     (shape, colour)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from molebench.t2i.components import clip_pixels, encode_prompts


def text_alignment(image_emb: torch.Tensor, text_emb: torch.Tensor) -> float:
    """(n, d) image embeddings and (n, d) embeddings of each image's prompt -> mean cosine."""
    return F.cosine_similarity(image_emb, text_emb, dim=-1).mean().item()


def image_alignment(image_emb: torch.Tensor, reference_emb: torch.Tensor) -> float:
    """(n, d) generated and (m, d) reference image embeddings -> mean cosine over all n*m pairs."""
    return (F.normalize(image_emb, dim=-1) @ F.normalize(reference_emb, dim=-1).T).mean().item()


def image_embeddings(clip, pixels: dict, images: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> projected CLIP image embeddings (differentiable: gate training uses it)."""
    return clip.get_image_features(pixel_values=clip_pixels(images.to(clip.device), pixels)).pooler_output


def text_embeddings(clip, tokenizer, prompts: list[str]) -> torch.Tensor:
    ids = encode_prompts(tokenizer, prompts).to(clip.device)
    return clip.get_text_features(input_ids=ids).pooler_output


def presence(classifier, images: torch.Tensor, index: int) -> float:
    """Share of images in which the classifier finds label `index` (logit > 0)."""
    with torch.no_grad():
        return (classifier(images.cpu())[:, index] > 0).float().mean().item()
