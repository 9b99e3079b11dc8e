"""RAMoLE (issue 6) on a tiny LLaMA with a pool of random LoRAs: batched mixed-task inference against each sample
alone, the baselines against hand-written references, RouterLoRA (unseen LoRAs, LoRA dropout, training), the
retriever's errors, and the tables."""

from pathlib import Path

import pytest
import torch

from molebench.core import skills
from molebench.core.data import load_task
from molebench.ramole.retrieval import Embedder, Index, RetrievalError, embed_lora, lora_samples, request
from tests.conftest import CharTokenizer, build, logits, make_lora, manual_sum

POOL = 5


@pytest.fixture
def pool_dirs(tmp_path):
    return [make_lora(tmp_path / f"pool{i}", seed=20 + i, r=4 if i != 3 else 2) for i in range(POOL)]


@pytest.fixture
def batch():
    """4 samples of equal length (no padding: a sample alone must see exactly what it sees in the batch), each with
    its own 3 LoRAs out of the pool, in retrieval order."""
    torch.manual_seed(3)
    ids = torch.randint(3, 97, (4, 6))
    routes = torch.tensor([[0, 1, 2], [4, 3, 0], [2, 4, 1], [3, 0, 4]])
    return ids, torch.ones_like(ids), routes


def routed_logits(method, model, ids, mask, routes):
    method.route(routes)
    return logits(model, ids, mask)


def randomise_router(model):
    """Trained-looking routers: non-zero keys, so the weights differ per token and per LoRA."""
    torch.manual_seed(7)
    with torch.no_grad():
        for p in model.ramole_routers.parameters():
            p.normal_(0, 0.5)


@pytest.mark.parametrize("name", ["ramole", "mixture", "fusion", "selection"])
def test_batched_mixed_inference_equals_each_sample_alone(pool_dirs, batch, name):
    ids, mask, routes = batch
    method, model = build(name, pool_dirs)
    if name == "ramole":
        randomise_router(model)
    together = routed_logits(method, model, ids, mask, routes)
    for i in range(len(ids)):
        alone = routed_logits(method, model, ids[i:i + 1], mask[i:i + 1], routes[i:i + 1])
        torch.testing.assert_close(together[i:i + 1], alone, atol=1e-5, rtol=1e-4)


def test_mixture_and_selection_match_a_per_lora_loop(pool_dirs, batch):
    ids, mask, routes = batch
    mixture, mixed = build("mixture", pool_dirs)
    selection, selected = build("selection", pool_dirs)
    got_mix = routed_logits(mixture, mixed, ids, mask, routes)
    got_sel = routed_logits(selection, selected, ids, mask, routes)
    for i, route in enumerate(routes.tolist()):
        chosen = [pool_dirs[j] for j in route]
        torch.testing.assert_close(got_mix[i:i + 1], manual_sum(chosen, [1 / 3] * 3, ids[i:i + 1], mask[i:i + 1]),
                                   atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got_sel[i:i + 1], manual_sum(chosen[:1], [1.0], ids[i:i + 1], mask[i:i + 1]),
                                   atol=1e-5, rtol=1e-4)


def test_fusion_averages_the_factors(pool_dirs, batch, tmp_path):
    """Fusion of equal-rank LoRAs is one LoRA with mean A and mean B (a PEFT folder written by hand)."""
    from safetensors.torch import load_file, save_file

    ids, mask, _ = batch
    same_rank = [pool_dirs[i] for i in (0, 1, 2)]
    fused = tmp_path / "fused"
    fused.mkdir()
    (fused / "adapter_config.json").write_text((same_rank[0] / "adapter_config.json").read_text())
    states = [load_file(d / "adapter_model.safetensors") for d in same_rank]
    save_file({k: sum(s[k] for s in states) / 3 for k in states[0]}, fused / "adapter_model.safetensors")
    method, model = build("fusion", pool_dirs)
    got = routed_logits(method, model, ids, mask, torch.tensor([[0, 1, 2]] * len(ids)))
    torch.testing.assert_close(got, manual_sum([fused], [1.0], ids, mask), atol=1e-5, rtol=1e-4)


def test_ramole_starts_as_mixture_and_routes_by_attention(pool_dirs, batch):
    ids, mask, routes = batch
    ramole, model = build("ramole", pool_dirs)
    mixture, mixed = build("mixture", pool_dirs)
    start = routed_logits(ramole, model, ids, mask, routes)
    torch.testing.assert_close(start, routed_logits(mixture, mixed, ids, mask, routes), atol=1e-5, rtol=1e-4)
    randomise_router(model)
    assert not torch.allclose(routed_logits(ramole, model, ids, mask, routes), start, atol=1e-4)


def test_router_accepts_loras_it_never_saw(pool_dirs, tmp_path, batch):
    """Routers are per layer and read LoRA outputs, so a router saved over one pool loads over another."""
    ids, mask, routes = batch
    method, model = build("ramole", pool_dirs[:3])
    randomise_router(model)
    method.save(model, tmp_path / "router")
    new_pool = pool_dirs[2:] + [make_lora(tmp_path / "new", seed=99)]
    other, other_model = build("ramole", new_pool)
    other.load(other_model, tmp_path / "router")
    out = routed_logits(other, other_model, ids, mask, routes % len(new_pool))
    assert torch.isfinite(out).all()


def test_lora_dropout_keeps_at_least_one_and_drops_about_p(pool_dirs):
    method, _ = build("ramole", pool_dirs, lora_dropout=0.5)
    torch.manual_seed(0)
    keep = method.dropout_mask((4000, 3))
    assert keep.any(1).all()
    # each slot dropped with p = 0.5, except that a sample with all 3 dropped (1/8) gets one back
    assert 1 - keep.float().mean().item() == pytest.approx(0.5 - 1 / 8 / 3, abs=0.02)
    none, _ = build("ramole", pool_dirs, lora_dropout=0.0)
    assert none.dropout_mask((4, 3)) is None


def test_router_trains_with_base_and_loras_frozen(pool_dirs):
    from molebench.core.training import TrainConfig, Trainer

    method, model = build("ramole", pool_dirs, lora_dropout=0.3)
    frozen = {n: p.clone() for n, p in model.named_parameters() if "ramole_routers" not in n}
    before = {n: p.clone() for n, p in model.ramole_routers.named_parameters()}
    records = [{"id": str(i), "input": f"q {i}", "references": [f"a {i % 3}"], "lora_indices": [i % 5, (i + 1) % 5]}
               for i in range(8)]
    info = method.fit(model, CharTokenizer(), records, Trainer(TrainConfig(steps=2, batch_size=4, lr=1e-2), seed=0))
    assert info["trainable_params"] == sum(p.numel() for p in model.ramole_routers.parameters())
    assert any(not torch.equal(p, before[n]) for n, p in model.ramole_routers.named_parameters())
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    with pytest.raises(ValueError, match="no retrieved LoRAs"):
        method.fit(model, CharTokenizer(), [{"id": "x", "input": "q", "references": ["a"]}], None)


def test_unrouted_or_mismatched_batches_fail_clearly(pool_dirs, batch):
    ids, mask, routes = batch
    method, model = build("mixture", pool_dirs)
    with pytest.raises(RuntimeError, match="no LoRAs routed"):
        logits(model, ids, mask)
    method.route(routes[:2])
    with pytest.raises(RuntimeError, match="routed 2 samples but the batch has 4"):
        logits(model, ids, mask)
    with pytest.raises(RuntimeError, match="out of range"):
        method.route(torch.tensor([[0, POOL]]))


def test_oracle_is_selection_of_the_own_lora():
    from molebench.core import method as methods

    assert methods.get("oracle").own_lora and not methods.get("selection").own_lora
    assert {"ramole", "mixture", "fusion", "selection", "oracle"} <= set(methods.available())


# ---- retriever ---------------------------------------------------------------------------------------------------

def test_retrieval_fails_clearly_on_an_empty_pool_or_missing_samples(tmp_path):
    with pytest.raises(RetrievalError, match="pool is empty"):
        Index.from_files({}, "pretrained")
    with pytest.raises(RetrievalError, match="no embedding file"):
        Index.from_files({"lost": tmp_path / "lost.pt"}, "pretrained")
    with pytest.raises(RetrievalError, match="LoRA 'lost': its samples .* are missing"):
        lora_samples("lost", tmp_path / "train.jsonl", 20)
    (tmp_path / "train.jsonl").write_text("")
    with pytest.raises(RetrievalError, match="holds no samples"):
        lora_samples("empty", tmp_path / "train.jsonl", 20)


def test_top_k_ranks_by_inner_product_and_ood_drops_the_own_lora():
    index = Index(["a", "b", "c", "d"], torch.eye(4))
    query = torch.tensor([[0.9, 0.5, 0.1, 0.0]])
    assert index.top_k(query, 3) == [["a", "b", "c"]]
    assert index.top_k(query, 3, exclude=["a"]) == [["b", "c", "d"]]
    with pytest.raises(RetrievalError, match="needs more LoRAs"):
        index.top_k(query, 4, exclude=["a"])


def test_embedder_matches_sentence_transformers():
    """Our transformers-only forward equals the real package's encode (mean pooling, then normalisation)."""
    from sentence_transformers import SentenceTransformer

    from molebench.ramole.retrieval import embedder_path

    texts = ["Represent the sentence for similar task retrieval: What is 2 plus 3?", "a much longer sentence " * 9]
    ours = Embedder()(texts)
    theirs = SentenceTransformer(embedder_path("all-minilm-l6-v2"), device="cpu").encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_a_request_names_its_skill_among_skills_whose_inputs_look_alike():
    """Inside a family every skill draws the same inputs, so only the instruction tells them apart: with it, each test
    query of three letter skills retrieves its own skill's LoRA first (pretrained embedder, keys from 20 train
    samples as in the mini config); from the prompt alone, not every one does."""
    names = ["skill_letters_reverse", "skill_letters_first3", "skill_letters_drop_vowels"]
    specs = {n: load_task(n) for n in names}
    embedder = Embedder()

    def retrieved(read):
        keys = [embed_lora(embedder, [read(specs[n], skills.prompt(e["input"]))
                                      for e in skills.examples(n.removeprefix("skill_"), 20, 0, "train")], "")
                for n in names]
        index = Index(names, torch.stack(keys))
        queries = [(n, read(specs[n], skills.prompt(e["input"])))
                   for n in names for e in skills.examples(n.removeprefix("skill_"), 8, 0, "test")]
        top = index.top_k(embedder([q for _, q in queries]), 1)
        return [t[0] == own for (own, _), t in zip(queries, top)]

    assert all(retrieved(request))
    assert not all(retrieved(lambda spec, prompt: prompt))


def test_finetuning_is_seeded():
    from molebench.ramole.retrieval import finetune

    samples = {t: [f"{t} example {i}" for i in range(4)] for t in ("add two numbers", "sort words", "upper case")}
    runs = [finetune(Embedder(), samples, "Represent: ", steps=2, batch_tasks=3, lr=1e-5, temperature=0.05, seed=4)
            for _ in range(2)]
    assert runs[0] == runs[1] and all(loss > 0 for loss in runs[0])


def test_mixed_table_has_domain_and_overall_averages(tmp_path):
    from molebench.ramole.report import ramole_mixed_table

    def result(scale):
        return {"tasks": {t: {"domain": d, "metrics": {"exact_match": scale * v, "rougeL": v}}
                          for t, d, v in [("t1", "qa", 10.0), ("t2", "qa", 30.0), ("t3", "math", 50.0)]}}
    paper = tmp_path / "paper.csv"  # the long layout of every paper CSV; the paper's method and metric names
    paper.write_text("table,family,paper_task,metric,method,value\n"
                     "2,all,Average,EM,RAMoLE,63.5\n2,all,Average,EM,Perfect Selection,70.1\n"
                     "2,qa,Average,Rouge-L,Mixture,41.0\n2,qa,Average,BLEU,Mixture,12.0\n2,qa,Average,chrF,Mixture,30.0\n"
                     "2,qa,t1,EM,RAMoLE,99.0\n")
    table = ramole_mixed_table({"ramole": result(1.0), "mixture": result(2.0)}, 7, paper)
    assert list(table.columns[:4]) == ["kind", "domain", "task", "seed"] and set(table.seed) == {7}
    qa = table[(table.kind == "domain average") & (table.domain == "qa")].iloc[0]
    assert qa["ramole:exact_match"] == 20.0 and qa["mixture:exact_match"] == 40.0
    assert qa["paper:mixture:rougeL"] == 41.0 and qa["paper:mixture:bleu"] == 12.0
    assert qa["paper:mixture:chrF"] == 30.0  # a label with no scorer of ours keeps its printed name
    overall = table[table.kind == "average"].iloc[0]
    assert overall["ramole:exact_match"] == pytest.approx(30.0)
    assert overall["paper:ramole:exact_match"] == 63.5 and overall["paper:oracle:exact_match"] == 70.1
    assert table[table.kind == "task"]["paper:ramole:exact_match"].isna().all()  # only Average rows are matched
    bad = tmp_path / "bad.csv"
    bad.write_text("domain,metric,method,value\nall,exact_match,RAMoLE,63.5\n")
    with pytest.raises(ValueError, match="columns must be"):
        ramole_mixed_table({"ramole": result(1.0)}, 7, bad)


def test_tables_stack_the_runs_seed_by_seed(tmp_path):
    import json

    import pandas as pd

    from molebench.ramole import plan, report

    retrievals, evaluations = {}, {}
    for seed in (1, 2):
        run = tmp_path / "ramole" / f"seed{seed}"
        accuracy = {"all tasks": {"iid_top1": 90.0 + seed, "queries": 4}}
        (run / "eval" / "ramole").mkdir(parents=True)
        (run / "retrieval.json").write_text(json.dumps({e: {"accuracy": accuracy} for e in plan.EMBEDDERS}))
        for setting in plan.SETTINGS:
            (run / "eval" / "ramole" / f"{setting}.metrics.json").write_text(json.dumps({"tasks": {
                "t1": {"domain": "qa", "metrics": {"exact_match": 10.0 * seed, "rougeL": 1.0}}}}))
        retrievals[seed], evaluations[seed] = str(run / "retrieval.json"), {"ramole": str(run / "eval" / "ramole")}
        assert plan.seed_of(str(run / "eval" / "ramole")) == seed
    out = {name: str(tmp_path / f"{name}.csv") for name in report.TABLE_TITLES}
    report.tables(retrievals, evaluations, tmp_path / "no-paper", out)
    retrieval = pd.read_csv(out["ramole_retrieval"])
    assert sorted(retrieval[retrieval.embedder == "finetuned"].iid_top1) == [91.0, 92.0]
    mixed = pd.read_csv(out["ramole_mixed_iid"])
    tasks = mixed[mixed.kind == "task"]
    assert dict(zip(tasks.seed, tasks["ramole:exact_match"])) == {1: 10.0, 2: 20.0}
    with pytest.raises(ValueError, match="not under a RAMoLE run folder"):
        plan.seed_of(str(tmp_path / "retrieval.json"))


@pytest.mark.parametrize("change,message", [
    ({"pool": {}}, "pool"),
    ({"retriever": {"finetune_tasks": ["smoke_add", "not_in_pool"]}}, "are not LoRAs of ramole.pool"),
    ({"methods": {"mole": None}}, "does not compose retrieved LoRAs"),
    ({"methods": {"ramole": {"options": {"lora_dropout": 1.5}}}}, "lora_dropout must be in"),
    ({"lora": {"r": 2, "lora_alpha": 4, "target_modules": ["q_proj"], "rank": 3}}, "not a valid PEFT LoraConfig"),
])
def test_bad_ramole_config_fails_with_a_readable_message(tmp_path, change, message):
    """The check the Snakefile runs at parse time (schema, then plan.check)."""
    import yaml

    from molebench.config import load_config

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/smoke.yaml").read_text())
    for key, value in change.items():
        config["ramole"][key] = {**config["ramole"][key], **value} if key == "retriever" else value
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config, sort_keys=False))
    with pytest.raises(Exception, match=message):
        load_config(bad)


def test_pool_is_data_task_files_or_bigbench_paths():
    from molebench.core.data import pool_tasks

    specs = pool_tasks({"qa": ["bigbench:natural_instructions/subtask041_qasc_answer_generation"],
                        "smoke": ["smoke_add"]})
    qasc = specs["subtask041_qasc_answer_generation"]
    assert qasc.family == "qa" and qasc.answer == "generate"
    assert qasc.source == {"kind": "bigbench", "task": "natural_instructions/subtask041_qasc_answer_generation",
                           "use_task_prefix": False, "answer": "generate"}
    assert specs["smoke_add"].family == "smoke" and specs["smoke_add"].source["kind"] == "generator"
    with pytest.raises(ValueError, match="'smoke_add' appears twice"):
        pool_tasks({"a": ["smoke_add"], "b": ["smoke_add"]})


def test_router_training_is_seeded_including_lora_dropout(pool_dirs):
    from molebench.core.training import TrainConfig, Trainer, seed_everything

    records = [{"id": str(i), "input": f"q {i}", "references": [f"a {i % 3}"], "lora_indices": [i % 5, (i + 2) % 5]}
               for i in range(8)]
    states = []
    for _ in range(2):
        seed_everything(3)
        method, model = build("ramole", pool_dirs, lora_dropout=0.5)
        method.fit(model, CharTokenizer(), records, Trainer(TrainConfig(steps=3, batch_size=4, lr=1e-2), seed=3))
        states.append({n: p.detach().clone() for n, p in model.ramole_routers.named_parameters()})
    assert all(torch.equal(states[0][n], states[1][n]) for n in states[0])


def test_job_chains_reach_each_scoring_through_the_pool_loras_and_the_retriever():
    from molebench.config import load_config
    from molebench.ramole import plan

    config = load_config("config/smoke.yaml")
    chains = plan.job_chains(config)
    pool = list(plan.pool(config))
    assert [("base_model", "base"), ("ramole_lora", f"{pool[0]}-seed1"), ("ramole_router", "seed1"),
            ("ramole_evaluate", "seed1")] in chains
    assert [("ramole_retriever", "seed1"), ("ramole_embed", "seed1"), ("ramole_retrieve", "seed1"),
            ("ramole_router", "seed1"), ("ramole_evaluate", "seed1")] in chains
    assert len(chains) == len(pool) + 1  # one run seed in the smoke config
    config["ramole"]["methods"] = {"mixture": None}  # nothing trains a router: the scoring follows the pool
    assert [("base_model", "base"), ("ramole_lora", f"{pool[0]}-seed1"), ("ramole_evaluate", "seed1")] in \
        plan.job_chains(config)
