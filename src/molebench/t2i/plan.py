"""What the text-to-image DAG holds, from the `t2i` config alone (parse time, no files read): subjects, compositions,
the variants each table needs, and which variants train.

Sources:
    world             subjects and compositions drawn from the world seed (molebench.t2i.world)
    stable-diffusion  subjects are local DreamBooth folders named in the config, compositions are listed there
"""

from __future__ import annotations

from molebench.core import method as methods
from molebench.core.errors import ConfigError
from molebench.core.method import variant_method
from molebench.t2i import world
from molebench.t2i.components import WorldModelConfig
from molebench.t2i.gate_training import GateTrainingConfig
from molebench.t2i.subjects import SubjectLoraConfig


class T2IConfigError(ConfigError):
    pass


def subjects(t2i: dict) -> list[dict]:
    """[{name, prompt, presence (label index or None), folder (paper) or None}] in a fixed order."""
    if t2i["source"] == "world":
        return [{"name": s.name, "prompt": s.prompt(), "presence": world.presence_index(s.thing), "folder": None,
                 "identifier": s.identifier}
                for s in world.subjects(t2i["seed"], t2i["world"]["n_subjects"])]
    return [{"name": name, "prompt": spec["prompt"], "presence": None, "folder": spec["folder"], "identifier": None}
            for name, spec in t2i["subjects"].items()]


def compositions(t2i: dict) -> list[dict]:
    """[{name, subjects: [names], prompts: [str], size}]."""
    if t2i["source"] == "world":
        by_name = {s.name: s for s in world.subjects(t2i["seed"], t2i["world"]["n_subjects"])}
        sets = world.compositions(list(by_name.values()), t2i["world"]["composition_sizes"],
                                  t2i["world"]["per_size"], t2i["seed"])
        return [{"name": world.composition_name(s), "subjects": [x.name for x in s], "size": len(s),
                 "prompts": world.composition_prompts(s, t2i["eval"]["prompts"])} for s in sets]
    prompt_of = {s["name"]: s["prompt"] for s in subjects(t2i)}
    out = []
    for names in t2i["compositions"]:
        body = " and ".join(prompt_of[n] for n in names)
        prompts = [template.format(subjects=body) for template in t2i["prompt_templates"]][:t2i["eval"]["prompts"]]
        out.append({"name": "+".join(names), "subjects": list(names), "size": len(names), "prompts": prompts})
    return out


def composition(t2i: dict, name: str) -> dict:
    for c in compositions(t2i):
        if c["name"] == name:
            return c
    raise KeyError(f"unknown composition {name!r}")


def method_of(t2i: dict, variant: str):
    return methods.get(t2i["variants"][variant]["method"])


def table_compositions(t2i: dict, table: str) -> list[dict]:
    sizes = t2i["tables"][table]["sizes"]
    return [c for c in compositions(t2i) if c["size"] in sizes]


def evaluations(t2i: dict, results: str) -> list[str]:
    """Every metrics folder the tables need."""
    out = set()
    for table, spec in t2i["tables"].items():
        for variant in spec["columns"].values():
            for c in table_compositions(t2i, table):
                for seed in t2i["seeds"]:
                    out.add(f"{results}/t2i/metrics/{variant}/{c['name']}/seed{seed}")
    return sorted(out)


def preconditions_file(results: str) -> str:
    """The world's precondition checks (base prompt-following, each subject LoRA alone), gathered in one CSV."""
    return f"{results}/t2i/preconditions.csv"


def subject_dirs(t2i: dict, results: str) -> list[str]:
    """The subject LoRA folder of every subject in a table's composition (each holds its precondition check in the
    world): the library is trained once, with the world's seed."""
    names = dict.fromkeys(s for table in t2i["tables"] for c in table_compositions(t2i, table) for s in c["subjects"])
    return [f"{results}/t2i/subjects/{name}/seed{t2i['seed']}" for name in names]


def expert_dirs(t2i: dict, results: str, variant: str, composition_name: str) -> dict[str, str]:
    """subject -> the folder of the expert a composition loads for it: its subject LoRA, or for a method whose experts
    are spectral shifts (SVDiff) the variant's shifts; the world's library, trained once (`t2i.seed`), as the paper
    composes given LoRAs; each run seed trains the gates and samples over the same ones."""
    names = composition(t2i, composition_name)["subjects"]
    if method_of(t2i, variant).expert_kind == "spectral_shifts":
        return {s: f"{results}/t2i/shifts/{variant}/{s}/seed{t2i['seed']}" for s in names}
    return {s: f"{results}/t2i/subjects/{s}/seed{t2i['seed']}" for s in names}


def masked_composition(t2i: dict) -> str:
    """The composition the masking figure drops subjects from: the first of the first table."""
    return table_compositions(t2i, next(iter(t2i["tables"])))[0]["name"]


def job_chains(t2i: dict) -> list[list[tuple[str, str]]]:
    """Every dependency chain to a job that scores a composition or draws the masking figure, as (rule, benchmark job
    name) steps, as molebench.nlp.plan.job_chains gives the NLP DAG's: world -> base model -> one expert -> the
    composition's job, and the CLIP's and presence classifier's branches."""
    def chains(variant: str, name: str) -> list[list[tuple[str, str]]]:
        method, seed = method_of(t2i, variant), t2i["seed"]
        tail = ("t2i_compose" if method.trainable else "t2i_evaluate", f"{variant}-{name}")
        experts = [("t2i_shifts", f"{variant}-{s}-seed{seed}") if method.expert_kind == "spectral_shifts"
                   else ("t2i_subject", f"{s}-seed{seed}") for s in composition(t2i, name)["subjects"]]
        side = ["t2i_clip", *(["t2i_presence"] if t2i["source"] == "world" else [])]
        return ([[world, ("t2i_base", "base"), expert, tail] for expert in experts]
                + [[world, (rule, rule.removeprefix("t2i_")), tail] for rule in side])

    world = ("t2i_world", "world")
    pairs = dict.fromkeys((variant, c["name"]) for table, spec in t2i["tables"].items()
                          for variant in spec["columns"].values() for c in table_compositions(t2i, table))
    masking = chains(t2i["masking"]["variant"], masked_composition(t2i))
    return [c for pair in pairs for c in chains(*pair)] + [[*c, ("t2i_masking", "masking")] for c in masking]


def check(t2i: dict) -> None:
    """Fail at parse time, with the key at fault, on what the schema cannot see (the source is one of the schema's,
    molebench.config.T2I)."""
    if t2i["source"] == "stable-diffusion":
        known = set(t2i["subjects"])
        for names in t2i["compositions"]:
            unknown = set(names) - known
            if unknown:
                raise T2IConfigError(f"t2i.compositions: {sorted(unknown)} are not in t2i.subjects")
    sections = {"subject_lora": SubjectLoraConfig, "gate_train": GateTrainingConfig}
    if t2i["source"] == "world":
        sections["model"] = WorldModelConfig
    for key, cls in sections.items():
        try:
            cls(**t2i.get(key, {}))
        except (TypeError, ValueError) as err:
            raise T2IConfigError(f"t2i.{key}: {err}") from None
    for name, variant in t2i["variants"].items():
        cls, options = variant_method(variant, f"t2i.variants.{name}", T2IConfigError)
        problem = cls.pipeline_problem(options)
        if problem:
            raise T2IConfigError(f"t2i.variants.{name}: {problem}; see docs/methods.md")
    for table, spec in t2i["tables"].items():
        for label, variant in spec["columns"].items():
            if variant not in t2i["variants"]:
                raise T2IConfigError(f"t2i.tables.{table}.columns.{label}: unknown variant {variant!r}")
        if not table_compositions(t2i, table):
            raise T2IConfigError(f"t2i.tables.{table}: no composition has a size in {spec['sizes']}")
    if t2i["source"] == "world" and not t2i["world"].get("training_images"):
        raise T2IConfigError("t2i.world.training_images: the world source trains each subject LoRA on generated "
                             "images of the subject alone and beside other objects; set how many (e.g. 24)")
    if t2i["source"] == "world" and not t2i.get("preconditions"):
        raise T2IConfigError("t2i.preconditions: the world source checks its base model and subject LoRAs before "
                             "scoring compositions; set {images: 64, min_share: 0.8}")
    if t2i["masking"]["variant"] not in t2i["variants"]:
        raise T2IConfigError(f"t2i.masking.variant: unknown variant {t2i['masking']['variant']!r}")
