"""The dress rehearsal's assets (config/rehearsal.yaml): every hub dataset of the paper config as a small local JSON
Lines file in the dataset's own schema, lm-eval's definitions of the paper's tasks reading such files, a tiny random
Stable Diffusion folder (SD 2.1's layout: VAE, v-prediction, CLIP text encoder, cross-attention UNet), a tiny CLIP
folder and DreamBooth-style subject folders.

    python -m tests.rehearsal [folder]   writes them (default: rehearsal/, the folder config/rehearsal.yaml reads)

Used by tests/test_rehearsal.py (the paper DAG end to end), tests/test_paper_scale.py (the hub loaders' rows) and
tests/test_t2i.py (the tiny Stable Diffusion).
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from molebench.core.data import list_tasks, load_task
from molebench.t2i import components

REHEARSAL = Path(__file__).resolve().parents[1] / "config" / "rehearsal.yaml"
HUB_ROWS = {"train": 20, "test": 6}  # per split of each hub dataset; the rehearsal's n_train and n_test cut them
MAX_TOKENS = 40  # text encoder positions: the six-subject prompts of Table 10 take 28

# One row maker per hub dataset, in the real schema; `split` is "train" or "test" (the task's role for that split).

def wmt_row(name, split, i):
    return {"translation": {lang: f"{split} sentence {i} in {lang}" for lang in name.split("-")}}


ROWS = {
    "wmt/wmt14": wmt_row,
    "wmt/wmt16": wmt_row,
    "allenai/common_gen": lambda name, split, i: {
        "concept_set_idx": i, "concepts": [f"{split}{i}", "dog", "frisbee"], "target": f"A dog catches {split}{i}."},
    "Yale-LILY/dart": lambda name, split, i: {
        "tripleset": [[f"{split} hall {i}", "LOCATION", "Paris"], [f"{split} hall {i}", "OPENED", "1999"]],
        "subtree_was_extended": False,
        "annotations": {"source": ["WikiTableQuestions_lily"], "text": [f"{split} hall {i} opened in 1999 in Paris.",
                                                                         f"Paris has {split} hall {i}."]}},
    "tuetschek/e2e_nlg": lambda name, split, i: {
        "meaning_representation": f"name[The {split} {i}], eatType[pub], area[riverside]",
        "human_reference": f"The {split} {i} is a pub by the river."},
    "GEM/web_nlg": lambda name, split, i: {
        "gem_id": f"web_nlg_en-{split}-{i}", "input": [f"{split}_{i} | country | France", f"{split}_{i} | mayor | Ann"],
        "target": f"{split} {i} is in France.",
        "references": [] if split == "train" else [f"{split} {i} is in France.", f"{split} {i}, France, has Ann."]},
    "allenai/ai2_arc": lambda name, split, i: {
        "id": f"{split}-{i}", "question": f"{split} question {i}: which is a mammal?",
        "choices": {"text": ["trout", "whale", "shark", "eel"], "label": ["A", "B", "C", "D"]}, "answerKey": "B"},
    "google-research-datasets/nq_open": lambda name, split, i: {
        "question": f"who wrote {split} book {i}", "answer": [f"author {i}", f"A. {i}"]},
    "mandarjoshi/trivia_qa": lambda name, split, i: {
        "question": f"Which {split} river {i}?", "question_id": f"tc_{i}", "question_source": "http://example.org",
        "entity_pages": {"doc_source": [], "filename": [], "title": [], "wiki_context": []},
        "search_results": {"description": [], "filename": [], "rank": [], "title": [], "url": [], "search_context": []},
        "answer": {"aliases": [f"river {i}", f"the river {i}"], "normalized_aliases": [f"river {i}"],
                   "matched_wiki_entity_name": "", "normalized_matched_wiki_entity_name": "",
                   "normalized_value": f"river {i}", "type": "WikipediaEntity", "value": f"River {i}"}},
    "lukaemon/bbh": lambda name, split, i: {"input": f"{split} puzzle {i} of {name}", "target": f"({'AB'[i % 2]})"},
    "facebook/anli": lambda name, split, i: {
        "uid": f"{split}-{i}", "premise": f"{split} premise {i}.", "hypothesis": f"{split} hypothesis {i}.",
        "label": i % 3, "reason": ""},
}
GLUE = {
    "qnli": lambda split, i: {"question": f"{split} question {i}?", "sentence": f"{split} sentence {i}.",
                              "label": i % 2, "idx": i},
    "wnli": lambda split, i: {"sentence1": f"{split} first {i}.", "sentence2": f"{split} second {i}.",
                              "label": i % 2, "idx": i},
}
ROWS["nyu-mll/glue"] = lambda name, split, i: GLUE[name](split, i)
# MixLoRA's commonsense suite (multiple choice scored by option likelihood)
ROWS.update({
    "google/boolq": lambda name, split, i: {
        "question": f"is {split} claim {i} true", "answer": bool(i % 2), "passage": f"The {split} passage {i}."},
    "allenai/openbookqa": lambda name, split, i: {
        "id": f"{split}-{i}", "question_stem": f"{split} stem {i}: the sun is a",
        "choices": {"text": ["planet", "star", "moon", "comet"], "label": ["A", "B", "C", "D"]}, "answerKey": "B"},
    "ybisk/piqa": lambda name, split, i: {"goal": f"{split} goal {i}: open a jar", "sol1": "twist the lid",
                                          "sol2": "freeze the lid", "label": 0},
    "allenai/social_i_qa": lambda name, split, i: {
        "context": f"{split} context {i}: Kai gave a gift.", "question": "How would Kai feel?",
        "answerA": "generous", "answerB": "angry", "answerC": "bored", "label": "1"},
    "Rowan/hellaswag": lambda name, split, i: {
        "ind": i, "activity_label": "Cooking", "ctx_a": "", "ctx_b": "", "ctx": f"{split} context {i}: A man cracks eggs",
        "endings": ["into a bowl.", "into the sky.", "with a song.", "on a car."], "source_id": "x", "split": split,
        "split_type": "indomain", "label": "0"},
    "allenai/winogrande": lambda name, split, i: {
        "sentence": f"{split} sentence {i}: the cup broke the glass because the _ was hard.", "option1": "cup",
        "option2": "glass", "answer": "1"},
})

# lm-eval's definitions of some of the same tasks read other copies of their datasets
ROWS.update({
    "aps/super_glue": lambda name, split, i: {"question": f"is {split} claim {i} true",
                                              "passage": f"The {split} passage {i}.", "label": i % 2, "idx": i},
    "baber/piqa": ROWS["ybisk/piqa"],
    "lighteval/siqa": ROWS["allenai/social_i_qa"],
})


def write_hub_files(root: Path, n_train: int, n_test: int) -> None:
    """Every paper task's two splits as {root}/{path}/{name or default}/{split}.jsonl (the config's data.hub_files)."""
    for task in list_tasks():
        if not task.startswith("paper_"):
            continue
        source = load_task(task).source
        make = ROWS[source["path"]]
        for role, n in (("train", n_train), ("test", n_test)):
            file = root / source["path"] / source.get("name", "default") / f"{source[role + '_split'].split('[')[0]}.jsonl"
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text("".join(json.dumps(make(source.get("name"), role, i)) + "\n" for i in range(n)))


def write_lm_eval_tasks(root: Path, names: list[str], n_rows: int) -> None:
    """lm-eval's own definitions of the tasks `names`, each as {root}/{name}.yaml: the installed YAML included whole
    (prompts, choices, metrics, its utility functions), its dataset replaced by small local files in the same schema,
    one per split it declares."""
    from lm_eval.tasks import TaskManager

    index = TaskManager().task_index
    for name in names:
        entry = index[name]
        make = ROWS[entry.cfg["dataset_path"]]
        splits = {entry.cfg[k] for k in ("training_split", "validation_split", "test_split") if entry.cfg.get(k)}
        files = {}
        for split in sorted(splits):
            files[split] = str((root / "data" / name / f"{split}.jsonl").resolve())
            Path(files[split]).parent.mkdir(parents=True, exist_ok=True)
            rows = (make(entry.cfg.get("dataset_name"), split, i) for i in range(n_rows))
            Path(files[split]).write_text("".join(json.dumps(r) + "\n" for r in rows))
        (root / f"{name}.yaml").write_text(yaml.safe_dump({
            "include": str(entry.yaml_path), "task": name, "dataset_path": "json", "dataset_name": None,
            "dataset_kwargs": {"data_files": files}}, sort_keys=False))


def tiny_stable_diffusion(path, max_tokens: int = 24):
    """A random Stable Diffusion in the diffusers layout: VAE latents, v-prediction (as SD 2.1)."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tokenizer = components.build_tokenizer(max_tokens)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                                num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=max_tokens,
                                                eos_token_id=3))
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32)
    vae = AutoencoderKL(block_out_channels=[32, 32], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2)
    scheduler = DDPMScheduler(prediction_type="v_prediction", clip_sample=False)
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(path)


def write_t2i_assets(root: Path, t2i: dict) -> None:
    """The Stable Diffusion and CLIP folders and two photos per subject, where `t2i` (the rehearsal's t2i section,
    paths under rehearsal/) reads them."""
    def at(path: str) -> Path:
        return root / Path(path).relative_to("rehearsal")

    tiny_stable_diffusion(at(t2i["base_path"]), max_tokens=MAX_TOKENS)
    clip, tokenizer, _ = components.build_world_clip(components.WorldModelConfig(
        resolution=t2i["world"]["resolution"], max_tokens=MAX_TOKENS,
        unet_channels=[16, 32], clip_width=32), seed=0)
    clip.save_pretrained(at(t2i["clip_path"]))  # a hub-style CLIP folder
    tokenizer.save_pretrained(at(t2i["clip_path"]))
    for k, subject in enumerate(t2i["subjects"].values()):
        folder = at(subject["folder"])
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(2):
            Image.fromarray(np.full((24, 20, 3), 30 * k + 10 * j, np.uint8)).save(folder / f"{j}.jpg")


def write_assets(root: Path) -> None:
    """Everything config/rehearsal.yaml reads, under `root` (its paths name rehearsal/<asset>)."""
    write_hub_files(Path(root) / "hub", n_train=HUB_ROWS["train"], n_test=HUB_ROWS["test"])
    paper = yaml.safe_load((REHEARSAL.parent / "paper.yaml").read_text())
    write_lm_eval_tasks(Path(root) / "lm_eval", list(paper["lm_eval"]["tasks"]), HUB_ROWS["test"])
    write_t2i_assets(Path(root), yaml.safe_load(REHEARSAL.read_text())["t2i"])


if __name__ == "__main__":
    write_assets(Path(sys.argv[1] if len(sys.argv) > 1 else "rehearsal"))
