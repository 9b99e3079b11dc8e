rule compose:
    input:
        base=f"{RES}/base",
        adapters=composition_adapters,
        data=composition_data,
    output:
        directory(f"{RES}/methods/{{variant}}/{{group}}/seed{{seed}}"),
    log:
        f"{RES}/logs/compose/{{variant}}-{{group}}-seed{{seed}}.log",
    benchmark:
        f"{RES}/benchmarks/compose/{{variant}}-{{group}}-seed{{seed}}.tsv"
    params:
        variant=variant_cfg,
        loras=composition_loras,
        train=config["train"],
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


rule masked_evaluate:
    input:
        base=f"{RES}/base",
        adapters=composition_adapters,
        method=trained_method,
        data=evaluated_data,
        lm_eval=lm_eval_folder,
    output:
        directory(f"{RES}/masked/{{variant}}/{{group}}/seed{{seed}}/drop-{{lora}}"),
    log:
        f"{RES}/logs/masked_evaluate/{{variant}}-{{group}}-seed{{seed}}-drop-{{lora}}.log",
    benchmark:
        f"{RES}/benchmarks/masked_evaluate/{{variant}}-{{group}}-seed{{seed}}-drop-{{lora}}.tsv"
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
        "../scripts/masked_evaluate.py"
