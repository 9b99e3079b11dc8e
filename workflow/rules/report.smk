rule table:
    input:
        lambda w: plan.table_inputs(config, w.table),
    output:
        RES + "/tables/{table}.csv",
    log:
        RES + "/logs/table/{table}.log",
    params:
        spec=lambda w: config["tables"][w.table],
        groups=config["groups"],
    localrule: True
    script:
        "../scripts/table.py"


rule lora_gain:
    input:
        plan.gain_inputs(config),
    output:
        RES + "/tables/lora_gain.csv",
    log:
        RES + "/logs/table/lora_gain.log",
    params:
        groups=config["groups"],
    localrule: True
    script:
        "../scripts/lora_gain.py"


rule site:
    input:
        tables=expand(RES + "/tables/{table}.csv", table=config["tables"]),
        gain=RES + "/tables/lora_gain.csv",
        metrics=sorted({f for t in config["tables"] for f in plan.table_inputs(config, t)} | set(plan.gain_inputs(config))),
    output:
        report(directory(REP + "/site"), htmlindex="index.html", caption="../report/site.rst", category="molebench"),
    log:
        RES + "/logs/site.log",
    params:
        config=config,
    localrule: True
    script:
        "../scripts/site.py"
