"""profiles/slurm against fake SLURM commands (tests/fake_slurm.py): the exact sbatch lines, and jobs that really run.

The fake sbatch runs each submitted job to the end through the plugin's own job command (a Snakemake process with
the slurm-jobstep executor, which calls srun), so the outputs appear and the run finishes like a cluster run.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from molebench.report import budget

REPO = Path(__file__).resolve().parents[1]
FAKE = Path(__file__).with_name("fake_slurm.py")
IGNORE = shutil.ignore_patterns(".git", ".venv", "results", "reports", ".snakemake", "raw", "__pycache__", "*.egg-info")
TOOLS = ("sbatch", "srun", "sacct", "squeue", "scancel", "sinfo", "scontrol", "sacctmgr")
# one LoRA: the base model on a CPU node, the task data on the login node, then training on a GPU node
TARGET = "results/smoke/adapters/smoke_add/seed1"
LOGS = "<repo>/.snakemake/slurm_logs"
SBATCH_LINES = {
    "base_model": f"sbatch --parsable --job-name molebench_<run> --output {LOGS}/rule_base_model/%j.log --export=ALL "
                  "--comment rule_base_model -A my_account -p cpu -t 60 --mem 8000 --ntasks=1 --cpus-per-task=1 "
                  "-D <repo>",
    "train_lora": f"sbatch --parsable --job-name molebench_<run> --output {LOGS}/rule_train_lora/smoke_add_1/%j.log "
                  "--export=ALL --comment rule_train_lora_wildcards_smoke_add_1 -A my_account -p gpu -t 360 "
                  "--mem 32000 --cpus-per-task=1 -D <repo> --gpus=1",
}
GPU_RULES = {"train_lora", "compose", "evaluate", "ramole_lora", "scaling_lora", "ramole_router",
             "ramole_evaluate", "t2i_base", "t2i_subject", "t2i_shifts", "t2i_compose", "t2i_evaluate"}


def fake_slurm_env(root: Path) -> dict:
    """PATH with the fake SLURM commands first, and the files the fakes log their calls and job states to."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(FAKE))} {tool} "$@"\n')
        script.chmod(0o755)
    (root / "state").mkdir()
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_SLURM_LOG": str(root / "calls.jsonl"), "FAKE_SLURM_STATE": str(root / "state")}


def snakemake(repo: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "snakemake", "--workflow-profile", "profiles/slurm", *args], cwd=repo,
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("slurm")
    repo = root / "molebench"
    shutil.copytree(REPO, repo, ignore=IGNORE)
    return repo, fake_slurm_env(root)


@pytest.fixture(scope="module")
def slurm_run(cluster) -> tuple[Path, list[dict], str]:
    """Run the target through the plugin; returns the repository copy, every call to a fake SLURM command, the log."""
    repo, env = cluster
    # the fake answers at once: the default wait of 40 s before the first status query would only slow the test
    done = snakemake(repo, env, TARGET, "--configfile", "config/smoke.yaml",
                     "--slurm-init-seconds-before-status-checks", "1")
    calls = [json.loads(line) for line in Path(env["FAKE_SLURM_LOG"]).read_text().splitlines()]
    return repo, calls, done.stdout + done.stderr


def submissions(calls: list[dict]) -> dict[str, list[str]]:
    """sbatch argv by rule (the plugin names the rule only in --comment)."""
    out = {}
    for call in calls:
        if call["tool"] == "sbatch":
            rule = re.match(r"rule_([a-z_]+?)(_wildcards_|$)", call["argv"][call["argv"].index("--comment") + 1])
            out[rule.group(1)] = call["argv"]
    return out


def test_sbatch_lines_are_exact(slurm_run):
    repo, calls, _ = slurm_run
    sbatch = submissions(calls)
    assert sbatch.keys() == SBATCH_LINES.keys()  # task_data is a localrule: it never reaches sbatch
    # one name for the whole run: the plugin's status queries select jobs by it (sacct --name)
    runs = {argv[argv.index("--job-name") + 1] for argv in sbatch.values()}
    assert len(runs) == 1
    run = runs.pop()
    assert re.fullmatch(r"molebench_[0-9a-f-]{36}", run)
    for rule, argv in sbatch.items():
        *options, wrap = argv
        line = " ".join(["sbatch", *options]).replace(str(repo), "<repo>").replace(run, "molebench_<run>")
        assert line == SBATCH_LINES[rule], rule
        # the job re-runs this interpreter on the node, so the environment must be on a shared file system
        assert wrap.startswith(f"--wrap={sys.executable} -m snakemake --snakefile '{repo}/Snakefile' --target-jobs "
                               f"'{rule}:"), wrap[:300]


def test_jobs_run_through_the_plugin(slurm_run):
    repo, calls, log = slurm_run
    assert (repo / TARGET / "adapter_model.safetensors").is_file()
    assert "localrule task_data:" in log  # cheap rules run on the login node
    steps = [call["argv"] for call in calls if call["tool"] == "srun"]
    assert len(steps) == len(SBATCH_LINES)
    # inside the allocation the job step asks for what sbatch got
    assert [argv[:5] for argv in steps] == [["-n1", "--cpu-bind=q", "--cpus-per-task=1", "--nodes=1", sys.executable],
                                            ["-n1", "--cpu-bind=q", "--cpus-per-task=1", "--gpus=1", "--nodes=1"]]
    assert any(call["tool"] == "sacct" and "--name" in call["argv"] for call in calls)


def test_profile_sends_gpu_rules_to_gpu_nodes(cluster):
    repo, env = cluster
    done = snakemake(repo, env, "reproduce", "--configfile", "config/smoke.yaml", "--dry-run", "--forceall")
    jobs = re.findall(r"^rule ([\w-]+):\n(?:    .*\n)*?    resources: (.*)$", done.stdout + done.stderr, re.MULTILINE)
    assert GPU_RULES < {budget.stage(rule) for rule, _ in jobs}  # evaluate's rules are made per batch
    for rule, resources in jobs:
        if budget.stage(rule) in GPU_RULES:
            assert "slurm_partition=gpu" in resources and "gpu=1" in resources, rule
        else:
            assert "slurm_partition=cpu" in resources and "gpu=" not in resources, rule
