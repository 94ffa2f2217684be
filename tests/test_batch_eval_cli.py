"""`mailroom batch eval --kind K`: the per-kind evaluation (bench/eval) from the CLI, with no database."""

from __future__ import annotations

import json

from click.testing import CliRunner

from batching.evalfile import EVAL_SETS, eval_kinds, evaluate_kinds
from tests.conftest import TEST_SECRET_KEY
from workers.cli import cli


def _run(*args: str):
    return CliRunner().invoke(cli, ["batch", "eval", *args], env={"SECRET_KEY": TEST_SECRET_KEY,
                                                                  "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})


def test_every_kind_of_the_issue_has_a_set():
    assert {"slogans", "spun", "rewrites", "talking_points", "pairs", "personalised", "organic"} <= set(
        eval_kinds(EVAL_SETS))


def test_one_json_line_per_kind_scored_by_the_production_clustering():
    result = _run("--kind", "pairs", "--kind", "organic")  # a database that cannot be reached is never used
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [r["kind"] for r in lines] == ["pairs", "organic"]
    pairs, organic = lines
    assert pairs["n"] == 320 and pairs["pairwise_precision"] >= 0.998 and pairs["pairwise_f1"] > 0.9
    assert organic["false_pairs"] == 0 and organic["batched_letters"] == 0 and pairs["false_pairs"] is None
    assert evaluate_kinds(["pairs"])["pairs"]["pairwise_f1"] == pairs["pairwise_f1"]  # the same figures as bench


def test_an_unknown_kind_or_both_a_file_and_a_kind_is_refused(tmp_path):
    result = _run("--kind", "haiku")
    assert result.exit_code != 0 and "no evaluation set for haiku" in result.output and "slogans" in result.output
    path = tmp_path / "mail.csv"
    path.write_text("id,text\n1,Vote no on the rail bill\n")
    result = _run(str(path), "--kind", "pairs")
    assert result.exit_code != 0 and "not both" in result.output
