"""Is the world's text-to-image model evidence? Three preconditions, checked before any composition is scored:

    base prompt-following   the base model draws what its prompt names: the presence classifier finds the prompted
                            (shape, colour) objects in the base model's images of held-out world captions
    scoring CLIP            the CLIP that scores text alignment sees the subjects: for each composition prompt and
                            subject, the prompt is closer to the drawn composition than to it with that subject left out
    subject LoRA alone      each subject LoRA puts its subject in its own prompt's images ("a v3 circle")

A composition of subjects that the LoRAs cannot draw alone, on a base model that does not follow its prompt, scored
by a CLIP blind to what is missing, says nothing about the composition method: the ledger then marks the
text-to-image claims "not testable at this scale".
Each check runs in the job that trained the model (no second model load) and writes `PRECONDITION_FILE` beside it;
`table` gathers them. The stable-diffusion source has no presence oracle, so nothing is checked there.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from molebench.core.io import read_json
from molebench.t2i import plan, world
from molebench.t2i.components import Generator, PresenceClassifier, as_tensor
from molebench.t2i.metrics import image_embeddings, text_embeddings
from molebench.t2i.sampling import generate

PRECONDITION_FILE = "precondition.json"
COLUMNS = ["check", "found", "total", "share", "min_share", "met"]


def _found(classifier: PresenceClassifier, images: torch.Tensor, labels: np.ndarray) -> tuple[int, int]:
    """(prompted objects the classifier finds, prompted objects) over images and their (n, labels) 0/1 rows."""
    with torch.no_grad():
        seen = (classifier(images.cpu()) > 0).numpy()
    wanted = labels.astype(bool)
    return int((seen & wanted).sum()), int(wanted.sum())


def base_prompt_following(gen: Generator, classifier: PresenceClassifier, t2i: dict) -> dict:
    """The base model on `preconditions.images` world captions it was not trained on (the next world seed)."""
    w, ev, n = t2i["world"], t2i["eval"], t2i["preconditions"]["images"]
    _, captions, labels = world.base_dataset(n, w["resolution"], w["max_objects"], t2i["seed"] + 1)
    with torch.no_grad():
        images = torch.cat([generate(gen, captions[i:i + 16], t2i["seed"] * 1000 + i, ev["ddpm_steps"],
                                     ev["guidance"]) for i in range(0, n, 16)])
    found, total = _found(classifier, images, labels)
    return {"check": "base model: prompted objects drawn", "found": found, "total": total, "images": n}


def clip_sees_subjects(clip, tokenizer, pixels: dict, t2i: dict) -> dict:
    """Over every composition prompt and each of its subjects: does the prompt score higher (text alignment) on the
    composition drawn exactly than on it drawn without that subject? A prompt that names no background is drawn on
    the first one."""
    things = {s.name: s.thing for s in world.subjects(t2i["seed"], t2i["world"]["n_subjects"])}
    found = total = 0
    for comp in plan.compositions(t2i):
        for prompt in comp["prompts"]:
            _, on, background = prompt.rpartition(" on ")
            background = background.removesuffix(" background") if on else next(iter(world.BACKGROUNDS))
            scenes = [[things[n] for n in comp["subjects"] if n != left_out] for left_out in [None, *comp["subjects"]]]
            images = as_tensor(np.stack([world.draw(s, background, t2i["world"]["resolution"]) for s in scenes]))
            with torch.no_grad():
                scores = F.cosine_similarity(image_embeddings(clip, pixels, images),
                                             text_embeddings(clip, tokenizer, [prompt]), dim=-1)
            found += int((scores[0] > scores[1:]).sum())
            total += len(scenes) - 1
    return {"check": "scoring CLIP: prompt closer to its composition than with a subject left out", "found": found,
            "total": total}


def subject_alone(gen: Generator, classifier: PresenceClassifier, subject: dict, seed: int, t2i: dict) -> dict:
    """The subject LoRA (already in `gen`) on its own prompt: images in which its (shape, colour) is found."""
    ev, n = t2i["eval"], t2i["preconditions"]["images"]
    with torch.no_grad():
        images = generate(gen, [subject["prompt"]] * n, seed * 1000, ev["ddpm_steps"], ev["guidance"])
    labels = np.zeros((n, classifier.net[-1].out_features), np.float32)
    labels[:, subject["presence"]] = 1
    found, total = _found(classifier, images, labels)
    return {"check": f"subject LoRA alone: {subject['name']} (seed {seed})", "found": found, "total": total,
            "images": n}


def table(files: list[str], min_share: float) -> pd.DataFrame:
    """One row per check (the base model first, the scoring CLIP, then each subject LoRA and seed)."""
    rows = [read_json(f) for f in files]
    out = pd.DataFrame([{k: r[k] for k in ("check", "found", "total")} for r in rows], columns=COLUMNS[:3])
    out["share"] = out.found / out.total.where(out.total > 0)
    out["min_share"] = min_share
    out["met"] = out.share >= min_share
    return out[COLUMNS]


def unmet(preconditions: pd.DataFrame) -> str | None:
    """Why the text-to-image claims cannot be tested, in words, or None when every precondition holds."""
    failing = preconditions[~preconditions.met.astype(bool)]
    if failing.empty:
        return None
    listed = "; ".join(f"{r.check} {r.found}/{r.total} ({r.share:.0%})" for r in failing.itertuples())
    return (f"preconditions not met (at least {failing.min_share.iloc[0]:.0%} found): {listed}; a composition of "
            f"subjects the model cannot draw says nothing about the method")
