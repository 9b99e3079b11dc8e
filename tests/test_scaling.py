"""MoLE Table 6 (scaling): the config's `scaling` section as groups, its checks, the LoRAs each size composes, and
the methods over 128 LoRAs of the pool recipe on a tiny model."""

import copy
from pathlib import Path

import pytest
import torch
import yaml

from molebench.core.adapters import Expert
from molebench.core.training import TrainConfig, Trainer
from molebench.nlp import plan
from tests.conftest import SCHEMA, CharTokenizer, mini_config, tiny_llama, train_records

REPO = Path(__file__).resolve().parents[1]


def config(name: str = "smoke") -> dict:
    from snakemake.utils import validate

    cfg = mini_config() if name == "mini" else yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    validate(cfg, str(SCHEMA))  # fills the defaults, as the Snakefile does
    return cfg


G = "skills"  # the mini config's scaling group (MoLE Table 6 on the skill world)


def test_scaling_groups_are_ordinary_groups_scored_on_the_family():
    cfg = plan.expand(config("mini"))
    assert plan.scaling_groups(cfg) == {f"{G}-n8": 8, f"{G}-n24": 24, f"{G}-n48": 48, f"{G}-n128": 128}
    assert all(cfg["groups"][g] == cfg["groups"][G] for g in plan.scaling_groups(cfg))
    plan.check(cfg)
    assert plan.expand(cfg) == cfg  # idempotent
    # the gain check counts a scaling group as the group it scores: no rows twice
    assert f"{G}-n8" not in plan.used_groups(cfg) and G in plan.used_groups(cfg)


def test_compositions_nest_hold_the_family_in_a_seeded_order_and_share_the_pool_recipe():
    cfg = plan.expand(config("mini"))
    loras = {n: plan.lora_tasks(cfg, g) for g, n in plan.scaling_groups(cfg).items()}
    assert {n: len(v) for n, v in loras.items()} == {8: 8, 24: 24, 48: 48, 128: 128}
    for small, large in [(8, 24), (24, 48), (48, 128)]:
        assert set(loras[small]) < set(loras[large])
    own = cfg["groups"][G]
    assert all(set(own) <= set(v) for v in loras.values()) and len(set(loras[128])) == 128
    # LoRAHub's search moves weights in index order: the family's own LoRAs must not lead every composition
    positions = {n: sorted(v.index(t) for t in own) for n, v in loras.items()}
    assert any(p != [0, 1, 2] for p in positions.values()), positions
    assert plan.lora_tasks(cfg, f"{G}-n48") == loras[48]  # the same order on every call
    other = copy.deepcopy(cfg)
    other["scaling"]["seed"] = 1
    assert plan.lora_tasks(other, f"{G}-n8") != loras[8]
    dirs = plan.adapter_dirs(cfg, "mole", f"{G}-n128", seed=2)
    seed = cfg["ramole"]["seed"]  # every LoRA of a composition: the pool recipe, one seed, whatever the run's seed
    for task, path in zip(loras[128], dirs):
        assert path == f"results/{'scaling' if task in own else 'ramole'}/loras/{task}/seed{seed}"
    # training data and scored tasks are the family's, not the pool's
    assert plan.group_tasks(cfg, "mole", f"{G}-n128") == cfg["groups"][G]
    assert plan.evaluated_tasks(cfg, "mole", f"{G}-n128") == cfg["groups"][G]
    # RAMoLE's own pool is untouched: the extra tasks are only Table 6's
    from molebench.ramole import plan as ramole

    assert not set(plan.scaling_extra(cfg)) & set(ramole.pool(cfg)) and len(ramole.pool(cfg)) == 48
    chain = next(c for c in plan.job_chains(cfg) if ("compose", f"mole-{G}-n8-seed1") in c and
                 c[1][0] == "scaling_lora")
    assert chain[1] in {("scaling_lora", f"{t}-seed{seed}") for t in cfg["groups"][G]}
    assert any(c[1][0] == "ramole_lora" for c in plan.job_chains(cfg) if ("evaluate", f"{G}-n8-seed1") in c)


def test_the_draw_follows_the_seed_and_own_loras_can_be_left_out():
    cfg = plan.expand(config("mini"))
    other = copy.deepcopy(cfg)
    other["scaling"]["seed"] = 1
    assert plan.scaling_candidates(other)[3:] != plan.scaling_candidates(cfg)[3:]
    paperlike = copy.deepcopy(cfg)
    paperlike["scaling"]["own_loras"] = False
    assert not set(plan.scaling_candidates(paperlike)) & set(cfg["groups"][G])


@pytest.mark.parametrize("change,message", [
    ({"group": "no_such_group"}, "scaling.group: unknown group 'no_such_group'"),
    ({"sizes": [3, 3]}, "scaling.sizes must increase"),
    ({"sizes": [8, 3]}, "scaling.sizes must increase"),
    ({"sizes": [3, 9]}, "9 LoRAs, but the pool has only 8"),
    ({"sizes": [1, 3]}, "fewer than the group's own 2"),
    ({"extra_pool": ["smoke_add"]}, "already"),  # also in ramole.pool
    ({"extra_pool": ["no_such_task"]}, "no_such_task"),
])
def test_bad_scaling_sections_fail_with_a_message(change, message):
    cfg = config()
    cfg["scaling"].update(change)
    cfg["tables"].pop("table6")
    with pytest.raises(plan.ConfigError, match=message):
        plan.check(plan.expand(cfg) if "group" not in change else cfg)


def test_scaling_needs_the_ramole_pool_and_a_table_paper_row_needs_a_table_group():
    cfg = config()
    cfg.pop("ramole")
    with pytest.raises(plan.ConfigError, match="add a `ramole:` section"):
        plan.check(plan.expand(cfg))
    cfg = plan.expand(config())
    cfg["tables"]["table6"]["paper_rows"] = {"smoke_gen": "8 LoRAs"}
    with pytest.raises(plan.ConfigError, match="paper_rows: 'smoke_gen' is not a group of the table"):
        plan.check(cfg)


# ---- the methods over 128 LoRAs of the pool recipe (rank 2, q_proj and v_proj of the last block only) ----------

N = 128


def pool_experts(base, n: int = N, rank: int = 2) -> list[Expert]:
    torch.manual_seed(3)
    modules = {name: m for name, m in base.named_modules()
               if name.startswith("model.layers.1.") and name.endswith(("q_proj", "v_proj"))}
    return [Expert(name=f"lora{i}", path=Path(f"lora{i}"), rank=rank, factors={
        name: (torch.randn(rank, m.in_features) * 0.1, torch.randn(m.out_features, rank) * 0.1, 2.0)
        for name, m in modules.items()}) for i in range(n)]


def test_mole_gate_over_128_loras_builds_and_trains_a_step():
    from molebench.core import method as methods

    base = tiny_llama()
    method = methods.get("mole")()
    model = method.build(base, pool_experts(base))
    gates = dict(model.mole_gates.named_children())
    assert len(gates) == 1  # one attention layer carries LoRAs: one layer-wise gate
    (gate,) = gates.values()
    d_q = base.model.layers[1].self_attn.q_proj.base.out_features  # the gate reads its first matrix's LoRA outputs
    assert tuple(gate.weight.shape) == (N, N * d_q)  # default `pooled` input: N^2 d weights per gate
    before = gate.weight.detach().clone()
    trainer = Trainer(TrainConfig(steps=1, batch_size=4, lr=0.05), 0, None)
    info = method.fit(model, CharTokenizer(), train_records(), trainer)
    assert torch.isfinite(gate.weight).all() and not torch.equal(before, gate.weight)
    assert info["trainable_params"] == N * N * d_q + 1  # the gate and its temperature
    report = method.gate_report(model)
    assert len(next(iter(report["gates"].values()))["mean_weights"]) == N


@pytest.mark.parametrize("name,options", [("nla", {"space": "output"}), ("lorahub", {"pool_size": N, "steps": 2}),
                                          ("pems", {"n_validation": 4})])
def test_baselines_compose_128_loras(name, options):
    from molebench.core import method as methods
    from molebench.core.models import prompt_positions

    base = tiny_llama()
    cls = methods.get(name)
    method = cls(cls.config_class.from_dict(options))
    model = method.build(base, pool_experts(base))
    if method.trainable:
        info = method.fit(model, CharTokenizer(), train_records(), Trainer(TrainConfig(steps=1, batch_size=4), 0, None))
        assert name != "lorahub" or len(info["weights"]) == N  # every LoRA weighed, none subsampled away
    ids = torch.randint(3, 97, (2, 5))
    with torch.no_grad(), prompt_positions(torch.ones_like(ids)):
        assert torch.isfinite(model(input_ids=ids).logits).all()
