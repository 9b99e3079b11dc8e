rule base_model:
    # first: every model job waits on it, and the scheduler would run a job without inputs last
    priority: 3
    output:
        directory(f"{RES}/base"),
    log:
        f"{RES}/logs/base_model.log",
    benchmark:
        f"{RES}/benchmarks/base_model/base.tsv"
    params:
        model=config["model"],
    # not workflow.cores: a cluster run has no --cores, and the job process on a node would count that node's cores
    threads: THREADS
    script:
        "../scripts/base_model.py"


rule bigbench_archive:
    output:
        f"{config['data']['raw_dir']}/bigbench-1.0.0.tar.gz",
    log:
        f"{RES}/logs/bigbench_archive.log",
    params:
        raw_dir=config["data"]["raw_dir"],
    localrule: True
    script:
        "../scripts/bigbench_archive.py"


rule task_data:
    priority: 3  # seconds, and every training waits on it (see base_model)
    input:
        task_sources,
    output:
        directory(f"{RES}/data/{{task}}"),
    log:
        f"{RES}/logs/task_data/{{task}}.log",
    params:
        spec=lambda w: load_task(w.task).to_dict(),  # an edited spec (template, source) reruns the task and downstream
        data=lambda w: plan.task_data_config(config, w.task),
    localrule: True
    script:
        "../scripts/task_data.py"
