from molebench.report import claims as ledger

# (evaluations incl. the LoRA gain check's references, figure CSVs, RAMoLE retrieval.json and evaluation folders, t2i
# metric folders): the per-example data the ledger's intervals need
CLAIMS_INPUTS = ledger.inputs(config)


rule table:
    wildcard_constraints:
        table="|".join(config["tables"]),
    input:
        lambda w: plan.table_inputs(config, w.table),
    output:
        f"{RES}/tables/{{table}}.csv",
    log:
        f"{RES}/logs/table/{{table}}.log",
    params:
        spec=lambda w: config["tables"][w.table],  # an edited table definition reruns the table
    localrule: True
    script:
        "../scripts/table.py"


rule figure:
    wildcard_constraints:
        figure="|".join(config["figures"]) or "no-figure",
    input:
        unpack(lambda w: plan.figure_inputs(config, w.figure)),  # named by variant
    output:
        png=f"{RES}/figures/{{figure}}.png",
        csv=f"{RES}/figures/{{figure}}.csv",
    log:
        f"{RES}/logs/figure/{{figure}}.log",
    params:
        spec=lambda w: config["figures"][w.figure],  # an edited figure definition redraws it
    localrule: True
    script:
        "../scripts/figure.py"


rule masking_table:
    input:
        plan.masking_inputs(config),
    output:
        f"{RES}/tables/masking.csv",
    log:
        f"{RES}/logs/table/masking.log",
    params:
        spec=config.get("masking"),  # an edited masking definition rebuilds the table
    localrule: True
    script:
        "../scripts/masking_table.py"


rule lora_gain:
    input:
        plan.gain_inputs(config),
    output:
        f"{RES}/tables/lora_gain.csv",
    log:
        f"{RES}/logs/table/lora_gain.log",
    localrule: True
    script:
        "../scripts/lora_gain.py"


rule claims:
    input:
        evaluations=CLAIMS_INPUTS[0],
        figures=CLAIMS_INPUTS[1],
        ramole=CLAIMS_INPUTS[2],  # RAMoLE's retrieval.json and evaluation folders: none without a `ramole:` block
        t2i=CLAIMS_INPUTS[3],  # text-to-image metric folders: none without a `t2i:` block
        **POOL_GAIN,  # the pool LoRAs' gain check: are claims on their compositions testable?
        **T2I_PRECONDITIONS,  # the text-to-image world's checks: are its claims testable?
        claims=str(ledger.CLAIMS_FILE),
        paper=ledger.paper_inputs(config),  # the papers' numbers behind each comparison's paper_gap
    output:
        ledger=f"{RES}/tables/claims.csv",
        comparisons=f"{RES}/tables/claims_comparisons.csv",
    log:
        f"{RES}/logs/table/claims.log",
    localrule: True
    script:
        "../scripts/claims.py"


rule faults:
    priority: 1  # 20 s of training processes and no inputs: the scheduler would leave it for the run's tail
    output:
        f"{RES}/faults.json",
    log:
        f"{RES}/logs/faults.log",
    params:
        kills=config["faults"]["kills"],
    threads: 1
    script:
        "../scripts/faults.py"


rule site:
    input:
        faults=f"{RES}/faults.json",
        tables=expand(f"{RES}/tables/{{table}}.csv", table=config["tables"]),
        masking=rules.masking_table.output if "masking" in config else [],
        figures=expand(f"{RES}/figures/{{figure}}.png", figure=config["figures"]),
        gain=f"{RES}/tables/lora_gain.csv",
        claims=rules.claims.output.ledger,
        comparisons=rules.claims.output.comparisons,
        evaluations=plan.all_evaluation_dirs(config),
        ramole=RAMOLE_TABLES,  # RAMoLE (issue 6): empty without a `ramole:` config block
        **POOL_GAIN,
        **({"t2i": f"{RES}/t2i/report"} if "t2i" in config else {}),  # text-to-image pages, copied in as t2i/
    output:
        report(directory(f"{REP}/site"), htmlindex="index.html", caption="../report/site.rst", category="molebench"),
    log:
        f"{RES}/logs/site.log",
    params:
        # every job's `benchmark:` file (not DAG outputs, so not inputs): the site's cost and critical-path tables
        benchmarks=f"{RES}/benchmarks",
    localrule: True
    script:
        "../scripts/site.py"
