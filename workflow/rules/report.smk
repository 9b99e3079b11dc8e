rule table:
    wildcard_constraints:
        table="|".join(config["tables"]),
    input:
        lambda w: plan.table_inputs(config, w.table),
    output:
        RES + "/tables/{table}.csv",
    log:
        RES + "/logs/table/{table}.log",
    params:
        spec=lambda w: config["tables"][w.table],  # an edited table definition reruns the table
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
    localrule: True
    script:
        "../scripts/lora_gain.py"


rule faults:
    output:
        RES + "/faults.json",
    log:
        RES + "/logs/faults.log",
    params:
        kills=config["faults"]["kills"],
    threads: 1
    script:
        "../scripts/faults.py"


rule site:
    input:
        faults=RES + "/faults.json",
        tables=expand(RES + "/tables/{table}.csv", table=config["tables"]),
        gain=RES + "/tables/lora_gain.csv",
        evaluations=plan.all_evaluation_dirs(config),
    output:
        report(directory(REP + "/site"), htmlindex="index.html", caption="../report/site.rst", category="molebench"),
    log:
        RES + "/logs/site.log",
    localrule: True
    script:
        "../scripts/site.py"
