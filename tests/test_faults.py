"""Fault injection (issue on reliability): every designed failure behaviour, observed."""

from molebench.faults import campaign


def test_fault_campaign():
    rows = campaign(kills=10, seed=1)
    failed = [row for row in rows if not row["ok"]]
    assert not failed, failed
    assert rows[0]["tries"] == 10
