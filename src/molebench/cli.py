"""molebench command line: list methods and tasks, check a config, and measure the suite's own speed.

    molebench methods             every registered method, one line each
    molebench tasks               every task spec: data/tasks (paper_*: hub, paper scale) and skill_<skill> tasks
    molebench check [CONFIG]      validate a config as the DAG does at parse time
    molebench schema              print the config's JSON schema, generated from molebench.config's models
    molebench bench               smoke DAG wall time; one LoRA step and one scoring batch at the mini scale
    molebench bench --lorahub     one LoraHub search step: our evaluation against PEFT's (merge per step)
    molebench bench --gates       MoLE gate-training step time and memory for 8 to 128 LoRAs
    molebench bench --mixlora     MixLoRA's plain and optimised paths: per-token latency and peak memory
    molebench bench --mixed       8 samples with 8 different LoRA sets in one forward: ours, PEFT adapter_names, base
    molebench bench --pipeline    a finished run's CPU-minutes per rule and critical path against the config's budget
    molebench bench --bf16        fp32 against bf16 autocast: per-task LoRAs trained and scored both ways, per example
    molebench bench --skills      skill-world learnability: one pool-recipe LoRA per sampled skill against zero-shot
    molebench bench --scheduler   Snakemake's own CPU per job under its schedulers and ours, on generated jobs
    molebench bench --t2i-step    the text-to-image world's base model: a training step's CPU time per UNet shape
    molebench mask V G --drop L   score a trained MoLE composition with LoRAs masked out (paper Figure 8)
    molebench faults              fault injection: kill training and resume, corrupt adapters, break data
    molebench progress            a run's jobs left and the time they need, from its finished jobs' times
                                  (--from-nothing: the whole DAG, as a fresh clone runs it)
    molebench claims              the claims ledger of a config's results: each claim's verdict and comparisons

Run it from the repository root: configs are paths relative to it, and `bench` runs the repository's Snakefile.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

from molebench import faults, scheduling
from molebench.bench import bf16, compose, gates, lorahub, scheduler, spine, t2i_step
from molebench.bench import skills as skill_bench
from molebench.config import load_config, schema_text
from molebench.core import io, skills
from molebench.core.data import list_tasks, load_task
from molebench.core.method import available
from molebench.core.runtime import logged
from molebench.nlp import mixlora_timing, plan, stages
from molebench.report import budget, claims
from molebench.report.site import verdict_counts


def cmd_methods(args) -> None:
    for name, cls in available().items():
        print(f"{name:16s} {cls.description}")


def cmd_tasks(args) -> None:
    for name in list_tasks():
        spec = load_task(name)
        print(f"{name:42s} {spec.source['kind']:10s} {spec.family:16s} {spec.answer:16s} {','.join(spec.metrics)}")


def cmd_check(args) -> None:
    load_config(args.config)
    print(f"{' '.join(args.config)}: ok")


def cmd_schema(args) -> None:
    sys.stdout.write(schema_text())


def _save(config: dict, name: str, rows: list, **run) -> None:
    io.write_json(Path(config["results_dir"]) / "bench" / f"{name}.json",
                  {"rows": rows, "run_info": io.provenance(run)})


def cmd_bench(args) -> None:
    """Measured side by side in one run; results/bench/*.json keeps the numbers."""
    config = load_config(args.config)
    if args.gates:
        with logged(None, threads=args.threads):
            rows = gates.run(layers=args.layers, repeats=args.repeats, threads=args.threads)
        print(f"{'gate input':10s} {'LoRAs':>6s} {'gate params':>12s} {'step (median)':>14s} {'ratio to N=8':>13s} "
              f"{'peak RSS':>10s}")
        for row in rows:
            print(f"{row['gate_input']:10s} {row['loras']:6d} {row['gate_params']:12,d} {row['median_step_s']:12.3f} s {row['ratio_to_first']:12.2f}x "
                  f"{row['peak_rss_mb']:7d} MB")
        _save(config, "gates", rows, threads=args.threads, repeats=args.repeats, layers=args.layers)
        return
    if args.mixlora:
        with logged(None, threads=args.threads):
            rows = mixlora_timing.run(repeats=args.repeats)
        print(f"{'shapes':13s} {'mode':9s} {'path':9s} {'tokens':>6s} {'us/token':>9s} {'peak MB':>8s}  optimised vs plain")
        for row in rows:
            change = (f"  latency {row['latency_vs_plain']:+.0%}, memory {row['memory_vs_plain']:+.0%}"
                      if "latency_vs_plain" in row else "")
            print(f"{row['shape']:13s} {row['mode']:9s} {row['path']:9s} {row['tokens']:6d} {row['us_per_token']:9.1f} "
                  f"{row['peak_mb']:8.1f}{change}")
        _save(config, "mixlora", rows, threads=args.threads, repeats=args.repeats, options=mixlora_timing.OPTIONS,
              shapes=mixlora_timing.SHAPES)
        return
    if args.scheduler:
        rows = scheduler.run(pairs=args.repeats)
        for row in rows:
            print(f"--scheduler {row['scheduler']:17s} {row['jobs']} jobs: median {row['median_cpu_s']:6.1f} CPU-s "
                  f"({row['cpu_ratio_to_workflow']:.2f}x the workflow's), {row['median_wall_s']:6.1f} s wall "
                  f"({row['wall_ratio_to_workflow']:.2f}x), {row['runs']} runs each in turn")
        _save(config, "scheduler", rows, repeats=args.repeats)
        return
    if args.t2i_step:
        if "t2i" not in config:
            raise SystemExit(f"--t2i-step: {' '.join(args.config)} has no t2i section; add config/t2i.yaml")
        with logged(None, threads=args.threads):
            rows = t2i_step.run(config["t2i"], args.unets, args.repeats)
        print(t2i_step.HEADER)
        for row in rows:
            print(t2i_step.line(row))
        _save(config, "t2i_step", rows, threads=args.threads, repeats=args.repeats)
        return
    if args.pipeline:  # a finished run's benchmark files against the config's budget; no model is loaded
        benchmarks = budget.load_benchmarks(budget.benchmark_files(config["results_dir"]))
        if benchmarks.empty:
            raise SystemExit(f"no benchmark files under {config['results_dir']}/benchmarks: run the DAG of "
                             f"{' '.join(args.config)} first (snakemake reproduce --configfile {' '.join(args.config)})")
        text, fits = budget.report(benchmarks, budget.job_chains(config), config["budget"])
        print(text)
        if args.save_reference:
            run = io.provenance(None)
            budget.save_reference(benchmarks, args.save_reference, {
                "git_commit": run["git_commit"], "config": args.config, "date": run["time_utc"][:10],
                "processor": run["hardware"]["processor"], "cpu_capability": run["hardware"]["cpu_capability"],
                "cpu_count": run["hardware"]["cpu_count"]})
            print(f"per-rule median job times written to {args.save_reference}")
        raise SystemExit(0 if fits else 1)
    if args.bf16:
        tasks = args.tasks or list(dict.fromkeys(t for g in plan.used_groups(config) for t in config["groups"][g]))
        with logged(None, threads=args.threads):
            rows = bf16.run(args.base or Path(config["results_dir"]) / "base", config, tasks, claims.settings(config),
                            tuple(args.seeds))
        unchanged = sum(r["unchanged"] for r in rows)
        print(f"bf16 leaves {unchanged} of {len(rows)} tasks unchanged")
        _save(config, "bf16", rows, threads=args.threads, tasks=tasks, seeds=args.seeds, unchanged=unchanged)
        return
    if args.skills:
        base = args.base or Path(config["results_dir"]) / "base"
        with logged(None, threads=args.threads):
            names = [t.removeprefix(skills.TASK_PREFIX) for t in args.tasks] if args.tasks else skills.pool(
                args.skills_sample)
            rows = skill_bench.run(base, config, names, n_train=args.n_train, n_test=args.n_test, recipe=args.recipe,
                                   steps=args.steps, rank=args.rank)
        summary = skill_bench.summary(rows)
        print(summary)
        _save(config, "skills", rows, threads=args.threads, summary=summary, skills=names, recipe=args.recipe,
              steps=args.steps, rank=args.rank, n_train=args.n_train, n_test=args.n_test)
        return
    if args.composition or args.lorahub or args.mixed:  # configurations timed side by side on the mini base model
        name = next(n for n in ("composition", "lorahub", "mixed") if getattr(args, n))
        run = {"composition": compose.run, "lorahub": lorahub.run, "mixed": compose.run_mixed}[name]
        with logged(None, threads=args.threads):
            rows = run(Path(config["results_dir"]) / "base", repeats=args.repeats)
        ratio = next(k for k in rows[0] if k.startswith("ratio_to_"))
        for row in rows:
            print(f"{row['configuration']:80s} {row['median_s']:8.3f} s {row[ratio]:7.3f}x ({ratio})")
        _save(config, name, rows, threads=args.threads, repeats=args.repeats)
        return
    with logged(None, threads=args.threads):
        rows = spine.run(config, args.task, args.repeats, smoke=not args.skip_smoke)
    for name, value, unit in rows:
        print(f"{name:70s} {value:8.2f} {unit}")
    _save(config, "spine", [{"name": n, "value": round(v, 3), "unit": u} for n, v, u in rows], config_file=args.config,
          task=args.task, threads=args.threads)


def cmd_mask(args) -> None:
    """Score the trained gates of a MoLE variant with LoRAs masked out, into results/masked/ (nothing is retrained)."""
    config = load_config(args.config)
    variant = config["variants"].get(args.variant)
    if variant is None or not plan.method_of(config, args.variant).can_mask:
        raise ValueError(f"{args.variant!r} is not a variant of {' '.join(args.config)} whose method can mask LoRAs (MoLE)")
    seed = args.seed if args.seed is not None else config["seeds"][0]
    method_dir = plan.method_dir(config, args.variant, args.group, seed)
    if not Path(method_dir).is_dir():
        raise FileNotFoundError(f"{method_dir} does not exist: run `snakemake {method_dir} --configfile {' '.join(args.config)}`")
    drop = [int(d) if d.isdigit() else d for d in args.drop]
    out = plan.masked_dir(config, args.variant, args.group, seed, drop)
    tasks = plan.evaluated_tasks(config, args.variant, args.group)
    with logged(None, threads=args.threads, offline=config["offline"]):
        stages.masked_evaluate(args.variant, variant, drop, tasks, f"{config['results_dir']}/base",
                               dict(zip(plan.lora_names(config, args.variant, args.group),
                                        plan.adapter_dirs(config, args.variant, args.group, seed), strict=True)),
                               method_dir, plan.scored_data(config, tasks), config["eval"], seed, out,
                               config.get("lm_eval"))
    for task in tasks:
        print(f"{task:28s} {io.read_json(Path(out) / f'{task}.json')['metrics']}")
    print(f"written to {out}")


def cmd_faults(args) -> None:
    try:
        faults.write_campaign(load_config(args.config), args.kills, args.out)
    finally:
        for row in io.read_json(args.out)["rows"] if Path(args.out).is_file() else []:
            print(f"[{'ok' if row['ok'] else 'FAILED'}] {row['fault']} x{row['tries']}: {row['observed']}")


def cmd_unlock_stale(args) -> None:
    if done := scheduling.unlock_stale(args.dir):
        print(done)


def cmd_claims(args) -> None:
    """The ledger the claims rule wrote for the config (or, with --existing, computed now from the results a partial
    run left): per claim its verdict, the claim, the evidence in words and each comparison with its interval."""
    config = load_config(args.config)
    tables = Path(config["results_dir"]) / "tables"
    if args.existing:
        paths = [tables / "claims_existing.csv", tables / "claims_existing_comparisons.csv"]
        for claim, absent in claims.existing_ledger(config, *paths):
            print(f"not computed: {claim} ({len(absent)} inputs missing, e.g. {absent[0]})")
        print()
    else:
        paths = [tables / "claims.csv", tables / "claims_comparisons.csv"]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: run `snakemake {path} --configfile {' '.join(args.config)}`, or "
                                    f"`molebench claims --existing` for the ledger of the results that exist")
    ledger, comparisons = (pd.read_csv(path) for path in paths)
    for claim in ledger.itertuples():
        print(f"[{claim.verdict}] {claim.id} ({claim.paper}, {claim.source})")
        print(f"    {claim.claim}")
        print(f"    {claim.evidence}")
        for c in comparisons[comparisons.id == claim.id].itertuples():
            # the paper's gap, where the ledger has the paper's numbers for the comparison
            gap = f", the paper's gap {c.paper_gap:+.2f}" if "paper_gap" in comparisons and pd.notna(c.paper_gap) else ""
            print(f"      {c.comparison}: {c.estimate:+.2f} [{c.low:+.2f}, {c.high:+.2f}]{gap}, {c.n_examples} examples, "
                  f"{c.n_seeds} seeds: {c.verdict}")
        print()
    print(f"{len(ledger)} claims: {verdict_counts(ledger)} ({paths[0]})")


def cmd_progress(args) -> None:
    """Jobs left in the config's DAG (Snakemake's dry run) and the time they need, from the finished jobs' times."""
    config = load_config(args.config)
    dry = subprocess.run([sys.executable, "-m", "snakemake", args.target, "-n", "--configfile", *args.config,
                          *(["--forceall"] if args.from_nothing else [])], capture_output=True, text=True, check=False)
    if dry.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{dry.stderr[-2000:]}")
    benchmarks = budget.load_benchmarks(budget.benchmark_files(config["results_dir"]))
    reference = budget.load_reference(config["budget"].get("reference"))
    left = budget.job_counts(dry.stdout)
    if args.from_nothing:  # where the time of a whole run goes, rule by rule
        times = budget.with_reference(benchmarks, reference)
        print(budget.projection(left, times).round(1).to_string(), end="\n\n")
    print(budget.progress_line(left, len(benchmarks), benchmarks, args.cores, reference))


CONFIG_HELP = ("config files, merged in order as `snakemake --configfile` merges them (e.g. config/config.yaml "
               "config/skill_world.yaml)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="molebench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("methods", help="list methods").set_defaults(fn=cmd_methods)
    sub.add_parser("tasks", help="list tasks").set_defaults(fn=cmd_tasks)
    check = sub.add_parser("check", help="validate a config")
    check.add_argument("config", nargs="*", default=["config/config.yaml"], help=CONFIG_HELP)
    check.set_defaults(fn=cmd_check)
    sub.add_parser("schema", help="print the config's JSON schema (workflow/schemas/config.schema.yaml)").set_defaults(
        fn=cmd_schema)
    bench = sub.add_parser("bench", help="time the smoke DAG, a mini LoRA step and a mini scoring batch")
    bench.add_argument("--config", nargs="+", default=["config/config.yaml"], help=CONFIG_HELP)
    bench.add_argument("--task", default="restaurant_to_text", help="task whose data feeds the step and the scoring batch")
    bench.add_argument("--threads", type=int, default=2)
    bench.add_argument("--repeats", type=int, default=3)
    bench.add_argument("--skip-smoke", action="store_true")
    bench.add_argument("--composition", action="store_true",
                       help="instead: LoRA bank against PEFT, 1 to 32 LoRAs dense and a mixed batch, at mini shapes")
    bench.add_argument("--lorahub", action="store_true",
                       help="instead: one LoraHub search step (20 LoRAs, 5 examples), ours against PEFT merge-per-step")
    bench.add_argument("--gates", action="store_true",
                       help="instead: MoLE gate-training step time and peak memory for 8, 24, 48, 128 LoRAs at "
                            "SmolLM2-135M shapes (random weights)")
    bench.add_argument("--mixlora", action="store_true",
                       help="instead: MixLoRA's plain and optimised FFN paths, per-token latency and peak memory, "
                            "inference and training, at SmolLM2-135M and Llama-2-7B FFN shapes (random weights)")
    bench.add_argument("--mixed", action="store_true",
                       help="instead: a batch of 8 samples with 8 different LoRA sets (1 and 3 LoRAs per sample) in "
                            "one forward, ours against PEFT adapter_names and the base model, at mini shapes")
    bench.add_argument("--pipeline", action="store_true",
                       help="a finished run's CPU-minutes per rule and critical path against the config's budget "
                            "(exit status 1 when over)")
    bench.add_argument("--save-reference", metavar="PATH",
                       help="--pipeline: also write each rule's median job times there (data/timings/<scale>.csv, "
                            "the config's budget.reference), for the progress lines of later runs")
    bench.add_argument("--scheduler", action="store_true",
                       help="instead: Snakemake's own CPU time on 300 generated sleeping jobs with --scheduler ilp, "
                            "greedy, and greedy with molebench.scheduling's one timer, in turn (--repeats runs each)")
    bench.add_argument("--skills", action="store_true",
                       help="instead: skill-world learnability, one LoRA (RAMoLE's pool recipe) per sampled skill "
                            "against zero-shot on the mini base model, with training CPU seconds")
    bench.add_argument("--t2i-step", action="store_true",
                       help="instead: one training step of the text-to-image world's base model per UNet shape")
    bench.add_argument("--unets", nargs="+", help="--t2i-step: shapes CHANNELS:HEADS[:bf16], e.g. 32,64:8 "
                                                  "32,64:2:bf16 (default: the config's)")
    bench.add_argument("--bf16", action="store_true",
                       help="per-task LoRAs trained and scored in fp32 and in bf16 autocast, compared example by example")
    bench.add_argument("--tasks", nargs="+", help="--bf16: tasks (default: every task of the groups the tables use); "
                                                  "--skills: skills (default: --skills-sample of them)")
    bench.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], help="--bf16: LoRA seeds")
    bench.add_argument("--skills-sample", type=int, default=12, help="--skills: skills sampled (skills.pool(N))")
    bench.add_argument("--n-train", type=int, default=64, help="--skills: training examples per skill")
    bench.add_argument("--n-test", type=int, default=40, help="--skills: test examples per skill")
    bench.add_argument("--recipe", choices=skill_bench.RECIPES, default="pool",
                       help="--skills: RAMoLE's pool recipe (ramole.lora, ramole.train) or the per-task one (lora, train)")
    bench.add_argument("--steps", type=int, help="--skills: training steps instead of ramole.train's")
    bench.add_argument("--rank", type=int, help="--skills: LoRA rank instead of ramole.lora's (alpha = 2 x rank)")
    bench.add_argument("--base", help="--skills, --bf16: the materialised base model folder (default: RESULTS_DIR/base)")
    bench.add_argument("--layers", type=int, default=4, help="--gates: transformer blocks of the random model")
    bench.set_defaults(fn=cmd_bench)
    mask = sub.add_parser("mask", help="score a trained MoLE composition with some LoRAs masked out (Figure 8)")
    mask.add_argument("variant", help="a MoLE variant of the config whose compose job has run")
    mask.add_argument("group", help="its LoRA group")
    mask.add_argument("--drop", nargs="+", required=True, help="LoRAs to mask, by name (the task) or index")
    mask.add_argument("--config", nargs="+", default=["config/config.yaml"], help=CONFIG_HELP)
    mask.add_argument("--seed", type=int, help="default: the config's first seed")
    mask.add_argument("--threads", type=int, default=2)
    mask.set_defaults(fn=cmd_mask)
    fault = sub.add_parser("faults", help="fault injection: SIGKILL and resume training, corrupt adapters, ...")
    fault.add_argument("--kills", type=int, default=20)
    fault.add_argument("--config", default="config/smoke.yaml", help="the base of the bad configs tried")
    fault.add_argument("--out", default="results/faults.json")
    fault.set_defaults(fn=cmd_faults)
    unlock = sub.add_parser("unlock-stale", help="remove Snakemake's lock when a killed run left it (no Snakemake "
                                                 "process of the directory alive); make reproduce runs it first")
    unlock.add_argument("--dir", default=".")
    unlock.set_defaults(fn=cmd_unlock_stale)
    progress = sub.add_parser("progress", help="jobs left in a run and the time they need (from its finished jobs)")
    progress.add_argument("--config", nargs="+", default=["config/config.yaml"], help=CONFIG_HELP)
    progress.add_argument("--target", default="reproduce")
    progress.add_argument("--cores", type=int, default=2)
    progress.add_argument("--from-nothing", action="store_true",
                          help="every job of the DAG, as on a fresh clone, at the finished jobs' median times")
    progress.set_defaults(fn=cmd_progress)
    ledger = sub.add_parser("claims", help="print the claims ledger: verdicts and each comparison's interval")
    ledger.add_argument("--config", nargs="+", default=["config/config.yaml"],
                        help="the config whose results_dir holds the ledger; " + CONFIG_HELP)
    ledger.add_argument("--existing", action="store_true",
                        help="compute the ledger now from the results that exist (a partial run), into "
                             "tables/claims_existing.csv; claims with inputs missing say 'not run in these results'")
    ledger.set_defaults(fn=cmd_claims)
    args = parser.parse_args(argv)
    try:
        args.fn(args)
    except (KeyError, ValueError, FileNotFoundError) as err:
        sys.exit(f"molebench {args.command}: {err}")


if __name__ == "__main__":
    main()
