rule compose:
    input:
        base=RES + "/base",
        adapters=composition_adapters,
        data=composition_data,
    output:
        directory(RES + "/methods/{variant}/{group}/seed{seed}"),
    log:
        RES + "/logs/compose/{variant}-{group}-seed{seed}.log",
    benchmark:
        RES + "/benchmarks/compose/{variant}-{group}-seed{seed}.tsv"
    params:
        variant=variant_cfg,
        train=config["train"],
    threads: THREADS
    resources:
        gpu=config["gpus_per_job"],
    script:
        "../scripts/compose.py"


rule evaluate:
    input:
        base=RES + "/base",
        adapters=composition_adapters,
        method=trained_method,
        data=evaluated_data,
    output:
        directory(RES + "/metrics/{variant}/{group}/seed{seed}"),
    log:
        RES + "/logs/evaluate/{variant}-{group}-seed{seed}.log",
    benchmark:
        RES + "/benchmarks/evaluate/{variant}-{group}-seed{seed}.tsv"
    params:
        variant=variant_cfg,
        tasks=evaluated_tasks,
        eval=config["eval"],
    threads: THREADS
    resources:
        gpu=config["gpus_per_job"],
    script:
        "../scripts/evaluate.py"


rule masked_evaluate:
    input:
        base=RES + "/base",
        adapters=composition_adapters,
        method=trained_method,
        data=evaluated_data,
    output:
        directory(RES + "/masked/{variant}/{group}/seed{seed}/drop-{lora}"),
    log:
        RES + "/logs/masked_evaluate/{variant}-{group}-seed{seed}-drop-{lora}.log",
    benchmark:
        RES + "/benchmarks/masked_evaluate/{variant}-{group}-seed{seed}-drop-{lora}.tsv"
    params:
        variant=variant_cfg,
        tasks=evaluated_tasks,
        eval=config["eval"],
    threads: THREADS
    resources:
        gpu=config["gpus_per_job"],
    script:
        "../scripts/masked_evaluate.py"
