COMPOSE_SCORES = plan.compose_wildcards(config)  # the compositions a compose job scores itself (plan.scored_in_compose)


rule compose:  # train, then score the saved state: one process (start-up is most of a mini job's time)
    priority: 1  # long jobs before the scorings (adapters.smk, train_lora)
    wildcard_constraints:
        variant="|".join(COMPOSE_SCORES["variant"]) or "no-variant",
        group="|".join(COMPOSE_SCORES["group"]) or "no-group",
    input:
        base=f"{RES}/base",
        adapters=composition_adapters,
        data=composition_data,
        scored=evaluated_data,
        lm_eval=lm_eval_folder,
    output:
        method=directory(f"{RES}/methods/{{variant}}/{{group}}/seed{{seed}}"),
        metrics=directory(f"{RES}/metrics/{{variant}}/{{group}}/seed{{seed}}"),
    log:
        f"{RES}/logs/compose/{{variant}}-{{group}}-seed{{seed}}.log",
    benchmark:
        f"{RES}/benchmarks/compose/{{variant}}-{{group}}-seed{{seed}}.tsv"
    params:
        variant=variant_cfg,
        loras=composition_loras,
        train=config["train"],
        tasks=evaluated_tasks,
        eval=config["eval"],
        lm_eval=config.get("lm_eval"),
    threads: THREADS
    resources:
        gpu=config["gpus_per_job"],
    script:
        "../scripts/compose.py"


# The scorings no compose job makes (training-free methods, `scored_from` variants, groups that share another's
# training, masked compositions), in batches of one group and seed that read the same outputs (plan.evaluate_batch):
# one process and one set of imports for many small scorings. A rule per batch, since a rule's outputs cannot vary
# with its wildcards, named `evaluate__{batch}`: molebench's progress lines and benchmarks count them as one stage,
# `evaluate`, and they take the resources a profile sets for `evaluate` (a profile cannot name rules made from the
# config).
for batch, scorings in plan.evaluate_batches(config).items():

    rule:
        name:
            f"evaluate__{batch}"
        input:
            base=f"{RES}/base",
            adapters=scoring_inputs(scorings, "loras"),
            methods=scoring_inputs(scorings, "method"),
            data=scoring_inputs(scorings, "data"),
            lm_eval=scoring_inputs(scorings, "lm_eval"),
        output:
            [directory(s["out"]) for s in scorings],
        log:
            f"{RES}/logs/evaluate/{batch}.log",
        benchmark:
            f"{RES}/benchmarks/evaluate/{batch}.tsv"
        params:
            scorings=scorings,
            variants={s["variant"]: config["variants"][s["variant"]] for s in scorings},  # an edited variant rescores
            eval=config["eval"],
            lm_eval=config.get("lm_eval"),
        threads: THREADS
        resources:
            **{"gpu": config["gpus_per_job"], **PROFILE_RESOURCES.get("evaluate", {})},
        script:
            "../scripts/evaluate.py"
