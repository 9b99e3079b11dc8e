"""Fault injection (issue on reliability): every designed failure behaviour, observed."""

from pathlib import Path

from molebench.config import load_config
from molebench.faults import campaign

SMOKE = Path(__file__).resolve().parents[1] / "config" / "smoke.yaml"


def test_fault_campaign():
    rows = campaign(load_config(SMOKE), kills=10, seed=1)
    failed = [row for row in rows if not row["ok"]]
    assert not failed, failed
    assert rows[0]["tries"] == 10
