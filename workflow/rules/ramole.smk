# RAMoLE (issue 6): LoRA pool, LoraRetriever, RouterLoRA, mixed-task evaluation. Active when the config has `ramole:`.
# One job per pool task for its data and its LoRA (the spine's train_lora script): adding a task to the pool trains
# only its LoRA. The pool is trained once (`ramole.seed`); each run seed
# (`ramole.seeds`) fine-tunes its own retriever, embeds, retrieves, trains its router and evaluates in RUNS[seed].
from molebench.core.io import resource
from molebench.ramole import plan as ramole_plan
from molebench.ramole.report import TABLE_TITLES as RAMOLE_TITLES

RAMOLE_TABLES = []
POOL_GAIN = {}  # the pool LoRAs' gain check, as a named input {"pool_gain": its CSV}: none without a `ramole:` block

if "ramole" in config:  # checked at parse time by plan.check (common.smk)
    RAM = config["ramole"]
    RDIR = f"{RES}/ramole"
    POOL = ramole_plan.pool(config)  # LoRA name -> task spec, in pool order
    # pool LoRAs trained by ramole_data/ramole_lora: RAMoLE's pool, and those only MoLE Table 6 composes (scaling.smk)
    POOL_LORAS = {**POOL, **plan.scaling_extra(config)}
    RAMOLE_TABLES = [f"{RES}/tables/{name}.csv" for name in RAMOLE_TITLES]
    RUNS = ramole_plan.run_dirs(config, RES)
    RUN = f"{RDIR}/seed{{seed}}"  # one run above the pool

    def pool_dirs(kind, names=None):
        return {n: f"{RDIR}/{kind}/{n}" for n in (names or POOL)}

    def pool_loras():
        return {n: f"{RDIR}/loras/{n}/seed{RAM['seed']}" for n in POOL}

    rule ramole_data:
        priority: 3  # seconds, and every job of the pool waits on it (see data.smk)
        wildcard_constraints:
            task="|".join(POOL_LORAS),
        input:
            lambda w: [f"{config['data']['raw_dir']}/bigbench-1.0.0.tar.gz"] if POOL_LORAS[w.task].source["kind"] == "bigbench" else [],
        output:
            directory(f"{RDIR}/data/{{task}}"),
        log:
            f"{RES}/logs/ramole_data/{{task}}.log",
        benchmark:
            f"{RES}/benchmarks/ramole_data/{{task}}.tsv"
        params:
            spec=lambda w: POOL_LORAS[w.task].to_dict(),  # an edited pool entry reruns its data and downstream
            data={**config["data"], **RAM["data"]},
        localrule: True
        script:
            "../scripts/ramole_data.py"

    rule ramole_lora:  # the spine's per-task LoRA training, with the pool's own (cheaper) LoRA and training settings;
        # the job also scores the LoRA and the base model on the task's test split (gain.json: the pool's gain check)
        priority: 2  # the scheduler's order: adapters.smk, train_lora
        input:
            base=f"{RES}/base",
            data=f"{RDIR}/data/{{task}}",
        output:
            directory(f"{RDIR}/loras/{{task}}/seed{{seed}}"),
        log:
            f"{RES}/logs/ramole_lora/{{task}}-seed{{seed}}.log",
        benchmark:
            f"{RES}/benchmarks/ramole_lora/{{task}}-seed{{seed}}.tsv"
        params:
            lora=RAM["lora"],
            train=RAM["train"],
            gain_spec=lambda w: POOL_LORAS[w.task].to_dict(),
            eval=ramole_plan.gain_eval(config),
        threads: THREADS
        resources:
            gpu=config["gpus_per_job"],
        script:
            "../scripts/train_lora.py"

    POOL_GAIN = {"pool_gain": ramole_plan.pool_gain_file(RES)}

    rule pool_gain:  # every pool LoRA against the base model on its own task, from the training jobs' gain.json
        input:
            [f"{RDIR}/loras/{n}/seed{RAM['seed']}" for n in POOL_LORAS],
        output:
            POOL_GAIN["pool_gain"],
        log:
            f"{RES}/logs/table/pool_gain.log",
        localrule: True
        script:
            "../scripts/pool_gain.py"

    rule ramole_retriever:
        priority: 2  # the chain to the mixed-task scorings runs with the trainings, not as the run's tail
        input:
            list(pool_dirs("data", RAM["retriever"]["finetune_tasks"]).values()),
        output:
            directory(f"{RUN}/retriever"),
        log:
            f"{RES}/logs/ramole_retriever/seed{{seed}}.log",
        benchmark:
            f"{RES}/benchmarks/ramole_retriever/seed{{seed}}.tsv"
        params:
            data=pool_dirs("data", RAM["retriever"]["finetune_tasks"]),
            retriever=RAM["retriever"],
        threads: THREADS
        script:
            "../scripts/ramole_retriever.py"

    rule ramole_embed:  # one job per run seed: embedding is seconds, a job per LoRA was mostly start-up
        priority: 2
        input:
            data=list(pool_dirs("data").values()),
            retriever=f"{RUN}/retriever",
        output:
            [f"{RUN}/embeddings/{task}.pt" for task in POOL],
        log:
            f"{RES}/logs/ramole_embed/seed{{seed}}.log",
        benchmark:
            f"{RES}/benchmarks/ramole_embed/seed{{seed}}.tsv"
        params:
            pool=list(POOL),
            retriever=RAM["retriever"],
        threads: 1
        script:
            "../scripts/ramole_embed.py"

    # The retrieve, router and evaluate jobs get the parts of this block their stage reads (molebench.ramole.stages),
    # not all of it: Snakemake reruns a job whose params changed, so an edited router setting reruns the routers and
    # the runs' scoring jobs, and retrains no pool LoRA.
    rule ramole_retrieve:
        priority: 2
        input:
            embeddings=[f"{RUN}/embeddings/{task}.pt" for task in POOL],
            data=list(pool_dirs("data").values()),
            retriever=f"{RUN}/retriever",
        output:
            f"{RUN}/retrieval.json",
        log:
            f"{RES}/logs/ramole_retrieve/seed{{seed}}.log",
        benchmark:
            f"{RES}/benchmarks/ramole_retrieve/seed{{seed}}.tsv"
        params:
            ramole={"pool": RAM["pool"], "retriever": RAM["retriever"],
                    "router": {"records_per_task": RAM["router"]["records_per_task"]}},
        threads: THREADS
        script:
            "../scripts/ramole_retrieve.py"

    rule ramole_router:
        priority: 2
        input:
            base=f"{RES}/base",
            loras=list(pool_loras().values()),
            data=list(pool_dirs("data", RAM["retriever"]["finetune_tasks"]).values()),
            retrieval=f"{RUN}/retrieval.json",
        output:
            directory(f"{RUN}/router"),
        log:
            f"{RES}/logs/ramole_router/seed{{seed}}.log",
        benchmark:
            f"{RES}/benchmarks/ramole_router/seed{{seed}}.tsv"
        params:
            ramole={"methods": {"ramole": RAM["methods"]["ramole"]}, "retriever": RAM["retriever"],
                    "router": RAM["router"]},
        threads: THREADS
        resources:
            gpu=config["gpus_per_job"],
        script:
            "../scripts/ramole_router.py"

    rule ramole_evaluate:  # every method of a run in one job (start-up is most of a small scoring's time)
        priority: 2
        input:
            base=f"{RES}/base",
            loras=list(pool_loras().values()),
            data=list(pool_dirs("data").values()),
            retrieval=f"{RUN}/retrieval.json",
            router=[f"{RUN}/router"] if any(map(ramole_plan.trains_router, RAM["methods"])) else [],
        output:
            [directory(f"{RUN}/eval/{method}") for method in RAM["methods"]],
        log:
            f"{RES}/logs/ramole_evaluate/seed{{seed}}.log",
        benchmark:
            f"{RES}/benchmarks/ramole_evaluate/seed{{seed}}.tsv"
        params:
            ramole={"seed": RAM["seed"], "pool": RAM["pool"], "eval": RAM["eval"], "methods": RAM["methods"]},
            settings={m: [s for method, s in ramole_plan.evaluations(config) if method == m] for m in RAM["methods"]},
        threads: THREADS
        resources:
            gpu=config["gpus_per_job"],
        script:
            "../scripts/ramole_evaluate.py"

    rule ramole_tables:
        input:
            retrievals=[f"{run}/retrieval.json" for run in RUNS.values()],
            evaluations=[f"{run}/eval/{method}" for run in RUNS.values() for method in RAM["methods"]],
        output:
            RAMOLE_TABLES,
        log:
            f"{RES}/logs/table/ramole.log",
        params:
            paper_dir=str(resource("paper")),  # the paper's numbers, where it has them
        localrule: True
        script:
            "../scripts/ramole_tables.py"
