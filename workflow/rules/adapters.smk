rule train_lora:
    # Snakemake's greedy scheduler otherwise prefers the ready jobs with the most input, scorings over these LoRAs:
    # in the first run measured whole, two of the longest LoRAs (restaurant_to_text) started 52 minutes in, and their
    # compositions made the run's tail. Training first (2), then the long compositions (1), then the short scorings
    priority: 2
    input:
        base=f"{RES}/base",
        data=f"{RES}/data/{{task}}",
    output:
        directory(f"{RES}/adapters/{{task}}/seed{{seed}}"),
    log:
        f"{RES}/logs/train_lora/{{task}}-seed{{seed}}.log",
    benchmark:
        f"{RES}/benchmarks/train_lora/{{task}}-seed{{seed}}.tsv"
    params:
        lora=config["lora"],
        train=config["train"],
    threads: THREADS
    resources:
        gpu=config["gpus_per_job"],
    script:
        "../scripts/train_lora.py"


rule fetch_expert:
    output:
        directory(f"{RES}/experts/{{lora}}/{{revision}}"),
    log:
        f"{RES}/logs/fetch_expert/{{lora}}-{{revision}}.log",
    benchmark:
        f"{RES}/benchmarks/fetch_expert/{{lora}}-{{revision}}.tsv"
    params:
        expert=lambda w: config["experts"][w.lora],
    localrule: True
    script:
        "../scripts/fetch_expert.py"
