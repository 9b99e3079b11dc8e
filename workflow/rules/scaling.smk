# MoLE Table 6 (scaling): compositions of 8 to 128 LoRAs. Active when the config has `scaling:` (which needs `ramole:`).
# plan.expand turns the section into groups `{group}-n{size}`, which the compose, evaluate and table rules run like any
# other group; their LoRAs (plan.adapter_dirs) are pool-recipe LoRAs: RAMoLE's pool and `scaling.extra_pool`
# (ramole_data/ramole_lora in ramole.smk), and the scored group's own, trained here.

if "scaling" in config:

    rule scaling_lora:  # the scored group's own LoRAs with the pool's recipe, on the group's own training split
        priority: 2  # the scheduler's order: adapters.smk, train_lora
        wildcard_constraints:
            task="|".join(config["groups"][config["scaling"]["group"]]),
        input:
            base=f"{RES}/base",
            data=f"{RES}/data/{{task}}",
        output:
            directory(f"{RES}/scaling/loras/{{task}}/seed{{seed}}"),
        log:
            f"{RES}/logs/scaling_lora/{{task}}-seed{{seed}}.log",
        benchmark:
            f"{RES}/benchmarks/scaling_lora/{{task}}-seed{{seed}}.tsv"
        params:
            lora=config["ramole"]["lora"],
            train=config["ramole"]["train"],
            gain_spec=lambda w: load_task(w.task).to_dict(),  # scored in the job, as the pool's LoRAs (ramole_lora)
            eval=ramole_plan.gain_eval(config),
        threads: THREADS
        resources:
            gpu=config["gpus_per_job"],
        script:
            "../scripts/train_lora.py"
