"""Documentation pinned to the code: the README's pipeline stages and settings table, the architecture
page's contracts."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from intake.pipeline import STAGES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
ENV_NAME = re.compile(r"^(MAILROOM_[A-Z0-9_]+|DATABASE_URL|DATABASE_READ_URL|REDIS_URL|SECRET_KEY)$")


def _section(text: str, heading: str) -> str:
    """The text under a Markdown heading, up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(f"\n{heading}\n")
    end = re.search(rf"\n#{{1,{len(level)}}} ", text[start + 1:])
    return text[start:start + 1 + end.start()] if end else text[start:]


def test_the_readme_lists_the_pipeline_stages_in_order():
    found = re.search(r"runs the pipeline `([^`]+)`", README)
    assert found, "the README no longer says which stages the pipeline runs"
    listed = [name.strip() for name in found.group(1).split("→")]
    assert listed == [stage.name for stage in STAGES]


def _settings_in_code() -> set[str]:
    tree = ast.parse((ROOT / "config" / "settings.py").read_text(encoding="utf-8"))
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and ENV_NAME.match(node.value)}


def _settings_in_readme() -> set[str]:
    table = [line for line in _section(README, "## Settings").splitlines() if line.startswith("| `")]
    return {name for line in table for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])}


def test_the_readme_settings_table_lists_exactly_the_settings_read():
    in_code, in_readme = _settings_in_code(), _settings_in_readme()
    assert len(in_code) > 30  # the parse found the settings (a rewrite of settings.py must keep it honest)
    assert in_code - in_readme == set(), "read by config/settings.py but not in the README's table"
    assert in_readme - in_code == set(), "in the README's table but not read by config/settings.py"


def test_the_readme_calls_no_shipped_feature_an_open_issue():
    assert "open issue" not in README.split("## The two commands")[0]


def test_the_architecture_page_names_every_import_contract():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    layers = next(c for c in contracts["contracts"] if c["type"] == "layers")["layers"]
    named = {p.strip() for layer in layers for p in re.split(r"[:|]", layer)}
    assert named == set(contracts["root_packages"])  # every package sits in a layer
    for package in named:
        assert f"`{package}/`" in page, f"docs/architecture.md does not say what {package}/ holds"
    for contract in contracts["contracts"]:
        assert f"**{contract['name']}.**" in page, f"contract {contract['name']!r} is not described"
