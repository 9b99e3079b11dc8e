"""Training length and learning-rate schedule: a recipe in epochs takes its steps from the records it trains on,
`steps` and `epochs` exclude each other (a variant's override replaces the config's duration), and `linear` decays the
learning rate to 0 as the Hugging Face Trainer's default schedule; `auto` bf16 is bf16 only where the hardware has it."""

import json
import re
from pathlib import Path

import pytest
import torch

from molebench.core import io, training
from molebench.core.errors import ConfigError
from molebench.core.training import TrainConfig, Trainer, merge_train
from tests.conftest import CharTokenizer, tiny_llama, train_records


def run(tmp_path, **train):
    model = tiny_llama()
    params = [p for n, p in model.named_parameters() if "q_proj" in n]
    info = Trainer(TrainConfig(batch_size=5, lr=0.01, **train), 1, tmp_path / "log.jsonl").train(
        model, CharTokenizer(), train_records(), params)
    return info, [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]


def test_epochs_count_steps_from_the_training_records(tmp_path):
    info, curve = run(tmp_path, epochs=2)  # 12 records at batch 5: 3 steps an epoch
    assert info["steps"] == len(curve) == 6 and info["epochs"] == 2.5  # the last batch of an epoch is full
    assert {row["lr"] for row in curve} == {0.01}  # constant by default


def test_linear_schedule_decays_to_zero_without_warmup(tmp_path):
    _, curve = run(tmp_path, steps=4, schedule="linear")
    assert [row["lr"] for row in curve] == pytest.approx([0.01, 0.0075, 0.005, 0.0025])


def test_steps_and_epochs_exclude_each_other_and_an_override_replaces_the_duration():
    with pytest.raises(ConfigError, match=r"train: give steps \(20\) or epochs \(2\), not both"):
        TrainConfig.from_dict({"steps": 20, "epochs": 2})
    config = {"epochs": 20, "batch_size": 10, "schedule": "linear"}
    assert merge_train(config, {"steps": 800, "lr": 1e-5}) == {"batch_size": 10, "schedule": "linear", "steps": 800,
                                                              "lr": 1e-5}
    assert merge_train({"steps": 60, "lr": 1.0}, {"epochs": 2}) == {"lr": 1.0, "epochs": 2}
    assert merge_train(config, None) == config
    assert TrainConfig.from_dict(merge_train(config, {"lr": 1e-5})).total_steps(95) == 200


@pytest.mark.parametrize("native", [True, False])
def test_auto_bf16_follows_the_hardware_and_the_run_records_it(tmp_path, monkeypatch, native):
    monkeypatch.setattr(training, "native_bf16", lambda device_type: native)
    assert isinstance(training.autocast("auto"), torch.autocast) is native
    info, _ = run(tmp_path, steps=1, autocast_bf16="auto")
    assert info["bf16"] is native
    assert run(tmp_path, steps=1, autocast_bf16=True)[0]["bf16"] is True  # an explicit setting is never overridden
    with pytest.raises(ConfigError, match="autocast_bf16"):
        TrainConfig.from_dict({"autocast_bf16": "sometimes"})


def test_provenance_records_the_cpu_and_its_bf16():
    hardware = io.provenance({})["hardware"]
    assert hardware["native_bf16"] is io.native_bf16()
    assert hardware["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and "cpu family" in cpuinfo.read_text():  # Linux on x86: two EPYC generations share a name
        assert re.search(r"\(family \d+, model \d+\)$", hardware["processor"])
