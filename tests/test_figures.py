"""figures.py: MoLE Figures 5 and 7 from training logs and gate reports, and their site pages."""

import json

import pytest

from molebench.core.io import write_json
from molebench.nlp import figures


def write_logs(root, variant, seeds, entropy):
    folders = []
    for seed in seeds:
        folder = root / "methods" / variant / "g" / f"seed{seed}"
        folder.mkdir(parents=True)
        lines = [{"step": s, "loss": 1.0, "gate_entropy": entropy(s) + seed, "gate_mean_weights": [0.5, 0.3, 0.2]}
                 for s in range(4)]
        (folder / "train_log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        folders.append(str(folder))
    return folders


def test_gate_entropy_averages_seeds_per_step(tmp_path):
    dirs = {"mole": write_logs(tmp_path, "mole", [1, 2], lambda s: 1.0),
            "mole-no-balance": write_logs(tmp_path, "mole-no-balance", [1, 2], lambda s: 1.0 - 0.2 * s)}
    data, fig = figures.gate_entropy(dirs)
    assert set(data.columns) >= {"variant", "seed", "step", "lora", "gate_entropy", "weight"}
    curve = fig.axes[0].lines[1].get_ydata()  # mole-no-balance, mean of seeds 1 and 2 (+1.5)
    assert list(curve) == pytest.approx([2.5, 2.3, 2.1, 1.9])
    assert len(data) == 2 * 2 * 4 * 3  # variants x seeds x steps x LoRAs


def test_gate_entropy_refuses_a_log_without_gates(tmp_path):
    folder = tmp_path / "seed1"
    folder.mkdir()
    (folder / "train_log.jsonl").write_text(json.dumps({"step": 0, "loss": 1.0}) + "\n")
    with pytest.raises(ValueError, match="not a MoLE training log"):
        figures.gate_entropy({"nla": [str(folder)]})


def test_gate_heatmap_one_panel_per_task_gates_in_model_order(tmp_path):
    dirs = []
    for seed, w in ((1, [0.6, 0.4]), (2, [0.2, 0.8])):
        folder = tmp_path / f"seed{seed}"
        for task in ("t_a", "t_b"):
            write_json(folder / f"{task}.gates.json", {"experts": ["t_a", "t_b"], "masked": [], "source": "inference",
                                                       "gates": {"layers.1": {"mean_weights": w},
                                                                 "layers.0": {"mean_weights": w[::-1]}},
                                                       "order": ["layers.1", "layers.0"]})
        write_json(folder / "t_a.json", {"metrics": {}})  # metric files beside them are not gate reports
        dirs.append(str(folder))
    data, fig = figures.gate_heatmap({"mole": dirs})
    assert len(fig.axes) == 4  # two heat maps and their colour bars
    image = fig.axes[0].images[0].get_array()
    assert image[0, 0] == pytest.approx(0.4) and image[0, 1] == pytest.approx(0.6)  # lora t_a: mean over seeds
    assert list(data.gate.unique()) == ["layers.1", "layers.0"]
    with pytest.raises(ValueError, match="no .gates.json"):
        figures.gate_heatmap({"nla": [str(tmp_path / "empty")]})


def test_figure_page_is_linked_from_the_index(tmp_path):
    from test_site import make_site

    png = tmp_path / "fig" / "figure5.png"
    png.parent.mkdir()
    png.write_bytes(b"\x89PNG fake")
    png.with_suffix(".csv").write_text("a\n1\n")
    spec = {"title": "Figure <5>", "kind": "gate_entropy", "group": "g1", "variants": ["mole"]}
    site = make_site(tmp_path, figures={"figure5": (spec, png)})
    assert 'href="figure5.html"' in (site / "index.html").read_text()
    page = (site / "figure5.html").read_text()
    assert "Figure &lt;5&gt;" in page and 'src="figure5.png"' in page and "Mean entropy of the gate weights" in page
    assert (site / "figure5.csv").read_text() == "a\n1\n"


def test_expert_utilisation_one_panel_per_variant_and_task_layers_in_model_order(tmp_path):
    folders = []
    for seed, shares in ((1, [0.5, 0.5, 0.0, 0.0]), (2, [0.25, 0.25, 0.25, 0.25])):
        folder = tmp_path / "metrics" / "mixlora-mt" / "g" / f"seed{seed}"
        folder.mkdir(parents=True)
        for task in ("t1", "t2"):
            layers = {f"model.layers.{i}.mlp": {"tokens": 10, "share": shares} for i in (0, 1, 10)}
            write_json(folder / f"{task}.gates.json", {"kind": "expert_utilisation", "num_experts": 4, "top_k": 2,
                                                       "layers": layers, "order": list(layers)})
        folders.append(str(folder))
    data, fig = figures.expert_utilisation({"mixlora-mt": folders})
    assert len(data) == 2 * 2 * 3 * 4  # seeds x tasks x layers x experts
    assert list(data[data.seed == 1].module.unique()) == [f"model.layers.{i}.mlp" for i in (0, 1, 10)]
    assert len(fig.axes) == 2 * 2  # a panel and its colour bar per (variant, task)
    assert "largest 0.375" in fig.axes[0].get_title()  # seeds averaged: (0.5 + 0.25) / 2


def test_expert_utilisation_refuses_a_mole_gate_report(tmp_path):
    write_json(tmp_path / "t.gates.json", {"experts": ["a"], "gates": {}, "order": []})
    with pytest.raises(ValueError, match="not a MixLoRA expert utilisation report"):
        figures.expert_utilisation({"mole": [str(tmp_path)]})
