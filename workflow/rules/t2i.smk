# text-to-image (issue 7): MoLE's V&L half. World -> base model, CLIP -> subject LoRAs / SVDiff shifts -> MoLE gates ->
# images and CLIP/presence scores -> Tables 1, 9, 10, grids. Stages: molebench.t2i.stages; lists: molebench.t2i.plan.
from types import SimpleNamespace

from molebench.t2i import plan as t2i_plan

T2I = config["t2i"]
T2I_RES = f"{RES}/t2i"  # checked at parse time with the whole config (molebench.config.check)


wildcard_constraints:
    subject=r"[A-Za-z0-9_\-]+",
    composition=r"[A-Za-z0-9_+\-]+",


def t2i_experts(w):
    return t2i_plan.expert_dirs(T2I, RES, w.variant, w.composition)


T2I_MASKED = t2i_plan.masked_composition(T2I)
T2I_MASKED_EXPERTS = t2i_experts(SimpleNamespace(composition=T2I_MASKED, variant=T2I["masking"]["variant"]))
T2I_WORLD = T2I["source"] == "world"
# what names the subjects and compositions (every stage that reads them)
T2I_SCENE = ("source", "seed", "world", "subjects", "compositions", "prompt_templates", "eval")
# the world keys that make its images: the world and base stages read only these, so that other compositions or
# another subject training set rerun neither
T2I_IMAGES = ("resolution", "n_images", "max_objects", "n_subjects", "reference_images")


def t2i_params(*keys, variant=None, world=None):
    """Only the t2i keys a rule reads, so that editing one stage's settings reruns that stage and what follows, not
    the world and the base models. `variant` adds that variant's entry (a wildcard or a fixed name); `world` keeps
    only those keys of the world section."""

    def params(w):
        sub = {k: T2I[k] for k in keys if k in T2I}
        if world and "world" in sub:
            sub["world"] = {k: v for k, v in sub["world"].items() if k in world}
        name = variant or getattr(w, "variant", None)
        if name:
            sub["variants"] = {name: T2I["variants"][name]}
        return sub

    return params


def t2i_presence(w):
    return [f"{T2I_RES}/presence"] if T2I_WORLD else []


rule t2i_world:
    priority: 3  # the base model's and every subject's input (data.smk, base_model)
    output:
        directory(f"{T2I_RES}/world"),
    log:
        f"{RES}/logs/t2i/world.log",
    benchmark:
        f"{RES}/benchmarks/t2i_world/world.tsv"
    params:
        t2i=t2i_params("source", "seed", "world", "subjects", world=T2I_IMAGES),
    threads: THREADS
    script:
        "../scripts/t2i_world.py"


rule t2i_base:
    priority: 2  # the scheduler's order: adapters.smk, train_lora
    input:
        world=f"{T2I_RES}/world",
        presence=t2i_presence,  # world: the prompt-following precondition is checked in this job
    output:
        directory(f"{T2I_RES}/base"),
    log:
        f"{RES}/logs/t2i/base.log",
    benchmark:
        f"{RES}/benchmarks/t2i_base/base.tsv"
    params:
        t2i=t2i_params("source", "seed", "world", "model", "base_train", "base_path", "eval", "preconditions",
                       world=T2I_IMAGES),
    threads: THREADS
    resources:
        gpu=config["gpus_per_job"],
    script:
        "../scripts/t2i_base.py"


rule t2i_clip:
    priority: 3  # the scorings' and (as the presence classifier) the base model's input: early, as t2i_world
    input:
        world=f"{T2I_RES}/world",
    output:
        directory(f"{T2I_RES}/clip"),
    log:
        f"{RES}/logs/t2i/clip.log",
    benchmark:
        f"{RES}/benchmarks/t2i_clip/clip.tsv"
    params:
        t2i=t2i_params(*T2I_SCENE, "model", "clip_train", "clip_path"),  # its precondition reads the compositions
    threads: THREADS
    script:
        "../scripts/t2i_clip.py"


rule t2i_presence:
    priority: 3
    input:
        world=f"{T2I_RES}/world",
    output:
        directory(f"{T2I_RES}/presence"),
    log:
        f"{RES}/logs/t2i/presence.log",
    benchmark:
        f"{RES}/benchmarks/t2i_presence/presence.tsv"
    params:
        t2i=t2i_params("seed", "presence_train"),
    threads: THREADS
    script:
        "../scripts/t2i_presence.py"


rule t2i_subject:
    priority: 2  # the scheduler's order: adapters.smk, train_lora
    input:
        base=f"{T2I_RES}/base",
        world=f"{T2I_RES}/world",
        presence=t2i_presence,  # world: the subject-alone precondition is checked in this job
    output:
        directory(f"{T2I_RES}/subjects/{{subject}}/seed{{seed}}"),
    log:
        f"{RES}/logs/t2i/subject/{{subject}}-seed{{seed}}.log",
    benchmark:
        f"{RES}/benchmarks/t2i_subject/{{subject}}-seed{{seed}}.tsv"
    params:
        t2i=t2i_params(*T2I_SCENE, "subject_lora", "preconditions"),
    threads: THREADS
    resources:
        gpu=config["gpus_per_job"],
    script:
        "../scripts/t2i_subject.py"


rule t2i_shifts:
    priority: 2  # the scheduler's order: adapters.smk, train_lora
    input:
        base=f"{T2I_RES}/base",
        world=f"{T2I_RES}/world",
    output:
        directory(f"{T2I_RES}/shifts/{{variant}}/{{subject}}/seed{{seed}}"),
    log:
        f"{RES}/logs/t2i/shifts/{{variant}}-{{subject}}-seed{{seed}}.log",
    benchmark:
        f"{RES}/benchmarks/t2i_shifts/{{variant}}-{{subject}}-seed{{seed}}.tsv"
    params:
        t2i=t2i_params(*T2I_SCENE),
    threads: THREADS
    resources:
        gpu=config["gpus_per_job"],
    script:
        "../scripts/t2i_shifts.py"


rule t2i_compose:  # for each seed train the gates, then sample and score: every seed in one process (start-up is
    # much of a mini job's time, and the seeds share the experts and the base)
    priority: 1  # the scheduler's order: adapters.smk, train_lora
    wildcard_constraints:
        variant="|".join(v for v in T2I["variants"] if t2i_plan.method_of(T2I, v).trainable) or "no-variant",
    input:
        base=f"{T2I_RES}/base",
        world=f"{T2I_RES}/world",
        clip=f"{T2I_RES}/clip",
        experts=lambda w: list(t2i_experts(w).values()),
        presence=t2i_presence,
    output:
        methods=[directory(f"{T2I_RES}/methods/{{variant}}/{{composition}}/seed{seed}") for seed in T2I["seeds"]],
        metrics=[directory(f"{T2I_RES}/metrics/{{variant}}/{{composition}}/seed{seed}") for seed in T2I["seeds"]],
    log:
        f"{RES}/logs/t2i/compose/{{variant}}-{{composition}}.log",
    benchmark:
        f"{RES}/benchmarks/t2i_compose/{{variant}}-{{composition}}.tsv"
    params:
        t2i=t2i_params(*T2I_SCENE, "gate_train"),
        experts=t2i_experts,
        seeds=T2I["seeds"],
    threads: THREADS
    resources:
        gpu=config["gpus_per_job"],
    script:
        "../scripts/t2i_compose.py"


rule t2i_evaluate:  # the methods that train nothing (NLA, SVDiff over its shifts), every seed in one job
    wildcard_constraints:
        variant="|".join(v for v in T2I["variants"] if not t2i_plan.method_of(T2I, v).trainable) or "no-variant",
    input:
        base=f"{T2I_RES}/base",
        world=f"{T2I_RES}/world",
        clip=f"{T2I_RES}/clip",
        experts=lambda w: list(t2i_experts(w).values()),
        presence=t2i_presence,
    output:
        [directory(f"{T2I_RES}/metrics/{{variant}}/{{composition}}/seed{seed}") for seed in T2I["seeds"]],
    log:
        f"{RES}/logs/t2i/evaluate/{{variant}}-{{composition}}.log",
    benchmark:
        f"{RES}/benchmarks/t2i_evaluate/{{variant}}-{{composition}}.tsv"
    params:
        t2i=t2i_params(*T2I_SCENE),
        experts=t2i_experts,
        seeds=T2I["seeds"],
    threads: THREADS
    resources:
        gpu=config["gpus_per_job"],
    script:
        "../scripts/t2i_evaluate.py"


rule t2i_masking:
    input:
        base=f"{T2I_RES}/base",
        world=f"{T2I_RES}/world",
        experts=list(T2I_MASKED_EXPERTS.values()),
        method=f"{T2I_RES}/methods/{T2I['masking']['variant']}/{T2I_MASKED}/seed{T2I['seeds'][0]}",
        presence=t2i_presence,
    output:
        png=f"{T2I_RES}/figures/masking.png",
        csv=f"{T2I_RES}/figures/masking.csv",
    log:
        f"{RES}/logs/t2i/masking.log",
    benchmark:
        f"{RES}/benchmarks/t2i_masking/masking.tsv"
    params:
        t2i=t2i_params(*T2I_SCENE, "masking", variant=T2I["masking"]["variant"]),
        composition=T2I_MASKED,
        seed=T2I["seeds"][0],
        experts=T2I_MASKED_EXPERTS,
    threads: THREADS
    script:
        "../scripts/t2i_masking.py"


if T2I_WORLD:  # {"t2i_preconditions": its CSV}, an input of the report and the claims ledger
    T2I_PRECONDITIONS = {"t2i_preconditions": t2i_plan.preconditions_file(RES)}

    rule t2i_preconditions:  # base prompt-following, the scoring CLIP, each subject LoRA alone: the jobs' checks
        input:
            base=f"{T2I_RES}/base",
            clip=f"{T2I_RES}/clip",
            subjects=t2i_plan.subject_dirs(T2I, RES),
        output:
            T2I_PRECONDITIONS["t2i_preconditions"],
        log:
            f"{RES}/logs/t2i/preconditions.log",
        params:
            min_share=T2I["preconditions"]["min_share"],
        localrule: True
        script:
            "../scripts/t2i_preconditions.py"


rule t2i_report:
    input:
        evaluations=t2i_plan.evaluations(T2I, RES),
        **T2I_PRECONDITIONS,
        masking_png=f"{T2I_RES}/figures/masking.png",
        masking_csv=f"{T2I_RES}/figures/masking.csv",
    output:
        directory(f"{T2I_RES}/report"),
    log:
        f"{RES}/logs/t2i/report.log",
    params:
        t2i=T2I,
    localrule: True
    script:
        "../scripts/t2i_report.py"
