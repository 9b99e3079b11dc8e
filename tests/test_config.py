"""The config's one truth (molebench.config's models): the committed JSON schema is the one they generate, the train
sections are TrainConfig itself and fill no defaults, the configs load, and an unknown key raises wherever it is."""

import copy
import json
import typing
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from molebench import config as cfg
from molebench.config import Config, load_config, schema, schema_text
from molebench.core.errors import ConfigError
from molebench.core.models import MODEL_SOURCES
from molebench.core.scoring import MC_SCORING
from molebench.core.training import TrainConfig
from molebench.t2i.report import TABLE_KINDS
from tests.conftest import MINI_FILES, SCHEMA

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ["smoke", "config", "paper"]


def smoke() -> dict:
    return yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())


def test_the_committed_schema_is_the_generated_one():
    assert SCHEMA.read_text() == schema_text(), "run `make schema` (molebench schema > workflow/schemas/...)"


def test_train_sections_are_train_config_and_the_schema_fills_none_of_its_defaults():
    # one model for the config's train, a variant's override, RAMoLE's and its router's: no copy to drift
    for model, field in [(Config, "train"), (cfg.Variant, "train"), (cfg.Ramole, "train"), (cfg.Router, "train")]:
        assert model.model_fields[field].annotation is TrainConfig, (model, field)
    train = schema()["$defs"]["TrainConfig"]["properties"]
    assert list(train) == list(TrainConfig.model_fields)
    for name, field in TrainConfig.model_fields.items():
        # a variant's `train:` is merged over the config's before TrainConfig's defaults apply: the schema only names them
        assert "default" not in train[name] and train[name]["description"].endswith(f"(default {json.dumps(field.default)})")
    assert TrainConfig() == TrainConfig.from_dict({})


def test_the_schema_fills_exactly_todays_defaults():
    """Snakemake's `validate` fills these into the config; changing one changes results (and reruns jobs)."""
    found = {}

    def walk(node, path):
        if isinstance(node, dict):
            if "default" in node:
                found[path] = node["default"]
            for key, value in node.items():
                walk(value, f"{path}/{key}")
    walk(schema(), "")
    assert found == {
        "/$defs/Data/properties/raw_dir": "data/raw", "/$defs/Data/properties/split_seed": 0,
        "/$defs/Faults/properties/kills": 4, "/$defs/Scaling/properties/own_loras": True,
        "/$defs/Claims/properties/confidence": 0.95, "/$defs/Claims/properties/delta": 1.0,
        "/$defs/Claims/properties/min_seeds": 2, "/properties/claims": {"confidence": 0.95, "delta": 1.0, "min_seeds": 2},
        "/$defs/Scaling/properties/extra_pool": [], "/properties/results_dir": "results",
        "/properties/reports_dir": "reports", "/properties/offline": True, "/properties/threads_per_job": 1,
        "/properties/gpus_per_job": 0, "/properties/faults": {"kills": 4}, "/properties/figures": {},
            "/$defs/Budget/properties/cores": 2, "/$defs/Budget/properties/wall_minutes": 90,
            "/properties/budget": {"cores": 2, "wall_minutes": 90.0, "reference": None},
            "/properties/experts": {}, "/$defs/LmEval/properties/registry": True,
            "/$defs/LmEvalTask/properties/family": "lm-eval"}


def test_enumerated_values_are_the_registries():
    literal = {name: set(typing.get_args(model.model_fields[field].annotation))
               for name, model, field in [("model source", cfg.Model, "source"), ("mc_scoring", cfg.EvalOverride,
                                          "mc_scoring"), ("t2i table kind", cfg.T2ITable, "kind")]}
    assert literal == {"model source": set(MODEL_SOURCES), "mc_scoring": set(MC_SCORING),
                       "t2i table kind": set(TABLE_KINDS)}


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_loads(name):
    config = load_config(REPO / "config" / f"{name}.yaml")
    raw = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    for variant, spec in raw["variants"].items():  # overrides stay overrides: nothing filled in
        assert config["variants"][variant].get("train") == spec.get("train"), variant
        assert config["variants"][variant].get("eval") == spec.get("eval"), variant
    assert config["train"] == raw["train"]


@pytest.mark.parametrize("where,change,key", [
    ("top level", lambda c: c.update(epochs=3), "epochs"),
    ("nested section", lambda c: c["ramole"]["retriever"]["finetune"].update(warmup=10), "warmup"),
    ("train override", lambda c: c["variants"]["mole"]["train"].update(stepz=3), "stepz"),
    ("eval override", lambda c: c["variants"]["few-shot"]["eval"].update(batchsize=3), "batchsize"),
    ("t2i training", lambda c: c["t2i"]["clip_train"].update(epochs=2), "epochs"),
])
def test_an_unknown_key_raises_naming_it(tmp_path, where, change, key):
    config = smoke()
    change(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=f"unknown key '{key}'; known keys: "):
        load_config(path)
    with pytest.raises(WorkflowError, match=key):  # the Snakefile's schema refuses it too
        validate(copy.deepcopy(config), str(SCHEMA))


def test_a_train_section_with_an_unknown_key_raises_where_training_starts():
    with pytest.raises(ConfigError, match="train: unknown key 'stepz'; known keys: steps, epochs, batch_size, lr"):
        TrainConfig.from_dict({"steps": 3, "stepz": 4})
    with pytest.raises(ConfigError, match="train.lr: Input should be greater than 0"):
        TrainConfig.from_dict({"lr": 0.0})


@pytest.mark.parametrize("change,message", [
    (lambda c: c.update(seeds=[1, 1]), "seeds: 1 listed more than once"),
    (lambda c: c["data"].update(n_train="64"), "data.n_train: Input should be a valid integer"),
    (lambda c: c["t2i"].update(source="dall-e"), "t2i.source: Input should be 'world' or 'stable-diffusion'"),
    (lambda c: c["ramole"].update(pool={}), "ramole.pool: Dictionary should have at least 1 item"),
])
def test_the_models_and_the_schema_refuse_the_same_shapes(tmp_path, change, message):
    config = smoke()
    change(config)
    with pytest.raises(ConfigError, match=message):
        cfg.check_shape(copy.deepcopy(config))
    with pytest.raises(WorkflowError):
        validate(config, str(SCHEMA))


def test_the_mini_extensions_merge_into_the_default_as_snakemake_merges_configfiles():
    default = load_config(MINI_FILES[0])
    assert not {"ramole", "scaling", "t2i"} & set(default) and "table6" not in default["tables"]
    whole = load_config(MINI_FILES)
    assert {"ramole", "scaling", "t2i"} <= set(whole)
    assert set(whole["tables"]) == set(default["tables"]) | {"table6", "table8", "mixlora_single", "mixlora_multi"}
    assert whole["groups"]["bbh"] == default["groups"]["bbh"] and "skill_mix" in whole["groups"]  # sections merge
