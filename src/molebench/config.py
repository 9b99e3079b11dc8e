"""The config's one truth: the pydantic models below describe every key (type, bounds, default, description).

    molebench schema > workflow/schemas/config.schema.yaml     regenerate the JSON schema from them (`make schema`)

The Snakefile validates a config against that generated schema, which fills the defaults; `load_config` validates it
against the models (a ConfigError naming the key), fills the same defaults with the same schema, expands the scaling
groups and runs every track's checks of what a schema cannot say (unknown tasks, groups, variants, method options),
with messages that name the fix. tests/test_config.py fails when the committed schema is not the generated one.

Sections that hold method options, PEFT LoraConfig fields or a model source's arguments stay open (their own classes
check them, in the tracks' checks). An optional key without a default is written `key: T = Field(None, ...)`: None
means absent, the schema gives it no default, and a null in the YAML is refused as the schema refuses it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import GenerateJsonSchema
from snakemake.utils import update_config, validate

from molebench.core.errors import ConfigError
from molebench.core.section import Section, problems
from molebench.core.training import BF16, TrainConfig
from molebench.nlp import plan
from molebench.ramole import plan as ramole_plan
from molebench.report.evidence import Settings
from molebench.t2i import plan as t2i_plan


def _unique(items: list) -> list:
    repeated = sorted({str(x) for x in items if items.count(x) > 1})
    if repeated:
        raise ValueError(f"{', '.join(repeated)} listed more than once")
    return items


UNIQUE = {"uniqueItems": True}
Seeds = Annotated[list[Annotated[int, Field(ge=0)]], AfterValidator(_unique), Field(min_length=1, json_schema_extra=UNIQUE)]
Names = Annotated[list[str], AfterValidator(_unique), Field(json_schema_extra=UNIQUE)]  # task, variant or LoRA names


# ---- the NLP tables (molebench.nlp) --------------------------------------------------------------------------

class Model(BaseModel):
    """The base model: a source of molebench.core.models.MODEL_SOURCES and its arguments."""

    model_config = ConfigDict(extra="allow", strict=True)  # the source's arguments (molebench.core.models)

    source: Literal["smollm2-gguf", "tiny-random", "hub"] = Field(description="where the base model comes from")


class Data(Section):
    """The per-task splits."""

    raw_dir: str = Field("data/raw", description="folder of downloaded raw datasets")
    split_seed: int = Field(0, description="seed of the train/test split of every task")
    n_train: int = Field(ge=1, description="training records per task (at most)")
    n_test: int = Field(ge=1, description="test records per task (at most)")
    hub_files: str = Field(None, description="folder of local copies of the hub datasets, read instead of the hub: "
                                             "{hub_files}/{path}/{name or default}/{split}.jsonl in the dataset's "
                                             "schema (the dress rehearsal, config/rehearsal.yaml)")
    whole_splits: Names = Field(None, description="groups whose tasks keep their dataset's whole training and test "
                                                  "splits instead of n_train and n_test (hub tasks only; MixLoRA's "
                                                  "suite trains and scores on whole splits)")


class Lora(BaseModel):
    """PEFT LoraConfig fields of a LoRA recipe; fields not named here are passed to LoraConfig as well (checked
    against it at parse time)."""

    model_config = ConfigDict(extra="allow", strict=True)

    r: int = Field(ge=1, description="LoRA rank")
    lora_alpha: float = Field(gt=0, description="LoRA scaling numerator (scale = lora_alpha / r)")
    lora_dropout: float = Field(None, ge=0, le=1, description="dropout on the LoRA input in training")
    target_modules: list[str] = Field(min_length=1, description="module names that get a LoRA")


class ExternalExpert(Section):
    """A LoRA that is not trained here: a local PEFT adapter folder or a hub repository pinned to a revision, with
    the training data that methods fitted over it use (MoLE's gates, LoraHub's examples, PEMs' held-out loss)."""

    path: str = Field(None, description="local PEFT adapter folder (adapter_config.json + adapter_model.safetensors)")
    hub: str = Field(None, description="hub repository id of a PEFT adapter (needs `revision`; fetched by the "
                                       "fetch_expert rule, so only with the hub reachable)")
    revision: str = Field(None, description="the hub commit (or tag) the adapter is pinned to")
    task: str = Field(None, description="a data/tasks task whose training split is this LoRA's training data")
    data: str = Field(None, description="a jsonl file of this LoRA's training records ({id, input, references})")


class LmEvalTask(Section):
    """An lm-eval task a group may list: scored through lm-eval (molebench.core.harness), shown like any task."""

    metrics: Names = Field(min_length=1, description="lm-eval's per-sample metrics kept (acc, exact_match, ...), "
                                                     "each scored 0-100 per example")
    family: str = Field("lm-eval", description="the task's family in tables and claims")


class LmEval(Section):
    """lm-evaluation-harness tasks as scoring targets (registry names, or YAML definitions in a local folder)."""

    include_path: str = Field(None, description="folder of lm-eval task YAML files (TaskManager(include_path=...)); "
                                                "offline, their datasets must be local (dataset_path: json)")
    registry: bool = Field(True, description="also index lm-eval's own task registry (false: only include_path, "
                                             "which loads in a fraction of the time)")
    num_fewshot: int = Field(None, ge=0, description="examples in each prompt (lm-eval's num_fewshot); default: the "
                                                     "task's")
    limit: int = Field(None, ge=1, description="examples scored per task (lm-eval's limit); default: all")
    tasks: dict[str, LmEvalTask] = Field(min_length=1, description="lm-eval task name -> how it is reported")


class EvalOverride(Section):
    """Scoring settings; a variant's `eval:` overrides the config's key by key."""

    batch_size: int = Field(None, ge=1, description="records per scoring batch")
    max_input_tokens: int = Field(None, ge=8, description="prompt tokens kept (the end of a longer prompt)")
    bf16: BF16 = Field(None, description="bf16 autocast in scoring (default false; auto: only where the device "
                                         "computes bf16 in hardware)")
    mc_scoring: Literal["loglikelihood", "label_logit"] = Field(
        None, description="multiple choice: summed option log-likelihood (default) or the official MixLoRA last-token "
                          "label logit (molebench.core.scoring.MC_SCORING)")


class Eval(EvalOverride):
    """Scoring settings of every variant (a variant's `eval:` overrides them key by key)."""

    batch_size: int = Field(ge=1, description="records per scoring batch")
    max_input_tokens: int = Field(ge=8, description="prompt tokens kept (the end of a longer prompt)")


class Variant(Section):
    """A method with options (and training overrides for trainable methods)."""

    method: str = Field(description="a registered method (`molebench methods`)")
    per_task: bool = Field(None, description="one composition per task (single-task setting) instead of one per "
                                             "group; default: the method's")
    seeds: Seeds = Field(None, description="this variant's seeds instead of the config's (bounds an expensive "
                                           "variant's cost)")
    scored_from: str = Field(None, description="score the state trained by this other variant (same method) with "
                                               "this variant's options")
    options: dict = Field(None, description="the method's options (its config class, checked at parse time)")
    train: TrainConfig = Field(None, description="overrides of the config's `train:`, key by key")
    eval: EvalOverride = Field(None, description="overrides of the config's `eval:`, key by key")


class Faults(Section):
    """Fault injection on a tiny model (molebench.faults), shown on the site's reliability page."""

    kills: int = Field(4, ge=1, description="SIGKILLs of the fault-injection rule (tiny model)")


class Budget(Section):
    """What one run of this config may cost (molebench.report.budget checks a finished run against it)."""

    cores: int = Field(2, ge=1, description="cores the run is budgeted on")
    wall_minutes: float = Field(90, gt=0, description="wall time the run must fit on those cores, in minutes")
    reference: str | None = Field(None, description="per-rule median job times of a whole run on a reference machine "
                                  "(molebench bench --pipeline --save-reference): the progress lines' estimate for "
                                  "rules this run has not timed yet")


class Claims(Section):
    """The claims ledger's rule (molebench.report.evidence states it); the defaults are evidence.Settings'."""

    confidence: float = Field(Settings.confidence, gt=0, lt=1, description="confidence level of each interval")
    delta: float = Field(Settings.delta, ge=0, description="smallest effect worth reporting, in metric points")
    min_seeds: int = Field(Settings.min_seeds, ge=1, description="seeds a trained variant needs for a verdict")


class Masking(Section):
    """MoLE Figures 1 and 8: score each variant with each LoRA of `group` dropped (MoLE masks its trained gates, NLA
    recomposes the others); rendered as the site's masking table."""

    title: str = Field(description="title of the masking table")
    group: str = Field(description="the group whose LoRAs are dropped one at a time")
    variants: Names = Field(min_length=1, description="variants scored with each LoRA dropped")


class Table(Section):
    """A table of the papers: variants as columns, groups as rows."""

    title: str = Field(description="the table's title")
    groups: list[str] = Field(min_length=1, description="groups scored (rows)")
    variants: list[str] = Field(min_length=1, description="variants scored (columns)")
    seeds: Seeds = Field(None, description="this table's seeds instead of its variants' (a slice whose seeds spread "
                                           "widely needs more of them to decide its claim)")
    paper: str = Field(None, description="CSV of the paper's published numbers (data/paper/)")
    paper_rows: dict[str, str] = Field(
        None, description="group -> the paper row (paper_task) its average row is compared with; default: the "
                          "family's Average row (MoLE Table 6 compares each size with the paper's '8 LoRAs', ... rows)")
    paper_family: str = Field(None, description="the paper's family whose rows the average rows are compared with, "
                                                "when the groups stand in for it with other tasks (MoLE Table 6 on "
                                                "the skill world: bbh)")


class Scaling(Section):
    """MoLE Table 6: groups `{group}-n{size}` whose compositions use `size` LoRAs of the pool recipe (the group's own
    first, then RAMoLE's pool and `extra_pool` in one seeded order, so sizes nest), scored on and fitted to `group`'s
    tasks; needs `ramole:` (workflow/rules/scaling.smk)."""

    group: str = Field(description="the scored group; its training data fits MoLE's gates, LoRAHub and PEMs")
    sizes: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, description="numbers of composed LoRAs, increasing")
    seed: int = Field(ge=0, description="seed of the one draw order of the pool LoRAs and of each composition's "
                                        "order of its LoRAs")
    own_loras: bool = Field(True, description="the group's own tasks' LoRAs (pool recipe, trained on the group's "
                                              "training split) are in every composition; false draws every LoRA from "
                                              "the pool, as the paper's BBH setting does")
    extra_pool: Names = Field([], description="pool entries (data/tasks names or bigbench:<path>) beyond ramole.pool, "
                                              "trained like RAMoLE's pool LoRAs but used by no RAMoLE stage")


class Figure(Section):
    """A figure of the papers drawn from the DAG's outputs (molebench.nlp.figures)."""

    title: str = Field(description="the figure's title")
    kind: str = Field(description="gate_entropy (MoLE Figure 5), gate_heatmap (MoLE Figure 7), expert_utilisation "
                                  "(MixLoRA routing per layer and task), mixlora_efficiency (MixLoRA's plain and "
                                  "optimised paths, measured); molebench.nlp.figures.FIGURE_KINDS")
    group: str = Field(description="the group whose compositions are drawn")
    variants: list[str] = Field(min_length=1, description="variants drawn")


# ---- RAMoLE (molebench.ramole) -------------------------------------------------------------------------------

class RamoleData(Section):
    """Splits of every pool task."""

    n_train: int = Field(ge=2, description="training records per pool task (at most)")
    n_test: int = Field(ge=1, description="test records per pool task (at most)")


class Finetune(Section):
    """Instruction fine-tuning of the retriever's embedder (contrastive, one positive pair per task)."""

    steps: int = Field(ge=1, description="optimiser steps")
    batch_tasks: int = Field(ge=2, description="tasks per batch, one positive pair each")
    lr: float = Field(gt=0, description="learning rate")
    temperature: float = Field(gt=0, description="InfoNCE temperature")


class Retriever(Section):
    """LoraRetriever: embeds samples of each LoRA's task and retrieves the top-k LoRAs for a query."""

    embedder: str = Field(description="all-minilm-l6-v2 (the offline wheel) or a sentence-transformers folder")
    instruction: str = Field(description="prefix of every embedded sample and query")
    samples_per_lora: int = Field(ge=1, description="m: samples averaged into a LoRA's embedding")
    top_k: int = Field(ge=1, description="k: LoRAs retrieved per query")
    finetune_tasks: Names = Field(min_length=2, description="the pool tasks (40%) the embedder is instruction "
                                                            "fine-tuned on; fixed, so the pool can grow")
    finetune: Finetune = Field(description="the embedder's instruction fine-tuning")


class Router(Section):
    """RouterLoRA, trained on samples of the fine-tuning tasks."""

    records_per_task: int = Field(ge=1, description="training samples per fine-tuning task")
    train: TrainConfig = Field(description="the router's training")


class RamoleEval(Section):
    """The mixed-task evaluation."""

    per_task: int = Field(ge=1, description="test samples per pool task in the mixed test set")
    batch_size: int = Field(ge=1, description="records per scoring batch")
    max_input_tokens: int = Field(ge=8, description="prompt tokens kept (the end of a longer prompt)")
    max_new_tokens: int = Field(ge=1, description="generated tokens per answer")
    bf16: BF16 = Field(None, description="bf16 autocast in scoring (auto: only where the device computes bf16 in "
                                         "hardware)")


class RamoleMethod(Section):
    """A RAMoLE method's options (empty: its defaults)."""

    options: dict = Field(None, description="the method's options (its config class, checked at parse time)")


class Ramole(Section):
    """RAMoLE: a LoRA pool, LoraRetriever, RouterLoRA and mixed-task evaluation (workflow/rules/ramole.smk)."""

    seed: int = Field(ge=0, description="seed of the pool's LoRAs (one library, trained once) and of the mixed-task "
                                        "test set's draw (the same queries for every run seed)")
    seeds: Seeds = Field(description="seeds of the runs above the pool: the retriever's fine-tuning, the router and "
                                     "the mixed-task evaluations")
    pool: dict[str, Annotated[Names, Field(min_length=1)]] = Field(
        min_length=1, description="domain -> tasks, one LoRA each: data/tasks names or bigbench:<path under "
                                  "benchmark_tasks>")
    data: RamoleData = Field(description="splits of every pool task")
    lora: Lora = Field(description="PEFT LoraConfig of the pool LoRAs")
    train: TrainConfig = Field(description="training of the pool LoRAs")
    retriever: Retriever = Field(description="LoraRetriever")
    router: Router = Field(description="RouterLoRA")
    eval: RamoleEval = Field(description="the mixed-task evaluation")
    methods: dict[str, RamoleMethod | None] = Field(min_length=1, description="ramole, mixture, fusion, selection, "
                                                                             "oracle -> {options: method config}")


# ---- text-to-image (molebench.t2i) ---------------------------------------------------------------------------

class World(Section):
    """The generated world's images and the subjects and compositions drawn from it."""

    resolution: int = Field(ge=8, description="image side in pixels (subject images are resized to it)")
    n_images: int = Field(None, ge=8, description="generated captioned images (world source)")
    max_objects: int = Field(None, ge=1, le=6, description="objects per generated image")
    n_subjects: int = Field(ge=1, le=6, description="subjects drawn from the world")
    reference_images: int = Field(ge=1, description="images per subject (DreamBooth's few shots; the references "
                                                    "of image alignment)")
    training_images: int = Field(None, ge=1, description="DreamBooth training images per subject (world source): "
                                                         "a third alone, the rest beside other captioned objects")
    composition_sizes: list[Annotated[int, Field(ge=2, le=6)]] = Field(min_length=1, description="subjects per "
                                                                                                 "composition")
    per_size: int = Field(ge=1, description="compositions per size")


class WorldTrain(Section):
    """Training of one of the world's models (molebench.t2i.components)."""

    steps: int = Field(ge=1, description="optimiser steps")
    batch_size: int = Field(ge=1, description="images per step")
    lr: float = Field(gt=0, description="learning rate")


class BaseTrain(WorldTrain):
    """Training of the world's base model (UNet and text encoder, from scratch)."""

    caption_dropout: float = Field(ge=0, le=1, description="share of captions dropped, for classifier-free guidance")
    autocast_bf16: BF16 = Field(None, description="bf16 autocast in training (default false; weights and the saved "
                                                  "model stay fp32; auto: only where the device computes bf16 in "
                                                  "hardware)")


class ClipTrain(WorldTrain):
    """Training of the world's scoring CLIP, on hard-negative pairs (molebench.t2i.components.train_world_clip)."""

    shape_only: float = Field(ge=0, le=1, description="share of object phrases that name only the shape, as a "
                                                      "subject prompt does")


class PresenceTrain(WorldTrain):
    """Training of the world's presence classifier."""

    width: int = Field(None, ge=1, description="channels of the classifier (default 32)")


class T2IEval(Section):
    """Image generation for scoring."""

    prompts: int = Field(ge=1, description="prompts per composition (paper: 5)")
    images_per_prompt: int = Field(ge=1, description="images per prompt and seed (paper: 200)")
    ddpm_steps: int = Field(ge=1, description="DDPM sampling steps (paper: 50)")
    guidance: float = Field(ge=0, description="classifier-free guidance scale (paper: 7.5)")
    batch_size: int = Field(None, ge=1, description="images sampled at once (default: all images of a prompt; the "
                                                    "paper's 200 at 512 x 512 do not fit on one GPU)")


class Subject(Section):
    """A DreamBooth subject (stable-diffusion source)."""

    folder: str = Field(description="the subject's image folder")
    prompt: str = Field(description="its prompt with the identifier, e.g. 'a sks dog'")


class T2IPreconditions(Section):
    """What must hold before text-to-image compositions are evidence (world source; molebench.t2i.preconditions)."""

    images: int = Field(ge=1, description="images sampled per check: the base model on held-out captions, each "
                                          "subject LoRA alone on its prompt")
    min_share: float = Field(ge=0, le=1, description="share of prompted objects (base) or of images with the subject "
                                                     "(LoRA) the presence classifier must find")


class T2IVariant(Section):
    """A method with options."""

    method: str = Field(description="a registered method that composes image LoRAs (`molebench methods`)")
    options: dict = Field(None, description="the method's options (its config class, checked at parse time)")


class T2IMasking(Section):
    """MoLE Figures 6 and 8 (text-to-image): images with one subject's LoRA masked out of trained gates."""

    variant: str = Field(description="a MoLE variant whose trained gates are masked (Figures 6, 8)")
    images: int = Field(ge=1, description="images per masked LoRA")


class T2ITable(Section):
    """A text-to-image table of MoLE (molebench.t2i.report.TABLE_KINDS)."""

    kind: Literal["per_composition", "per_variant", "per_size"] = Field(description="the table's rows: one per "
                                                                                    "composition, variant or size")
    title: str = Field(description="the table's title")
    columns: dict[str, str] = Field(description="label -> variant")
    sizes: list[Annotated[int, Field(ge=2)]] = Field(min_length=1, description="composition sizes scored")
    paper: str = Field(None, description="published numbers (data/paper/mole_table*.csv)")


class T2I(Section):
    """Text-to-image MoLE (the paper's V&L half): a generated world (mini, smoke) or Stable Diffusion (paper); the
    open sub-sections (model, subject_lora, gate_train) are checked field by field against their dataclasses
    (molebench.t2i.plan.check)."""

    source: Literal["world", "stable-diffusion"] = Field(description="world: generated here; stable-diffusion: "
                                                                     "local folders")
    seed: int = Field(ge=0, description="seed of the world and of the base models trained on it")
    seeds: Seeds = Field(description="seeds of subject LoRAs, compositions and image generation")
    world: World = Field(description="the world (its subjects and compositions also for stable-diffusion)")
    model: dict = Field(None, description="molebench.t2i.components.WorldModelConfig")
    base_train: BaseTrain = Field(None, description="world base model training")
    clip_train: ClipTrain = Field(None, description="world CLIP training")
    presence_train: PresenceTrain = Field(None, description="presence classifier training")
    subject_lora: dict = Field(description="molebench.t2i.subjects.SubjectLoraConfig")
    gate_train: dict = Field(description="molebench.t2i.gate_training.GateTrainingConfig")
    eval: T2IEval = Field(description="image generation for scoring")
    preconditions: T2IPreconditions = Field(None, description="world: the base model's and subject LoRAs' checks")
    base_path: str = Field(None, description="stable-diffusion: local Stable Diffusion 2.1 folder (diffusers layout)")
    clip_path: str = Field(None, description="stable-diffusion: local CLIP folder (transformers CLIPModel)")
    subjects: dict[str, Subject] = Field(None, description="stable-diffusion: name -> its DreamBooth subject")
    compositions: list[Annotated[list[str], Field(min_length=2)]] = Field(
        None, description="stable-diffusion: lists of subject names")
    prompt_templates: list[str] = Field(None, description="stable-diffusion: prompt templates with {subjects}")
    variants: dict[str, T2IVariant] = Field(description="variant name -> a method with options")
    masking: T2IMasking = Field(description="the masking figures")
    grid_images: int = Field(ge=1, description="images per method in the composition grids")
    tables: dict[str, T2ITable] = Field(description="table name -> a table of MoLE")


# ---- the whole config ----------------------------------------------------------------------------------------

class Config(Section):
    """molebench configuration (config/config.yaml is the mini scale; smoke.yaml and paper.yaml are the others)."""

    scale: str = Field(description="label shown in reports: smoke, mini or paper")
    results_dir: str = Field("results", description="root of generated results (one per scale)")
    reports_dir: str = Field("reports", description="root of the generated site and report")
    offline: bool = Field(True, description="set HF_HUB_OFFLINE/HF_DATASETS_OFFLINE in every job")
    threads_per_job: int = Field(1, ge=1, description="torch threads per job")
    gpus_per_job: int = Field(0, ge=0, description="GPUs a training or scoring job holds (the `gpu` resource; "
                                                   "profiles/default runs one such job at a time)")
    seeds: Seeds = Field(description="training seeds; per-task LoRAs and compositions are repeated for each")
    model: Model = Field(description="the base model")
    data: Data = Field(description="the per-task splits")
    groups: dict[str, Annotated[Names, Field(min_length=1)]] = Field(
        min_length=1, description="group name -> tasks whose LoRAs are composed together")
    experts: dict[str, ExternalExpert] = Field(
        {}, description="name -> a LoRA brought from outside (a local folder or a pinned hub id), composed where "
                        "`compose_from` names it")
    compose_from: dict[str, Annotated[Names, Field(min_length=1)]] = Field(
        None, description="group -> the tasks (or `experts`) whose LoRAs and training data its compositions use "
                          "instead of the group's own (the group's tasks are still the ones scored): MoLE Table 8 "
                          "composes NLI LoRAs and scores BBH tasks")
    lm_eval: LmEval = Field(None, description="lm-eval tasks that groups may list besides data/tasks tasks")
    lora: Lora = Field(description="PEFT LoraConfig of the per-task LoRAs")
    train: TrainConfig = Field(description="training of the per-task LoRAs (and of every variant, which may "
                                           "override it key by key)")
    eval: Eval = Field(description="scoring of every variant")
    variants: dict[str, Variant] = Field(description="variant name -> a method with options")
    faults: Faults = Field(Faults(), description="fault injection")
    claims: Claims = Field(Claims(), description="the claims ledger's rule")
    budget: Budget = Field(Budget(), description="the run's time budget (molebench bench --pipeline)")
    masking: Masking = Field(None, description="the masking table")
    tables: dict[str, Table] = Field(description="table name -> a table of the papers")
    scaling: Scaling = Field(None, description="MoLE Table 6")
    figures: dict[str, Figure] = Field({}, description="figure name -> a figure of the papers drawn from the DAG's "
                                                       "outputs (molebench.nlp.figures)")
    ramole: Ramole = Field(None, description="RAMoLE (issue 6)")
    t2i: T2I = Field(None, description="text-to-image MoLE (issue 7)")


# ---- the JSON schema the Snakefile validates with ------------------------------------------------------------

class _SchemaGenerator(GenerateJsonSchema):
    """Pydantic's JSON schema as Snakemake's `validate` needs it: a default of None (an optional key) is left out, so
    that validation fills no null in; no title per field."""

    def default_schema(self, schema):
        if schema.get("default", "") is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)

    def field_title_should_be_set(self, schema) -> bool:
        return False


def _one_line(node):
    """The schema with each description on one line (a model's description is its docstring, line breaks and all)."""
    if isinstance(node, dict):
        return {key: value.replace("\n", " ") if key == "description" and isinstance(value, str) else _one_line(value)
                for key, value in node.items()}
    if isinstance(node, list):
        return [_one_line(value) for value in node]
    return node


def schema() -> dict:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            **_one_line(Config.model_json_schema(schema_generator=_SchemaGenerator))}


def schema_text() -> str:
    """The committed workflow/schemas/config.schema.yaml."""
    return ("# Generated from molebench.config's models by `make schema` (`molebench schema`): do not edit.\n"
            + yaml.safe_dump(schema(), sort_keys=False, width=120))


# ---- loading and checking ------------------------------------------------------------------------------------

def check_shape(config: dict) -> None:
    """The config against the models: a ConfigError with one line per problem, each naming its key."""
    try:
        Config.model_validate(config)
    except ValidationError as err:
        raise ConfigError(problems(err)) from None


def check(config: dict) -> dict:
    """Expand the `scaling` groups in place and run every track's checks; returns the config."""
    plan.expand(config)
    plan.check(config)
    if "ramole" in config:
        ramole_plan.check(config)
    if "t2i" in config:
        t2i_plan.check(config["t2i"])
    return config


def load_config(paths: str | Path | list[str | Path]) -> dict:
    """The config as the Snakefile sees it: its shape checked, the schema's defaults filled, the tracks' checks run.
    Several files are merged in order as Snakemake merges `--configfile` files: a later file's keys win, sections
    merge key by key (config/skill_world.yaml and config/t2i.yaml extend config/config.yaml so)."""
    config = {}
    for path in [paths] if isinstance(paths, str | Path) else paths:
        update_config(config, yaml.safe_load(Path(path).read_text()))
    check_shape(config)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as generated:  # the committed schema, from the models
        generated.write(schema_text())
        generated.flush()
        validate(config, generated.name)  # fills the defaults exactly as the Snakefile's `validate` does
    return check(config)
