"""The results table's bookkeeping: row selection, the locked merge of concurrent writers, the table text."""

import argparse
import json
import multiprocessing as mp

import pytest

from common.errors import ConfigError
from pipeline.results import ABLATIONS, ALL_ROWS, CMIM_ROWS, ResultsFile, format_table, schedule, select_rows


def _entry(top1: float, rate: float | None = None) -> dict:
    return {"linear": {"top1": top1}, "knn": {"top1": top1 / 2}, "kl": {}, "img_per_s": rate}


def test_select_rows_keeps_table_order_and_refuses_unknown_names():
    assert list(select_rows(["burn-cmim", "burn"])) == ["burn", "burn-cmim"]
    everything = select_rows(None)
    assert list(everything) == list(ALL_ROWS)
    assert not set(ABLATIONS) & set(select_rows(None, ablations=False))
    assert set(CMIM_ROWS) <= set(select_rows(None, ablations=False))
    with pytest.raises(ConfigError, match="unknown rows"):
        select_rows(["burn", "bogus"])


def test_cmim_rows_mirror_their_base_rows_with_the_cmim_marker():
    for name, (label, stages) in CMIM_ROWS.items():
        base = name.split("-cmim")[0]
        assert all(s["cmim"] is True for s in stages)
        assert [{k: v for k, v in s.items() if not k.startswith("cmim")} for s in stages] == ALL_ROWS[base][1]
        assert ("inbatch" in label) == any(s.get("cmim_variant") == "inbatch" for s in stages)


def test_ablation_rows_say_which_g_they_run():
    for name, (label, stages) in ABLATIONS.items():
        fixed = name.endswith("-fixed-g")
        assert all(s["recipe"] == ("official" if fixed else "paper") for s in stages)
        assert ("g fixed" in label) == fixed and ("g trained jointly" in label) == (not fixed)


def test_schedule_puts_every_row_of_the_first_seed_first():
    order = schedule([0, 1], ["burn", "abl1", "burn-cmim"])
    assert order[:3] == [(0, "burn"), (0, "abl1"), (0, "burn-cmim")]
    assert sorted(order) == sorted((s, r) for s in (0, 1) for r in ("burn", "abl1", "burn-cmim"))


def _writer(out: str, name: str, n: int) -> None:
    store = ResultsFile(__import__("pathlib").Path(out))
    for seed in range(n):
        store.record(name, seed, _entry(0.5))


def test_concurrent_writers_lose_no_run(tmp_path):
    """Two processes recording disjoint rows into one file: every run of both is there afterwards."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), name, 15)) for name in ("burn", "s2bnn")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert sorted(runs) == ["burn", "s2bnn"]
    assert all(sorted(runs[n], key=int) == [str(s) for s in range(15)] for n in runs)


def test_table_shows_mean_std_throughput_and_rows_other_processes_wrote(tmp_path):
    store = ResultsFile(tmp_path)
    store.record("burn", 0, _entry(0.40, 60.0))
    store.record("burn", 1, _entry(0.50, 80.0))
    store.record("supervised-cmim", 0, _entry(0.90, 200.0))  # written by "another process"
    args = argparse.Namespace(preset="digits-tiny", seeds=[0, 1], rows=["burn"], ablations=True, cmim_weight=0.1,
                              epochs=None, supervised_epochs=None, warmup_epochs=None)
    table = format_table(store.read(), args)
    burn = next(ln for ln in table.splitlines() if ln.startswith("| BURN, recipe official"))
    assert "| 2 | 45.0 ± 7.1 | 22.5 ± 3.5 |" in burn and burn.endswith("| 70 |")
    assert f"| {CMIM_ROWS['supervised-cmim'][0]} | 1 | 90.0 | 45.0 |" in table
    assert "S2-BNN" not in table  # neither asked for nor run
