"""The text-to-image DAG stages as plain functions (workflow/rules/t2i.smk calls each through a thin script; tests call
them directly). `t2i` is the config's `t2i` section. Every output folder is written atomically.

    world      world/     subjects.json, subjects/<name>.npz (reference images); world source only:
                          base.npz + captions.json (the generated data)
    presence   presence/  the world's presence classifier (world source only)
    base       base/      the text-to-image model (world: trained here, with its prompt-following check
                          precondition.json; paper: source.json naming the local SD folder)
    clip       clip/      the scoring CLIP (world: trained here; paper: source.json naming a local CLIP folder)
    subject    subjects/<subject>/seed<s>/          DreamBooth LoRA (unet/, text_encoder/ PEFT folders; world:
                                                    precondition.json, the subject drawn alone)
    shifts     shifts/<variant>/<subject>/seed<s>/  SVDiff spectral shifts
                          (subjects and shifts: the world's library, trained once with s = t2i.seed)
    compose    methods/<variant>/<composition>/seed<s>/   trained MoLE gates
    evaluate   metrics/<variant>/<composition>/seed<s>/   images/*.png, metrics.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from molebench.core import io
from molebench.core.composition import build
from molebench.methods.svdiff import attach, load_shifts, save_shifts
from molebench.t2i import components, plan, preconditions, world
from molebench.t2i.components import Generator
from molebench.t2i.gate_training import ClipGuidedTrainer, GateTrainingConfig
from molebench.t2i.metrics import image_alignment, image_embeddings, presence, text_alignment, text_embeddings
from molebench.t2i.report import image_grid
from molebench.t2i.sampling import generate, save_png, to_uint8
from molebench.t2i.subjects import (
    SubjectLoraConfig,
    dreambooth_train,
    load_subject_experts,
    load_subject_images,
    train_subject_lora,
)


def _pointer(out_dir: str, path: str, what: str) -> None:
    """Paper scale: the component lives in a local folder; the DAG output names it."""
    if not Path(path).is_dir():
        raise FileNotFoundError(f"{what} folder {path} does not exist; download it once (see docs/scales.md) and "
                                f"set its path in config/paper.yaml")
    io.write_json(Path(out_dir) / "source.json", {"path": str(Path(path).resolve())})


def _resolve(folder: str | Path) -> Path:
    pointer = Path(folder) / "source.json"
    return Path(io.read_json(pointer)["path"]) if pointer.is_file() else Path(folder)


# a lent GPU runs every model; the world's models are small enough that CPU and GPU give the same tables
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def load_base(folder: str | Path) -> Generator:
    return components.load_generator(_resolve(folder)).to(DEVICE)


def load_clip(folder: str | Path):
    clip, tokenizer, pixels = components.load_clip(_resolve(folder))
    return clip.to(DEVICE), tokenizer, pixels


def reference_images(world_dir: str | Path, subject: str) -> np.ndarray:
    return np.load(Path(world_dir) / "subjects" / f"{subject}.npz")["images"]


def world_stage(t2i: dict, out_dir: str) -> None:
    w = t2i["world"]
    with io.atomic_path(out_dir) as tmp:
        (tmp / "subjects").mkdir(parents=True)
        subjects = plan.subjects(t2i)
        if t2i["source"] == "world":
            images, captions, labels = world.base_dataset(w["n_images"], w["resolution"], w["max_objects"], t2i["seed"])
            np.savez_compressed(tmp / "base.npz", images=images, labels=labels)
            (tmp / "captions.json").write_text(json.dumps(captions) + "\n")
            by_name = {s.name: s for s in world.subjects(t2i["seed"], w["n_subjects"])}
            for k, s in enumerate(subjects):
                refs = world.subject_images(by_name[s["name"]], w["reference_images"], w["resolution"],
                                            t2i["seed"] * 1000 + k)
                np.savez_compressed(tmp / "subjects" / f"{s['name']}.npz", images=refs)
        else:
            for s in subjects:
                np.savez_compressed(tmp / "subjects" / f"{s['name']}.npz",
                                    images=load_subject_images(s["folder"], w["resolution"]))
        (tmp / "subjects.json").write_text(json.dumps(subjects, indent=2) + "\n")


def _world_data(world_dir: str):
    data = np.load(Path(world_dir) / "base.npz")
    return data["images"], json.loads((Path(world_dir) / "captions.json").read_text()), data["labels"]


def base_stage(t2i: dict, world_dir: str, presence_dir: str | None, out_dir: str) -> None:
    """World: train the base model, then check that it follows its prompts (the presence classifier's verdict)."""
    if t2i["source"] != "world":
        _pointer(out_dir, t2i["base_path"], "Stable Diffusion")
        load_base(out_dir)  # fail now, not in every subject job, if the folder is not a pipeline
        return
    cfg = components.WorldModelConfig(**t2i["model"])
    gen = components.build_world_generator(cfg, t2i["seed"])
    images, captions, _ = _world_data(world_dir)
    info = components.train_world_generator(gen, images, captions, seed=t2i["seed"], **t2i["base_train"])
    check = preconditions.base_prompt_following(gen, components.load_presence(presence_dir), t2i)
    print(f"precondition: {check['check']}: {check['found']}/{check['total']}", flush=True)
    with io.atomic_path(out_dir) as tmp:
        components.save_generator(gen, tmp)
        io.write_json(tmp / "train.json", {**info, "run_info": io.provenance(t2i, t2i["seed"])})
        io.write_json(tmp / preconditions.PRECONDITION_FILE, check)


def clip_stage(t2i: dict, world_dir: str, out_dir: str) -> None:
    if t2i["source"] != "world":
        _pointer(out_dir, t2i["clip_path"], "CLIP")
        return
    cfg = components.WorldModelConfig(**t2i["model"])
    clip, tokenizer, pixels = components.build_world_clip(cfg, t2i["seed"])
    _, captions, _ = _world_data(world_dir)
    info = components.train_world_clip(clip, tokenizer, pixels, captions, t2i["world"]["resolution"],
                                       seed=t2i["seed"], **t2i["clip_train"])
    check = preconditions.clip_sees_subjects(clip, tokenizer, pixels, t2i)
    print(f"precondition: {check['check']}: {check['found']}/{check['total']}", flush=True)
    with io.atomic_path(out_dir) as tmp:
        components.save_clip(clip, tokenizer, pixels, tmp)
        io.write_json(tmp / "train.json", {**info, "run_info": io.provenance(t2i, t2i["seed"])})
        io.write_json(tmp / preconditions.PRECONDITION_FILE, check)


def presence_stage(t2i: dict, world_dir: str, out_dir: str) -> None:
    """The world's own oracle for subject presence: it can only exist where the labels are known."""
    images, _, labels = _world_data(world_dir)
    classifier, info = components.train_presence(images, labels, seed=t2i["seed"], **t2i["presence_train"])
    with io.atomic_path(out_dir) as tmp:
        components.save_presence(classifier, info, tmp)


def _subject(t2i: dict, name: str) -> dict:
    return next(s for s in plan.subjects(t2i) if s["name"] == name)


def training_set(t2i: dict, world_dir: str, name: str) -> tuple[np.ndarray, list[str]]:
    """A subject's DreamBooth images and their prompts, the same for its LoRA and its SVDiff shifts: in the world,
    generated alone and beside other objects (world.subject_training_set); otherwise its folder's photos under its
    prompt."""
    if t2i["source"] != "world":
        images = reference_images(world_dir, name)
        return images, [_subject(t2i, name)["prompt"]] * len(images)
    w = t2i["world"]
    k, subject = next((k, s) for k, s in enumerate(world.subjects(t2i["seed"], w["n_subjects"])) if s.name == name)
    return world.subject_training_set(subject, w["training_images"], w["resolution"], (t2i["seed"] + 1) * 1000 + k)


def subject_stage(t2i: dict, subject: str, seed: int, base_dir: str, world_dir: str, presence_dir: str | None,
                  out_dir: str) -> None:
    """DreamBooth LoRA of one subject; in the world, then check that it draws its subject alone."""
    gen = load_base(base_dir)
    cfg = SubjectLoraConfig(**t2i["subject_lora"])
    spec = _subject(t2i, subject)
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        images, prompts = training_set(t2i, world_dir, subject)
        train_subject_lora(gen, prompts, images, cfg, seed, tmp)
        if presence_dir:
            check = preconditions.subject_alone(gen, components.load_presence(presence_dir), spec, seed, t2i)
            print(f"precondition: {check['check']}: {check['found']}/{check['total']}", flush=True)
            io.write_json(tmp / preconditions.PRECONDITION_FILE, check)


def shifts_stage(t2i: dict, variant: str, subject: str, seed: int, base_dir: str, world_dir: str,
                 out_dir: str) -> None:
    """SVDiff: train one subject's spectral shifts with the same DreamBooth loop as the LoRAs."""
    cfg = plan.method_of(t2i, variant).config_class.from_dict(t2i["variants"][variant].get("options", {}))
    gen = load_base(base_dir)
    shifted = attach(gen, cfg.modules)
    torch.manual_seed(seed)
    images, prompts = training_set(t2i, world_dir, subject)
    info = dreambooth_train(gen, prompts, images, [m.delta for m in shifted.values()], cfg.steps, cfg.batch_size,
                            cfg.lr, seed)
    with io.atomic_path(out_dir) as tmp:
        save_shifts(shifted, tmp, info)


def build_variant(t2i: dict, variant: str, expert_dirs: dict[str, str], base_dir: str, options: dict | None = None):
    """(method, model): the base generator composed by the variant over the composition's subjects."""
    entry = t2i["variants"][variant]
    gen = load_base(base_dir)
    if plan.method_of(t2i, variant).expert_kind == "spectral_shifts":
        experts = [load_shifts(path, name) for name, path in expert_dirs.items()]
    else:
        experts = load_subject_experts(gen, expert_dirs)
    return build(entry["method"], {**entry.get("options", {}), **(options or {})}, gen, experts)


def compose_stage(t2i: dict, variant: str, composition: str, seed: int, base_dir: str, expert_dirs: dict[str, str],
                  clip_dir: str, world_dir: str, out_dir: str) -> None:
    """Train a MoLE variant's gates for one composition, CLIP-guided, on the composition's prompts."""
    torch.manual_seed(seed)
    method, model = build_variant(t2i, variant, expert_dirs, base_dir)
    comp = plan.composition(t2i, composition)
    clip, clip_tokenizer, pixels = load_clip(clip_dir)
    references = {s: components.as_tensor(reference_images(world_dir, s)).to(DEVICE) for s in comp["subjects"]}
    trainer = ClipGuidedTrainer(GateTrainingConfig(**t2i["gate_train"]), clip, clip_tokenizer, pixels, references,
                                seed)
    records = [{"prompt": p, "subjects": comp["subjects"]} for p in comp["prompts"]]
    info = method.fit(model, model.tokenizer, records, trainer)
    with io.atomic_path(out_dir) as tmp:
        method.save(model, tmp)
        io.write_json(tmp / "train.json", {**info, "gates": method.gate_report(model),
                                           "run_info": io.provenance(t2i, seed)})


def _generate_all(model, prompts: list[str], ev: dict, seed: int) -> list[torch.Tensor]:
    """`images_per_prompt` images per prompt, `batch_size` at a time, prompt k from generation seed seed*1000+k (the
    PNG metadata records it); the batches of one prompt draw on from one generator."""
    n = ev["images_per_prompt"]
    size = ev.get("batch_size") or n
    out = []
    with torch.no_grad():
        for k, p in enumerate(prompts):
            rng = torch.Generator().manual_seed(seed * 1000 + k)
            out.append(torch.cat([generate(model, [p] * min(size, n - i), rng, ev["ddpm_steps"], ev["guidance"])
                                  for i in range(0, n, size)]))
    return out


def evaluate_stage(t2i: dict, variant: str, composition: str, seed: int, base_dir: str, expert_dirs: dict[str, str],
                   method_dir: str | None, clip_dir: str, presence_dir: str | None, world_dir: str,
                   out_dir: str) -> None:
    start = time.time()
    method, model = build_variant(t2i, variant, expert_dirs, base_dir)
    if method.trainable:
        method.load(model, method_dir)
    comp = plan.composition(t2i, composition)
    ev = t2i["eval"]
    batches = _generate_all(model, comp["prompts"], ev, seed)
    metrics = score(t2i, comp, batches, clip_dir, presence_dir, world_dir)
    with io.atomic_path(out_dir) as tmp:
        for k, (prompt, images) in enumerate(zip(comp["prompts"], batches)):
            for j, image in enumerate(to_uint8(images)):
                save_png(image, tmp / "images" / f"p{k}_{j}.png",
                         {"prompt": prompt, "seed": seed * 1000 + k, "image_index": j,
                          "batch_size": ev.get("batch_size") or len(images), "method": variant,
                          "composition": composition, "ddpm_steps": ev["ddpm_steps"], "guidance": ev["guidance"]})
        io.write_json(tmp / "metrics.json", {
            "variant": variant, "method": method.name, "composition": composition, "subjects": comp["subjects"],
            "size": comp["size"], "seed": seed, **metrics, "gates": method.gate_report(model),
            "seconds": round(time.time() - start, 2), "run_info": io.provenance(t2i, seed)})


def score(t2i: dict, comp: dict, batches: list[torch.Tensor], clip_dir: str, presence_dir: str | None,
          world_dir: str) -> dict:
    """Text alignment over every image, image alignment and presence per subject (Table 1's columns)."""
    clip, clip_tokenizer, pixels = load_clip(clip_dir)
    images = torch.cat(batches)
    prompts = [p for p, b in zip(comp["prompts"], batches) for _ in range(len(b))]
    with torch.no_grad():
        image_emb = image_embeddings(clip, pixels, images)
        out = {"n_images": len(images), "text_alignment": text_alignment(image_emb, text_embeddings(
            clip, clip_tokenizer, prompts)), "image_alignment": {}, "presence": {}}
        subjects = {s["name"]: s for s in plan.subjects(t2i)}
        classifier = components.load_presence(presence_dir) if presence_dir else None
        for name in comp["subjects"]:
            refs = components.as_tensor(reference_images(world_dir, name)).to(DEVICE)
            out["image_alignment"][name] = image_alignment(image_emb, image_embeddings(clip, pixels, refs))
            if classifier is not None:
                out["presence"][name] = presence(classifier, images, subjects[name]["presence"])
    return out


def masking_stage(t2i: dict, composition: str, seed: int, base_dir: str, expert_dirs: dict[str, str],
                  method_dir: str, presence_dir: str | None, out_png: str, out_csv: str) -> None:
    """Figures 6 and 8: the trained gates with each subject's LoRA masked in turn (weights renormalised), first
    prompt, same seeds; rows: nothing masked, then each subject masked. Presence per subject shows what is retained."""
    variant = t2i["masking"]["variant"]
    comp = plan.composition(t2i, composition)
    n = t2i["masking"]["images"]
    subjects = {s["name"]: s for s in plan.subjects(t2i)}
    classifier = components.load_presence(presence_dir) if presence_dir else None
    rows, records = [], []
    for masked in [None, *comp["subjects"]]:
        method, model = build_variant(t2i, variant, expert_dirs, base_dir, {"mask": [masked] if masked else []})
        method.load(model, method_dir)
        with torch.no_grad():
            images = generate(model, [comp["prompts"][0]] * n, seed * 1000, t2i["eval"]["ddpm_steps"],
                              t2i["eval"]["guidance"])
        rows.append((f"masked: {masked or 'none'}", to_uint8(images)))
        for name in comp["subjects"]:
            records.append({"masked": masked or "none", "subject": name,
                            "presence": presence(classifier, images, subjects[name]["presence"])
                            if classifier is not None else None})
    image_grid(rows, f"{variant} on {composition}: '{comp['prompts'][0]}'", out_png)
    io.write_text(out_csv, pd.DataFrame(records).to_csv(index=False))
