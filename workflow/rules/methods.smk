COMPOSE_SCORES = plan.compose_wildcards(config)  # the compositions a compose job scores itself (plan.scored_in_compose)

ruleorder: compose > evaluate  # a composition scored by the job that trained it has no evaluate job


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


rule evaluate:
    input:
        base=f"{RES}/base",
        adapters=composition_adapters,
        method=trained_method,
        data=evaluated_data,
        lm_eval=lm_eval_folder,
    output:
        directory(f"{RES}/metrics/{{variant}}/{{group}}/seed{{seed}}"),
    log:
        f"{RES}/logs/evaluate/{{variant}}-{{group}}-seed{{seed}}.log",
    benchmark:
        f"{RES}/benchmarks/evaluate/{{variant}}-{{group}}-seed{{seed}}.tsv"
    params:
        variant=variant_cfg,
        loras=composition_loras,
        tasks=evaluated_tasks,
        eval=config["eval"],
        lm_eval=config.get("lm_eval"),
    threads: THREADS
    resources:
        gpu=config["gpus_per_job"],
    script:
        "../scripts/evaluate.py"


if "masking" in config:

    rule masked_evaluate:  # each LoRA of the masking group dropped in turn, one job per composition
        wildcard_constraints:
            group=config["masking"]["group"],
        input:
            base=f"{RES}/base",
            adapters=composition_adapters,
            method=trained_method,
            data=evaluated_data,
            lm_eval=lm_eval_folder,
        output:
            [directory(f"{RES}/masked/{{variant}}/{{group}}/seed{{seed}}/drop-{lora}")
             for lora in plan.lora_tasks(config, config["masking"]["group"])],
        log:
            f"{RES}/logs/masked_evaluate/{{variant}}-{{group}}-seed{{seed}}.log",
        benchmark:
            f"{RES}/benchmarks/masked_evaluate/{{variant}}-{{group}}-seed{{seed}}.tsv"
        params:
            variant=variant_cfg,
            loras=composition_loras,
            drops=plan.lora_tasks(config, config["masking"]["group"]),
            tasks=evaluated_tasks,
            eval=config["eval"],
            lm_eval=config.get("lm_eval"),
        threads: THREADS
        resources:
            gpu=config["gpus_per_job"],
        script:
            "../scripts/masked_evaluate.py"
