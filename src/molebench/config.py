"""The config as the Snakefile sees it: its shape validated against the schema (defaults filled), the scaling groups
expanded, then every track's checks of what a schema cannot say, with messages that name the fix."""

from __future__ import annotations

from pathlib import Path

import yaml
from snakemake.utils import validate

from molebench.nlp import plan
from molebench.ramole import plan as ramole_plan
from molebench.t2i import plan as t2i_plan

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def check(config: dict) -> dict:
    """Expand the `scaling` groups in place and run every track's checks; returns the config."""
    plan.expand(config)
    plan.check(config)
    if "ramole" in config:
        ramole_plan.check(config)
    if "t2i" in config:
        t2i_plan.check(config["t2i"])
    return config


def load_config(path: str | Path) -> dict:
    config = yaml.safe_load(Path(path).read_text())
    validate(config, str(SCHEMA))
    return check(config)
