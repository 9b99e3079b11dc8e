"""Text-to-image MoLE on tiny random pipelines: metrics, gates, determinism, PNG metadata, clear errors, SVDiff, and the
paper-scale path (a tiny random Stable Diffusion folder with a VAE and v-prediction, as SD 2.1)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from molebench.bench import t2i_step
from molebench.core import method as methods
from molebench.t2i import components, plan, preconditions, stages, world
from molebench.t2i.components import Generator, PromptError, SubjectFolderError
from molebench.t2i.gate_training import ClipGuidedTrainer, GateTrainingConfig
from molebench.t2i.metrics import image_alignment, text_alignment
from molebench.t2i.sampling import generate, save_png, to_uint8
from molebench.t2i.subjects import SubjectLoraConfig, load_subject_experts, load_subject_images, train_subject_lora
from tests.rehearsal import tiny_stable_diffusion

PAPER = Path(__file__).resolve().parents[1] / "config" / "paper.yaml"
TINY = components.WorldModelConfig(resolution=16, max_tokens=40, unet_channels=[16, 32],
                                   clip_width=32)
LORA = SubjectLoraConfig(r=2, lora_alpha=2, steps=1, batch_size=2, text_modules=["query", "key", "value"])


def test_clip_metrics_match_a_hand_computation():
    image = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    text = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    # cosines: image 0 vs its prompt 1/sqrt(2), image 1 vs its prompt 1
    assert text_alignment(image, text) == pytest.approx((1 / math.sqrt(2) + 1) / 2)
    refs = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    # pairs: (i0, r0) 1, (i0, r1) 1/sqrt2, (i1, r0) 0, (i1, r1) 1/sqrt2
    assert image_alignment(image, refs) == pytest.approx((1 + 2 / math.sqrt(2)) / 4)


def test_world_is_seeded_and_captions_name_what_is_drawn():
    a, caps_a, labels_a = world.base_dataset(6, 16, 3, seed=3)
    b, caps_b, _ = world.base_dataset(6, 16, 3, seed=3)
    assert np.array_equal(a, b) and caps_a == caps_b
    for caption, label in zip(caps_a, labels_a):
        assert caption.count(" and ") + 1 == label.sum()
    subjects = world.subjects(0, 6)
    assert len({s.thing.shape for s in subjects}) == 6  # distinct shapes: a classifier can tell them apart
    assert {len(c) for c in world.compositions(subjects, [3, 6], 1, 0)} == {3, 6}


def test_captions_parse_back_to_the_scene_they_name():
    images, captions, _ = world.base_dataset(20, 32, 3, seed=5)
    for image, caption in zip(images, captions):
        things, background = world.parse_caption(caption)
        assert world.caption(things, background) == caption and np.array_equal(world.draw(things, background, 32), image)


def test_clip_precondition_pairs_each_prompt_with_each_subject_left_out(monkeypatch):
    """A CLIP whose image embedding grows with the drawn objects' area scores every complete composition above it
    with a subject left out; one blind to the image (a constant embedding) never does: ties do not count."""
    t2i = yaml.safe_load(PAPER.with_name("smoke.yaml").read_text())["t2i"]
    pairs = sum(c["size"] * len(c["prompts"]) for c in plan.compositions(t2i))

    def area(clip, pixels, images):  # objects differ from their plain background: the pixels that vary from its mode
        flat = images.flatten(2)
        background = flat.mode(dim=-1).values[..., None]
        return torch.stack([(flat != background).any(1).sum(-1).float(), torch.ones(len(images))], dim=1)

    monkeypatch.setattr(preconditions, "text_embeddings", lambda clip, tokenizer, prompts: torch.tensor([[1.0, 0.0]]))
    for embed, found in ((area, pairs), (lambda clip, pixels, images: torch.ones(len(images), 2), 0)):
        monkeypatch.setattr(preconditions, "image_embeddings", embed)
        check = preconditions.clip_sees_subjects(None, None, {}, t2i)
        assert (check["found"], check["total"]) == (found, pairs)


def test_subject_training_set_shows_the_subject_alone_and_beside_captioned_objects():
    subject = world.subjects(0, 6)[2]
    images, prompts = world.subject_training_set(subject, 9, 32, seed=5)
    again, _ = world.subject_training_set(subject, 9, 32, seed=5)
    assert np.array_equal(images, again) and len(images) == len(prompts) == 9
    assert sum(p == subject.prompt() for p in prompts) == 3  # a third alone
    for image, prompt in zip(images, prompts):
        assert prompt.startswith(subject.prompt())
        others = [words.split() for words in prompt.removesuffix(" background").split(" on ")[0].split(" and ")[1:]]
        things = [subject.thing] + [world.Thing(shape, colour, texture) for _, colour, texture, shape in others]
        background = prompt.split(" on ")[1].split()[0] if " on " in prompt else None
        assert subject.thing.shape not in [t.shape for t in things[1:]]
        if background:  # the image is exactly what its caption names
            assert np.array_equal(image, world.draw(things, background, 32))


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny world generator, CLIP and three subject LoRAs, saved as the DAG saves them."""
    root = tmp_path_factory.mktemp("t2i")
    gen = components.build_world_generator(TINY, seed=0)
    components.save_generator(gen, root / "base")
    clip, tokenizer, pixels = components.build_world_clip(TINY, seed=0)
    components.save_clip(clip, tokenizer, pixels, root / "clip")
    subjects = world.subjects(0, 3)
    loras, refs = {}, {}
    for k, s in enumerate(subjects):
        refs[s.name] = world.subject_images(s, 2, TINY.resolution, seed=k)
        loras[s.name] = root / "subjects" / s.name
        train_subject_lora(components.load_generator(root / "base"), [s.prompt()] * 2, refs[s.name], LORA, k,
                           loras[s.name])
    return root, subjects, loras, refs


def test_each_objects_text_states_see_only_its_own_phrase(assets):
    """The world's text encoder attends within each caption phrase (saved and loaded with the base model), so changing
    the second object's colour leaves the first object's states as they were; without the mask they change."""
    gen = components.load_generator(assets[0] / "base")
    ids = components.encode_prompts(gen.tokenizer, ["a red plain circle and a blue plain square on grey background",
                                                    "a red plain circle and a green plain square on grey background"])
    first = ids[0].tolist().index(gen.tokenizer.convert_tokens_to_ids("and"))  # where the second phrase starts
    with torch.no_grad():
        local = components.text_states(gen, ids)
        gen.text_encoder.config.phrase_separator_ids = []
        whole = components.text_states(gen, ids)
    assert torch.allclose(local[0, :first], local[1, :first])
    assert not torch.allclose(whole[0, :first], whole[1, :first])


def composed(root, loras, method_name, **options):
    cls = methods.get(method_name)
    method = cls(cls.config_class.from_dict(options))
    gen = components.load_generator(root / "base")
    return method, method.build(gen, load_subject_experts(gen, loras))


def test_same_seed_same_images_and_png_metadata(assets, tmp_path):
    root, subjects, loras, _ = assets
    _, model = composed(root, loras, "nla", space="output")
    prompt = " and ".join(s.prompt() for s in subjects)
    with torch.no_grad():
        first = generate(model, [prompt] * 2, seed=5, steps=2, guidance=2.0)
        again = generate(model, [prompt] * 2, seed=5, steps=2, guidance=2.0)
        other = generate(model, [prompt] * 2, seed=6, steps=2, guidance=2.0)
        halves = [[generate(model, [prompt], rng, steps=2, guidance=2.0) for _ in range(2)]
                  for rng in (torch.Generator().manual_seed(5), torch.Generator().manual_seed(5))]
    assert torch.equal(first, again) and not torch.equal(first, other)
    # a prompt's images in two batches: the second draws on from the first's generator, and a rerun repeats both
    assert torch.equal(torch.cat(halves[0]), torch.cat(halves[1])) and not torch.equal(*halves[0])
    save_png(to_uint8(first)[0], tmp_path / "x.png", {"prompt": prompt, "seed": 5, "method": "nla"})
    assert Image.open(tmp_path / "x.png").text == {"prompt": prompt, "seed": "5", "method": "nla"}


@pytest.mark.parametrize("name,gates", [("m-mole", None), ("l-mole", None), ("b-mole", None), ("n-mole", 1)])
def test_mole_gates_the_unet_and_text_encoder_at_every_granularity(assets, name, gates):
    root, subjects, loras, _ = assets
    method, model = composed(root, loras, name)
    keys = list(model.mole_gates.keys())
    assert gates is None or len(keys) == gates
    if name != "n-mole":
        assert any(k.startswith("unet_") for k in keys) and any(k.startswith("text_encoder_") for k in keys)
    with torch.no_grad():
        generate(model, [subjects[0].prompt()], seed=0, steps=2, guidance=2.0)
    report = method.gate_report(model)
    for gate in report["gates"].values():
        assert sum(gate["mean_weights"]) == pytest.approx(1.0, abs=1e-5)


def test_base_training_under_bf16_autocast_keeps_fp32_weights_and_records_it():
    """bf16 autocast (issue 24: the base model's CPU time) changes the weights, keeps them fp32 and says it was used."""
    gen = components.build_world_generator(TINY, seed=0)
    before = {n: p.detach().clone() for n, p in gen.unet.named_parameters()}
    images = np.stack([world.subject_images(s, 1, TINY.resolution, seed=0)[0] for s in world.subjects(0, 2)])
    info = components.train_world_generator(gen, images, [s.prompt() for s in world.subjects(0, 2)], steps=2,
                                            batch_size=2, lr=1e-3, caption_dropout=0.0, seed=0, autocast_bf16=True)
    assert info["bf16"] is True and math.isfinite(info["final_loss"])
    assert all(p.dtype == torch.float32 for p in gen.unet.parameters())
    assert any(not torch.equal(p, before[n]) for n, p in gen.unet.named_parameters())


def test_mole_training_changes_only_the_gates(assets):
    root, subjects, loras, refs = assets
    method, model = composed(root, loras, "l-mole")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    clip, tokenizer, pixels = components.load_clip(root / "clip")
    trainer = ClipGuidedTrainer(GateTrainingConfig(steps=2, batch_size=2, lr=0.1, ddpm_steps=2, guidance=2.0),
                                clip, tokenizer, pixels, {n: components.as_tensor(r) for n, r in refs.items()}, 0)
    prompt = " and ".join(s.prompt() for s in subjects)
    info = method.fit(model, model.tokenizer, [{"prompt": prompt, "subjects": list(loras)}], trainer)
    assert len(info["history"]) == 2 and all(math.isfinite(h["loss"]) for h in info["history"])
    trained = set(method.trained_parameters(model))
    assert trained and all(n.startswith("mole_gates.") for n in trained)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trained
    assert all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())  # frozen LoRA banks untouched


@pytest.mark.parametrize("gate_input", ["paper", "hidden"])
def test_fixed_length_gate_inputs_run_and_train_on_a_pipeline(assets, gate_input):
    """The official code's gate input (`hidden`) is its text-to-image one; every gate position is used: the text
    encoder's max_tokens (40) and the UNet's image tokens (16 / 2 = 8, squared: 64), zero-padded to gate_length."""
    root, subjects, loras, refs = assets
    t2i = yaml.safe_load(PAPER.with_name("smoke.yaml").read_text())["t2i"]
    t2i["variants"]["x"] = {"method": "l-mole", "options": {"gate_input": gate_input, "gate_length": 64}}
    plan.check(t2i)  # configs may ask for it
    method, model = composed(root, loras, "l-mole", gate_input=gate_input, gate_length=64)
    clip, tokenizer, pixels = components.load_clip(root / "clip")
    trainer = ClipGuidedTrainer(GateTrainingConfig(steps=1, batch_size=1, lr=0.1, ddpm_steps=2, guidance=2.0),
                                clip, tokenizer, pixels, {n: components.as_tensor(r) for n, r in refs.items()}, 0)
    info = method.fit(model, model.tokenizer, [{"prompt": subjects[0].prompt(), "subjects": list(loras)}], trainer)
    assert math.isfinite(info["history"][0]["loss"])
    with torch.no_grad():
        generate(model, [subjects[0].prompt()], seed=0, steps=2, guidance=2.0)
    gates = method.gate_report(model)["gates"]
    assert any(k.startswith("unet.") for k in gates) and any(k.startswith("text_encoder.") for k in gates)
    _, short = composed(root, loras, "l-mole", gate_input=gate_input, gate_length=48)  # the prompt fits, the image not
    too_long = "of 64 tokens is longer than gate_length 48.*UNet's largest token count"
    with pytest.raises(RuntimeError, match=too_long), torch.no_grad():
        generate(short, [subjects[0].prompt()], seed=0, steps=2, guidance=2.0)


def test_preconditions_count_the_prompted_objects_the_classifier_finds(assets, tmp_path):
    """A classifier that sees every label finds every prompted object (and no more than were prompted), one that
    sees none finds nothing; the table marks the second check unmet and says why."""
    root, subjects, _, _ = assets
    t2i = yaml.safe_load(PAPER.with_name("smoke.yaml").read_text())["t2i"]
    gen = components.load_generator(root / "base")
    prompted = world.base_dataset(t2i["preconditions"]["images"], 16, t2i["world"]["max_objects"], t2i["seed"] + 1)[2]
    checks = []
    for sees in (True, False):
        classifier = components.PresenceClassifier(width=4)
        nn.init.zeros_(classifier.net[-1].weight)
        nn.init.constant_(classifier.net[-1].bias, 10.0 if sees else -10.0)
        base = preconditions.base_prompt_following(gen, classifier, t2i)
        assert (base["found"], base["total"]) == ((prompted.sum() if sees else 0), prompted.sum())
        spec = next(s for s in plan.subjects(t2i) if s["name"] == subjects[0].name)
        alone = preconditions.subject_alone(gen, classifier, spec, 1, t2i)
        assert (alone["found"], alone["total"]) == ((2 if sees else 0), 2)
        checks.append(tmp_path / f"{sees}.json")
        checks[-1].write_text(json.dumps(alone))
    table = preconditions.table([str(p) for p in checks], min_share=0.8)
    assert list(table.met) == [True, False]
    assert f"subject LoRA alone: {subjects[0].name} (seed 1) 0/2 (0%)" in preconditions.unmet(table)


def test_svdiff_zero_shifts_leave_the_model_and_shifts_add(assets):
    from molebench.methods.svdiff import SpectralShifts, attach

    root, _, _, _ = assets
    gen = components.load_generator(root / "base")
    linear = gen.unet.get_submodule("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q")
    weight = linear.weight.detach().clone()
    shifted = attach(gen, ["to_q"])
    name = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    assert torch.allclose(shifted[name].weight, weight, atol=1e-5)  # SVD round trip
    gen = components.load_generator(root / "base")
    delta = torch.full_like(shifted[name].delta, 0.1)
    experts = [SpectralShifts("a", root, {name: delta}), SpectralShifts("b", root, {name: 2 * delta})]
    model = methods.get("svdiff")(methods.get("svdiff").config_class(modules=["to_q"])).build(gen, experts)
    assert torch.allclose(model.get_submodule(name).delta, 3 * delta)
    assert not any(p.requires_grad for p in model.parameters())


def test_clear_errors_for_subject_folders_and_prompts(tmp_path):
    with pytest.raises(SubjectFolderError, match="does not exist"):
        load_subject_images(tmp_path / "missing", 16)
    (tmp_path / "dog").mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "dog" / "ok.png")
    assert load_subject_images(tmp_path / "dog", 16).shape == (1, 16, 16, 3)
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(SubjectFolderError, match="broken.jpg: cannot decode"):
        load_subject_images(tmp_path / "dog", 16)
    tokenizer = components.build_tokenizer(8)
    with pytest.raises(PromptError, match="at most 8"):
        components.encode_prompts(tokenizer, ["a red circle and a blue square on grey background"])
    with pytest.raises(PromptError, match="does not know"):
        components.encode_prompts(tokenizer, ["a purple elephant"])


def test_paper_scale_path_on_a_tiny_stable_diffusion(tmp_path, monkeypatch):
    """config/paper.yaml's t2i section through the DAG stages, on a tiny random SD folder and DreamBooth folders;
    the evaluation samples a prompt's images `batch_size` at a time (the paper's 200 do not fit on a GPU at once)."""
    tiny_stable_diffusion(tmp_path / "sd")
    clip, tokenizer, _ = components.build_world_clip(TINY, seed=0)
    clip.save_pretrained(tmp_path / "clip")  # a hub-style CLIP folder: OpenAI pixel statistics are assumed
    tokenizer.save_pretrained(tmp_path / "clip")
    t2i = yaml.safe_load(PAPER.read_text())["t2i"]
    plan.check(t2i)
    names = ["cat", "dog", "backpack"]
    t2i.update(base_path=str(tmp_path / "sd"), clip_path=str(tmp_path / "clip"),
               compositions=[names], prompt_templates=["{subjects} on grey background"],
               subjects={n: {"folder": str(tmp_path / "photos" / n), "prompt": f"a v{k} circle"}
                         for k, n in enumerate(names)},
               subject_lora={"r": 2, "lora_alpha": 2, "steps": 1, "batch_size": 1},
               eval={"prompts": 1, "images_per_prompt": 3, "ddpm_steps": 2, "guidance": 7.5, "batch_size": 2},
               gate_train={"steps": 1, "batch_size": 1, "lr": 1e-5, "ddpm_steps": 2, "guidance": 7.5})
    t2i["world"]["resolution"] = 16
    for k, n in enumerate(names):
        (tmp_path / "photos" / n).mkdir(parents=True)
        Image.fromarray(np.full((24, 20, 3), 40 * k, np.uint8)).save(tmp_path / "photos" / n / "1.jpg")
    out = tmp_path / "results"
    stages.world_stage(t2i, str(out / "world"))
    stages.base_stage(t2i, str(out / "world"), None, str(out / "base"))
    stages.clip_stage(t2i, str(out / "world"), str(out / "clip"))
    assert isinstance(stages.load_base(out / "base"), Generator) and stages.load_base(out / "base").vae is not None
    loras = {n: str(out / "subjects" / n) for n in names}
    for n in names:
        stages.subject_stage(t2i, n, 1, str(out / "base"), str(out / "world"), None, loras[n])
    comp = plan.compositions(t2i)[0]
    assert comp["prompts"] == ["a v0 circle and a v1 circle and a v2 circle on grey background"]
    stages.compose_stage(t2i, "l-mole", comp["name"], 1, str(out / "base"), loras, str(out / "clip"),
                       str(out / "world"), str(out / "gates"))
    sampled = []
    monkeypatch.setattr(stages, "generate", lambda model, prompts, *a, **k: sampled.append(len(prompts)) or
                        generate(model, prompts, *a, **k))
    stages.evaluate_stage(t2i, "l-mole", comp["name"], 1, str(out / "base"), loras, str(out / "gates"),
                        str(out / "clip"), None, str(out / "world"), str(out / "metrics"))
    metrics = json.loads((out / "metrics" / "metrics.json").read_text())
    assert set(metrics["image_alignment"]) == set(names) and metrics["presence"] == {}  # no presence oracle here
    assert sampled == [2, 1] and metrics["n_images"] == 3
    last = Image.open(out / "metrics" / "images" / "p0_2.png")
    assert last.size == (16, 16) and last.text["batch_size"] == "2"  # 8x8 latents, VAE x2


def test_missing_stable_diffusion_folder_is_named(tmp_path):
    t2i = yaml.safe_load(PAPER.read_text())["t2i"]
    t2i["base_path"] = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="Stable Diffusion folder .*nowhere does not exist"):
        stages.base_stage(t2i, str(tmp_path / "world"), None, str(tmp_path / "base"))


@pytest.mark.parametrize("change,message", [
    ({"variants": {"x": {"method": "nla", "options": {"space": "weight"}}}}, "output space only"),
    ({"masking": {"variant": "nope", "images": 1}}, "masking.variant"),
    ({"gate_train": {"steps": 1, "grad_steps": 3, "ddpm_steps": 2}}, "grad_steps"),
    ({"model": {"resolution": 16, "unet_channels": [16, 32], "attention_heads": 5}}, "attention_heads 5 must divide"),
])
def test_bad_t2i_config_is_refused_with_the_key_at_fault(change, message):
    t2i = yaml.safe_load(PAPER.with_name("smoke.yaml").read_text())["t2i"]
    for key, value in change.items():
        t2i[key] = {**t2i[key], **value} if key == "variants" else value
    with pytest.raises(plan.T2IConfigError, match=message):
        plan.check(t2i)


def test_tables_average_per_seed_and_carry_the_papers_numbers(tmp_path):
    from molebench.t2i import report

    dirs = []
    for variant, base in [("nla", 0.1), ("l-mole", 0.3)]:
        for seed in (1, 2):
            for comp, subjects in [("a+b+c", ["a", "b", "c"]), ("a+b+c+d", ["a", "b", "c", "d"])]:
                folder = tmp_path / variant / comp / f"seed{seed}"
                folder.mkdir(parents=True)
                value = base + seed / 100
                (folder / "metrics.json").write_text(json.dumps({
                    "variant": variant, "composition": comp, "size": len(subjects), "seed": seed,
                    "subjects": subjects, "text_alignment": value,
                    "image_alignment": {s: value + k / 10 for k, s in enumerate(subjects)},
                    "presence": {s: 1.0 for s in subjects}}))
                dirs.append(str(folder))
    data = report.load_metrics(dirs)
    spec1 = {"kind": "per_composition", "columns": {"NLA": "nla", "MoLE": "l-mole"}, "sizes": [3],
             "paper": str(PAPER.parents[1] / "data/paper/mole_table1.csv")}
    table1 = report.build_table(spec1, data)
    assert list(table1.composition) == ["a+b+c", "Average", "paper: Average"]
    assert table1.loc[0, "Text-alignment | MoLE"] == pytest.approx(0.315)  # mean of seeds 0.31 and 0.32
    assert table1.loc[0, "Image-alignment (Concept 2) | NLA"] == pytest.approx(0.215)
    assert table1.loc[2, "Text-alignment | MoLE"] == 0.759  # the paper's average row
    spec10 = {"kind": "per_size", "columns": {"NLA": "nla"}, "sizes": [3, 4],
              "paper": str(PAPER.parents[1] / "data/paper/mole_table10.csv")}
    table10 = report.build_table(spec10, data)
    assert list(table10.concepts) == [3, 4, "Average"]
    assert table10.loc[1, "Average Image-alignment | NLA"] == pytest.approx(0.115 + 0.15)  # concepts 0..3 / 10
    assert table10.loc[0, "paper: Text-alignment | NLA"] == 0.678


def test_job_chains_run_from_the_world_through_the_base_and_each_expert_to_the_scoring_job():
    t2i = yaml.safe_load(PAPER.with_name("smoke.yaml").read_text())["t2i"]
    chains = plan.job_chains(t2i)
    assert chains and all(c[0] == ("t2i_world", "world") for c in chains)
    for name, table in t2i["tables"].items():
        for variant in table["columns"].values():
            method = plan.method_of(t2i, variant)
            for c in plan.table_compositions(t2i, name):
                tail = ("t2i_compose" if method.trainable else "t2i_evaluate", f"{variant}-{c['name']}")
                mine = [chain for chain in chains if chain[-1] == tail]
                expert = "t2i_shifts" if method.expert_kind == "spectral_shifts" else "t2i_subject"
                assert sorted(chain[2][1] for chain in mine if chain[1] == ("t2i_base", "base")) == sorted(
                    f"{variant + '-' if expert == 't2i_shifts' else ''}{s}-seed{t2i['seed']}" for s in c["subjects"])
                assert {chain[2][0] for chain in mine if chain[1] == ("t2i_base", "base")} == {expert}
                assert {chain[1] for chain in mine if len(chain) == 3} == {("t2i_clip", "clip"),
                                                                          ("t2i_presence", "presence")}
    masked = [c for c in chains if c[-1] == ("t2i_masking", "masking")]
    assert masked and all(c[-2] == ("t2i_compose", f"{t2i['masking']['variant']}-{plan.masked_composition(t2i)}")
                          for c in masked)


def test_step_bench_times_each_unet_shape_against_the_first():
    t2i = yaml.safe_load(PAPER.with_name("smoke.yaml").read_text())["t2i"]
    rows = t2i_step.run(t2i, ["16,32:8", "8,16:2", "8,16:2:bf16"], repeats=1)
    assert [(r["unet_channels"], r["attention_heads"], r["bf16"]) for r in rows] == [([16, 32], 8, False),
                                                                                   ([8, 16], 2, False),
                                                                                   ([8, 16], 2, True)]
    assert rows[0]["ratio_to_first"] == 1 and rows[0]["params"] > rows[1]["params"]
    assert all(r["base_cpu_minutes"] == pytest.approx(r["median_step_cpu_s"] * t2i["base_train"]["steps"] / 60)
               for r in rows)
    [default] = t2i_step.run(t2i, None, repeats=1)  # the config's own model
    assert (default["unet_channels"], default["attention_heads"]) == (t2i["model"]["unet_channels"],
                                                                      components.WorldModelConfig().attention_heads)
    for bad in ("16x32", "16,32:2:fp8"):
        with pytest.raises(SystemExit, match="CHANNELS:HEADS"):
            t2i_step.parse_unet(bad)
