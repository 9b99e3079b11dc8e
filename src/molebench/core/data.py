"""Task registry: a task is one spec (source, prompt template, answer format, metrics): a YAML file in data/tasks/,
or a skill of the generated skill world (molebench.core.skills).

Skill tasks have no files: the task `skill_<skill>` (for example `skill_caesar_3`) is `skills.task_spec(<skill>)`,
built when no YAML file of that name exists, and `list_tasks` names all of them. Their source kind is `skill`; its
train and test splits are `skills.examples(<skill>, n, split_seed, split="train"/"test")`, which never share an input
(the skill world assigns every input to one split by a hash of its text). The prompt is the input alone
(`skills.prompt`), so the LoRA must carry the skill; the skill's instruction sentence is on the spec
(`TaskSpec.instruction`) for retrievers and instructed baselines. Metrics: exact_match; family: the skill's family.
A RAMoLE pool entry can name a skill task like any other task (`pool_task`).

The paper scale's tasks are the files named `paper_*.yaml`: they load the papers' datasets from the Hugging Face hub
(source kind `hub`) and are used only by config/paper.yaml.

A source turns its arguments into raw examples; `build_splits` renders prompts and cuts fixed, seeded splits.
Records written to results/data/<task>/<split>.jsonl have one shape for every task:

    {"id": str, "input": rendered prompt, "references": [str, ...]}                       # answer: generate
    {"id": str, "input": rendered prompt, "references": [correct option], "options": [str, ...], "label": int}
                                                                                           # answer: multiple_choice
"""

from __future__ import annotations

import dataclasses
import json
import random
import string
import tarfile
import zlib
from pathlib import Path

import yaml

from molebench.core import generators, io, skills
from molebench.core.registry import Registry

BIGBENCH_ARCHIVE = "bigbench-1.0.0.tar.gz"
BIGBENCH_TASK_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks"
ANSWER_FORMATS = ("generate", "multiple_choice")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    family: str
    source: dict
    template: str = "{input}"
    answer: str = "generate"
    metrics: tuple[str, ...] = ("exact_match",)
    max_new_tokens: int = 32
    description: str = ""
    paper_task: str = ""  # the paper's row this task reproduces or stands in for (tables show them side by side)
    instruction: str = ""  # the task in one plain sentence (skill tasks), for retrievers; not part of the prompt
    version: int = 1

    def __post_init__(self):
        if self.answer not in ANSWER_FORMATS:
            raise ValueError(f"task {self.name}: answer must be one of {ANSWER_FORMATS}, got {self.answer!r}")
        if "{input}" not in self.template:
            raise ValueError(f"task {self.name}: template must contain '{{input}}'")
        if "kind" not in self.source:
            raise ValueError(f"task {self.name}: source needs a 'kind' (one of {sorted(SOURCES)})")

    def to_dict(self) -> dict:
        """Plain values, the form a Snakemake rule passes a spec in: Snakemake records only builtin params, so a
        spec passed as a TaskSpec would not rerun its jobs when edited."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TaskSpec:
        return cls(**{**values, "metrics": tuple(values["metrics"])})


def task_dirs(extra: list[str] | None = None) -> list[Path]:
    return [Path(d) for d in (extra or [])] + [io.resource("tasks")]


def list_tasks(dirs: list[str] | None = None) -> list[str]:
    """Every task name: the YAML files' and the skill tasks' (`skill_<skill>`)."""
    files = {p.stem for d in task_dirs(dirs) if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(files | {skills.TASK_PREFIX + name for name in skills.SKILLS})


def load_task(name: str, dirs: list[str] | None = None) -> TaskSpec:
    for d in task_dirs(dirs):
        path = d / f"{name}.yaml"
        if path.is_file():
            raw = yaml.safe_load(path.read_text())
            if raw.get("name", name) != name:
                raise ValueError(f"{path}: file name and 'name: {raw['name']}' differ")
            raw["name"] = name
            raw["metrics"] = tuple(raw.get("metrics", ("exact_match",)))
            unknown = set(raw) - {f.name for f in dataclasses.fields(TaskSpec)}
            if unknown:
                raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
            return TaskSpec(**raw)
    if name.startswith(skills.TASK_PREFIX) and name.removeprefix(skills.TASK_PREFIX) in skills.SKILLS:
        return TaskSpec(**skills.task_spec(name.removeprefix(skills.TASK_PREFIX)))
    files = [t for t in list_tasks(dirs) if not t.startswith(skills.TASK_PREFIX)]
    raise KeyError(f"unknown task {name!r}: no {name}.yaml in {[str(d) for d in task_dirs(dirs)]} and no skill "
                   f"{name.removeprefix(skills.TASK_PREFIX)!r}. Known tasks: {', '.join(files)}, and "
                   f"{skills.TASK_PREFIX}<skill> for the {len(skills.SKILLS)} skills of molebench.core.skills")


# ---- sources -------------------------------------------------------------------------------------------------
# A source is fn(args: dict, n: int, seed: int, raw_dir: Path) -> list of raw examples
#   {"input": str, "references": [str]}  or  {"input": str, "options": [str], "label": int}
# `n` is how many examples are wanted (generators make exactly that many; file sources may return more).

SOURCES = Registry("task source kind")
register_source = SOURCES.register
ON_DEMAND = {"generator"}  # sources that make as many examples as asked, rather than reading a file
# sources that make each split on its own, from disjoint inputs: fn(args, n, seed, raw_dir, split="train" | "test")
DISJOINT_SPLITS = {"skill"}
# sources whose datasets have their own train and test splits: each raw example carries "split": "train" or "test"
OWN_SPLITS = {"hub"}


@register_source("bigbench")
def _bigbench(args: dict, n: int, seed: int, raw_dir: Path) -> list[dict]:
    """Stream one task.json from the bigbench sdist (never unpacked: its data carries the BIG-bench canary)."""
    archive = Path(raw_dir) / BIGBENCH_ARCHIVE
    if not archive.is_file():
        raise FileNotFoundError(f"{archive} is missing: run `snakemake {archive}`, or put the bigbench 1.0.0 sdist "
                                f"from https://pypi.org/project/bigbench/1.0.0/#files there")
    member = f"{BIGBENCH_TASK_ROOT}/{args['task']}/task.json"
    with tarfile.open(archive, "r:gz") as tar:
        for info in tar:
            if info.name == member:
                task = json.load(tar.extractfile(info))
                break
        else:
            raise KeyError(f"{member} is not in {archive}")
    prefix = task.get("task_prefix", "") if args.get("use_task_prefix", True) else ""
    out = []
    for ex in task["examples"]:
        text = prefix + ex["input"]
        if "target_scores" in ex and args.get("answer", "multiple_choice") == "multiple_choice":
            options = list(ex["target_scores"])
            scores = list(ex["target_scores"].values())
            out.append({"input": text, "options": options, "label": scores.index(max(scores))})
        else:
            target = ex.get("target")
            if target is None:
                target = [max(ex["target_scores"], key=ex["target_scores"].get)]
            out.append({"input": text, "references": [target] if isinstance(target, str) else list(target)})
    return out


@register_source("jsonl")
def _jsonl(args: dict, n: int, seed: int, raw_dir: Path) -> list[dict]:
    """A local file already in raw-example shape (used by tests and by users who bring their own data)."""
    path = Path(args["path"])
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@register_source("generator")
def _generator(args: dict, n: int, seed: int, raw_dir: Path) -> list[dict]:
    return generators.generate(args["name"], n=n, seed=seed, **args.get("kwargs", {}))


@register_source("skill")
def _skill(args: dict, n: int, seed: int, raw_dir: Path, split: str = "train") -> list[dict]:
    """One skill of the skill world; train and test inputs are disjoint by construction (skills.split_of)."""
    return skills.examples(args["name"], n, seed, split)


class _RowFormatter(string.Formatter):
    """str.format over a dataset row with dotted paths ("{translation.en}") and list values joined by `join`."""

    def __init__(self, join: str):
        self.join = join

    def get_field(self, field_name, args, kwargs):
        return field_value(kwargs, field_name), field_name

    def format_field(self, value, format_spec):
        if isinstance(value, list):  # a list of triples (DART) is one "s | p | o" per triple
            value = self.join.join(" | ".join(v) if isinstance(v, list) else str(v) for v in value)
        return super().format_field(value, format_spec)


def field_value(row: dict, path: str):
    """row["a"]["b"] for the path "a.b"."""
    value = row
    for key in path.split("."):
        value = value[key]
    return value


def hub_example(row: dict, args: dict) -> dict:
    """One dataset row as a raw example, by the field mapping of a `hub` source (see `_hub`)."""
    text = _RowFormatter(args.get("join", ", ")).format(args["input"], **row)
    if "choices" in args:  # multiple choice scored by option likelihood (answer: multiple_choice tasks)
        return {"input": text, **hub_choices(row, args)}
    if "options" in args:  # multiple choice answered by generating the option's text (FLAN style)
        options = [str(o) for o in field_value(row, args["options"])]
        keys = [str(k) for k in field_value(row, args["option_keys"])]
        text += "\nOPTIONS:\n" + "\n".join(f"- {o}" for o in options)
        answer = str(field_value(row, args["answer_key"]))
        references = [options[keys.index(answer)]] if answer in keys else []
    elif "labels" in args:  # a class id named by `labels`; ids outside it (GLUE's unlabelled -1) leave no target
        label = field_value(row, args["target"])
        references = [args["labels"][label]] if 0 <= label < len(args["labels"]) else []
    else:  # one field or a list of fields, each a string or a list of strings; the first answer is trained on
        paths = args["target"] if isinstance(args["target"], list) else [args["target"]]
        references = []
        for path in paths:
            value = field_value(row, path)
            references += [v for v in ([value] if isinstance(value, str) else value) if v not in references]
    return {"input": text, "references": references}


def hub_choices(row: dict, args: dict) -> dict:
    """{"options", "label"} of a multiple-choice row. `choices`: a field holding the option texts, a list of fields
    (one per option), or a literal list {"texts": [...]} (BoolQ's no/yes); `answer_key`: the field with the answer,
    found in the `choice_keys` field (ARC's "A".."E") or read as an index counted from `label_base` (SIQA's "1"..."3").
    An answer that names no option (unlabelled test rows) leaves label None, so the row is dropped and counted."""
    choices = args["choices"]
    if isinstance(choices, dict):
        options = [str(o) for o in choices["texts"]]
    elif isinstance(choices, list):
        options = [str(field_value(row, path)) for path in choices]
    else:
        options = [str(o) for o in field_value(row, choices)]
    answer = field_value(row, args["answer_key"])
    if "choice_keys" in args:
        keys = [str(k) for k in field_value(row, args["choice_keys"])]
        label = keys.index(str(answer)) if str(answer) in keys else None
    else:
        label = int(answer) - args.get("label_base", 0) if str(answer).strip() not in ("", "-1") else None
    return {"options": options, "label": label}


@register_source("hub")
def _hub(args: dict, n: int, seed: int, raw_dir: Path) -> list[dict]:
    """A dataset from the Hugging Face hub, through `datasets.load_dataset(path, name, split=..., revision=...)`.

    args: path, name (optional), revision (optional), train_split and test_split (split expressions such as
    "train[:50000]" or "test[:50%]"), input (a str.format template over the row's fields, dotted paths for nested
    fields, lists joined by `join`), and the answer: `target` (a field, or a list of fields, holding a string or a
    list of strings), `target` plus `labels` (a class id and the answer text of each id), `options`, `option_keys`
    and `answer_key` (multiple choice answered by generating the option's text), or `choices` and `answer_key`
    (multiple choice scored by option likelihood, see `hub_choices`).
    Needs network or a filled HF datasets cache; only the data jobs call it, never the DAG's planning. With
    `local_files` (the config's data.hub_files) the rows come from local JSON Lines files in the dataset's schema
    instead, `{local_files}/{path}/{name or "default"}/{split}.jsonl`, read by datasets' `json` builder so that the
    same split expression ("train[:50000]") applies.
    """
    import datasets

    out = []
    for split in ("train", "test"):
        expression = args[f"{split}_split"]
        if "local_files" in args:
            split_name = expression.split("[")[0]
            file = Path(args["local_files"]) / args["path"] / args.get("name", "default") / f"{split_name}.jsonl"
            if not file.is_file():
                raise FileNotFoundError(f"data.hub_files: {file} is missing (the local copy of hub dataset "
                                        f"{args['path']!r} split {split_name!r})")
            rows = datasets.load_dataset("json", data_files={split_name: str(file)}, split=expression)
        else:
            rows = datasets.load_dataset(args["path"], args.get("name"), split=expression,
                                         revision=args.get("revision"))
        out += [{**hub_example(row, args), "split": split} for row in rows]
    return out


# ---- splits --------------------------------------------------------------------------------------------------

def _check(raw: dict, spec: TaskSpec) -> str | None:
    """Why a raw example cannot be used, or None."""
    if not str(raw.get("input", "")).strip():
        return "empty input"
    if spec.answer == "multiple_choice":
        options = raw.get("options") or []
        if len(options) < 2:
            return "fewer than 2 options"
        if not isinstance(raw.get("label"), int) or not 0 <= raw["label"] < len(options):
            return "label out of range"
    elif not [r for r in raw.get("references", []) if str(r).strip()]:
        return "empty target"
    return None


def build_splits(spec: TaskSpec, n_train: int | None, n_test: int | None, seed: int,
                 raw_dir: str | Path, hub_files: str | None = None) -> tuple[dict, dict]:
    """Fixed, seeded train/test splits. The split seed is per task and independent of the training seed.

    Examples with the same input are merged into one (their references pooled), so that no test input is also a
    training input (BIG-bench's struct-to-text tasks repeat each input once per reference). The test split does not
    depend on n_train: file sources are shuffled once and cut, on-demand sources draw the test split from its own seed,
    and sources with their own splits (hub datasets) give at most n_test examples of their test split (None: all of
    it, and n_train None all of the training split). hub_files: the config's data.hub_files, local copies of the hub
    datasets (see the hub source).
    Returns (splits, report): splits maps split name to records; report counts what was dropped and why.
    """
    kind = spec.source["kind"]
    source = SOURCES[kind]
    if (n_train is None or n_test is None) and kind not in OWN_SPLITS:
        raise ValueError(f"task {spec.name}: only sources with their own splits ({', '.join(sorted(OWN_SPLITS))}) "
                         f"can be used whole, and its source is {kind!r}; take it out of data.whole_splits")
    task_seed = zlib.crc32(spec.name.encode()) ^ seed
    dropped: dict[str, int] = {}
    if kind in DISJOINT_SPLITS:
        # each split made on its own from the split seed; the source guarantees disjoint inputs, checked here too
        test = _usable(source(spec.source, n_test, seed, Path(raw_dir), split="test"), spec, dropped)
        train = _usable(source(spec.source, n_train, seed, Path(raw_dir), split="train"), spec, dropped)
        if {ex["input"] for ex in test} & {ex["input"] for ex in train}:
            raise ValueError(f"task {spec.name}: source {kind!r} gave a training input that is also a test input")
        raw_count = len(test) + len(train)
    elif kind in ON_DEMAND:
        test = _usable(source(spec.source, n_test, 2 * task_seed, Path(raw_dir)), spec, dropped)
        taken = {ex["input"] for ex in test}
        train = [ex for ex in _usable(source(spec.source, n_train + n_test, 2 * task_seed + 1, Path(raw_dir)),
                                      spec, dropped) if ex["input"] not in taken]
        raw_count = len(test) + len(train)
    elif kind in OWN_SPLITS:
        # the dataset's own test split, at most n_test of it (WNLI's has 71); training inputs found anywhere in the
        # test split are dropped. n_train or n_test None: that whole split (the source reads whole splits anyway)
        args = {**spec.source, "local_files": hub_files} if hub_files else spec.source
        raw = source(args, None if None in (n_train, n_test) else n_train + n_test, task_seed, Path(raw_dir))
        raw_count = len(raw)
        test = _usable([ex for ex in raw if ex["split"] == "test"], spec, dropped)
        if not test:
            raise ValueError(f"task {spec.name}: no usable example in test split {spec.source['test_split']!r}")
        taken = {ex["input"] for ex in test}
        random.Random(task_seed).shuffle(test)
        test = test[:n_test]
        n_test = len(test)
        train = _usable([ex for ex in raw if ex["split"] == "train"], spec, dropped)
        leaked = [ex for ex in train if ex["input"] in taken]
        if leaked:
            dropped["training input also in the test split"] = len(leaked)
            train = [ex for ex in train if ex["input"] not in taken]
        random.Random(task_seed + 1).shuffle(train)
    else:
        raw = source(spec.source, n_train + n_test, task_seed, Path(raw_dir))
        raw_count = len(raw)
        usable = _usable(raw, spec, dropped)
        random.Random(task_seed).shuffle(usable)
        test, train = usable[:n_test], usable[n_test:]
    if len(test) < n_test or not train:
        raise ValueError(f"task {spec.name}: only {len(test) + len(train)} usable examples, need more than "
                         f"n_test={n_test}")
    splits = {"test": [_render(spec, ex, i) for i, ex in enumerate(test)],
              "train": [_render(spec, ex, n_test + i) for i, ex in enumerate(train[:n_train])]}
    report = {"task": spec.name, "raw": raw_count, "usable": len(test) + len(train), "dropped": dropped,
              **{f"n_{k}": len(v) for k, v in splits.items()}}
    return splits, report


def _usable(raw: list[dict], spec: TaskSpec, dropped: dict[str, int]) -> list[dict]:
    """Drop (and count) broken examples; merge examples that share an input."""
    merged: dict[str, dict] = {}
    for ex in raw:
        reason = _check(ex, spec)
        if reason is None and ex["input"] in merged:
            if spec.answer == "multiple_choice":
                reason = "duplicate input"
            else:
                merged[ex["input"]]["references"] += [r for r in ex["references"]
                                                      if r not in merged[ex["input"]]["references"]]
                dropped["merged into an earlier example with the same input"] = \
                    dropped.get("merged into an earlier example with the same input", 0) + 1
                continue
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
        else:
            merged[ex["input"]] = {**ex, "references": list(ex.get("references", []))}
    return list(merged.values())


def _render(spec: TaskSpec, ex: dict, i: int) -> dict:
    record = {"id": f"{spec.name}-{i}", "input": spec.template.format(input=ex["input"].strip())}
    if spec.answer == "multiple_choice":
        record.update(options=[str(o) for o in ex["options"]], label=ex["label"],
                      references=[str(ex["options"][ex["label"]])])
    else:
        record["references"] = [str(r).strip() for r in ex["references"] if str(r).strip()]
    return record


# ---- LoRA pools (RAMoLE) -------------------------------------------------------------------------------------

BIGBENCH_POOL_PREFIX = "bigbench:"


def pool_task(entry: str, domain: str, max_new_tokens: int = 16) -> TaskSpec:
    """The task behind one pool entry: a data/tasks name, or `bigbench:<path under benchmark_tasks>` for any json task
    of the archive (so a pool of dozens of tasks needs no task files). Archive tasks are answered by generation and
    scored by exact match, with the bare example as the prompt (no task prefix: the retrieved LoRA must bring the
    task, and a shared prefix would make retrieval trivial)."""
    if not entry.startswith(BIGBENCH_POOL_PREFIX):
        return dataclasses.replace(load_task(entry), family=domain)
    path = entry.removeprefix(BIGBENCH_POOL_PREFIX)
    return TaskSpec(name=path.rstrip("/").rsplit("/", 1)[-1], family=domain,
                    source={"kind": "bigbench", "task": path, "use_task_prefix": False, "answer": "generate"},
                    template="{input}", metrics=("exact_match", "rougeL"), max_new_tokens=max_new_tokens,
                    description=f"BIG-bench {path} (LoRA pool)")


def pool_tasks(pool: dict[str, list[str]], max_new_tokens: int = 16) -> dict[str, TaskSpec]:
    """LoRA name -> task spec, for a pool given as domain -> entries. Names must be unique across the pool."""
    specs: dict[str, TaskSpec] = {}
    for domain, entries in pool.items():
        for entry in entries:
            spec = pool_task(entry, domain, max_new_tokens)
            if spec.name in specs:
                raise ValueError(f"LoRA pool: {spec.name!r} appears twice (domains {specs[spec.name].family!r} and "
                                 f"{domain!r}); each task gives one LoRA")
            specs[spec.name] = spec
    return specs


def task_data(task: str, data_cfg: dict, out_dir: str) -> None:
    write_splits(load_task(task), data_cfg, out_dir)


def write_splits(spec: TaskSpec, data_cfg: dict, out_dir: str) -> None:
    """A task's fixed splits and their report into out_dir (train.jsonl, test.jsonl, report.json)."""
    splits, report = build_splits(spec, data_cfg["n_train"], data_cfg["n_test"], data_cfg["split_seed"],
                                  data_cfg["raw_dir"], data_cfg.get("hub_files"))
    with io.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for name, records in splits.items():
            io.write_jsonl(tmp / f"{name}.jsonl", records)
        io.write_json(tmp / "report.json", report)
