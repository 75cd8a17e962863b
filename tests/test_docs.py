"""The documentation: the site builds with `--strict` from the code as it is, no page points
outside the repository, and the README's quickstart works as written on a fresh copy."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import sweeps
from tests.conftest import REPO

PAGES = sorted((REPO / "docs").rglob("*.md")) + [REPO / "README.md"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# a file named in code: `sweeps/spec.py`, `BENCHMARKS.md`, `docs/demo-phase-diagram.png`
NAMED = re.compile(r"`([\w./-]+\.(?:py|md|yaml|yml|toml|json|html|png|cfg|txt))`")
TOP = {p.name for p in REPO.iterdir()} - {".venv", "site", "runs", "mlartifacts"}
NOT_IN_REPO = re.compile(r"CONTRACTS|PAPER\.md|\.\./shared")


def hooks():
    """The site's build hooks (docs/hooks.py): what it generates, and from what."""
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs/hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess:
    """`mkdocs build --strict`; not `--quiet`, which hides the warnings strict mode counts
    (a broken link then builds with exit 0)."""
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "--config-file", str(config), "--site-dir", str(site)],
                          cwd=config.parent, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def test_the_site_builds_strict_with_every_command_and_field_generated(tmp_path):
    from sweeps.cli import build_parser
    from sweeps.spec import SweepSpec
    from trainables import catalog

    built = mkdocs_build(REPO / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stdout + built.stderr
    site = tmp_path / "site"
    cli = (site / "reference/cli/index.html").read_text()
    commands = [a for a in build_parser()._actions if hasattr(a, "choices") and a.choices
                and isinstance(a.choices, dict)][0].choices
    for name in commands:  # the page is the parser's: a new command appears by itself
        assert f"sweeps {name}" in cli, name
    assert "--tracking-uri" in cli and "generated:" not in cli
    spec = (site / "reference/spec/index.html").read_text()
    for field in SweepSpec.model_fields:
        assert f"<code>{field}</code>" in spec, field
    for trainable in ("synthetic", "olmo"):
        for field in catalog.get(trainable).section.model_fields:
            assert f"<code>{trainable}.{field}</code>" in spec, (trainable, field)
    api = (site / "reference/python-api/index.html").read_text()
    assert "sweeps.api.run" in api or "run(" in api
    assert (site / "reference/benchmarks/index.html").read_text().count("<h2") >= 5
    assert (site / "reproduce-synthetic/index.html").is_file()  # the committed report, served


def test_a_broken_link_fails_the_build(tmp_path):
    """The negative control of the strict build: the same site with one link to a page that
    does not exist."""
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(REPO / "mkdocs.yml", copy)
    shutil.copytree(REPO / "docs", copy / "docs")
    shutil.copy(REPO / "BENCHMARKS.md", copy)
    page = copy / "docs/quickstart.md"
    page.write_text(page.read_text() + "\nSee [nothing](howto/no-such-page.md).\n")
    built = mkdocs_build(copy / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0
    assert "no-such-page.md" in built.stdout + built.stderr


def outside(page: Path, text: str) -> list[str]:
    """What `text` (the page `page`) links or names that is not a file of the repository."""
    bad = NOT_IN_REPO.findall(text)
    generated = REPO / "docs" / hooks().BENCHMARKS  # made at build time, from BENCHMARKS.md
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL, or an anchor on the same page
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.is_relative_to(REPO) or not (path.exists() or path == generated):
            bad.append(target)
    for name in NAMED.findall(text):
        first = name.split("/")[0]
        if first in TOP and not (REPO / name).exists():
            bad.append(name)
    return bad


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_page_links_or_names_a_file_outside_the_repository(page):
    assert outside(page, page.read_text()) == []


def test_the_outside_check_finds_what_it_should():
    page = REPO / "docs/howto/results.md"
    text = ("[c](../../../shared/CONTRACTS.md) [p](../../PAPER.md) [gone](nothing.md) "
            "`sweeps/missing.py` [ok](watch.md) [url](https://ray.io) `sweeps/spec.py`")
    assert outside(page, text) == ["../shared", "CONTRACTS", "PAPER.md",
                                   "../../../shared/CONTRACTS.md", "../../PAPER.md",
                                   "nothing.md", "sweeps/missing.py"]


def test_the_readme_stays_short_and_links_the_site():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "docs/quickstart.md" in readme and "make demo" in readme and "make test" in readme


def test_the_readmes_evidence_line_is_the_committed_reports():
    """The README quotes one claim's verdict and evidence: word for word what the committed
    synthetic report's claims.json says, so a regenerated report cannot leave it stale."""
    import json

    readme = (REPO / "README.md").read_text()
    block = readme.split("## How a claim is judged", 1)[1].split("```\n", 2)[1]
    quoted = " ".join(block.split())
    claim_id = quoted.split()[0]
    claims = json.loads((REPO / "docs/reproduce-synthetic/claims.json").read_text())
    claim, = [c for c in claims if c["id"] == claim_id]
    verdict = {True: "holds", False: "does not hold", None: "null"}[claim["holds"]]
    assert quoted == " ".join(f"{claim_id} ({claim['claim']}): {verdict} "
                              f"{claim['evidence']}".split())


def quickstart_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def fresh_copy(into: Path) -> Path:
    """The checkout's files as a clone would have them (tracked and new files, no ignored
    build output), with the demo preset cut to two widths, one frequency and one task so the
    quickstart runs in seconds; every other line of the preset is the real one."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, into / name)
    preset = into / "sweeps/presets/demo.yaml"
    spec = yaml.safe_load(preset.read_text())
    spec["grid"].update(width=[4, 16], frequency=[0.1], task=["simple"])
    spec["synthetic"].update(tasks=4, features_per_task=4)
    preset.write_text(yaml.safe_dump(spec))
    return into


@pytest.mark.slow
def test_the_readme_quickstart_runs_as_written_on_a_fresh_copy(tmp_path):
    commands = quickstart_commands()
    assert [c.split()[:2] for c in commands] == [
        ["cp", "sweeps/presets/demo.yaml"], ["sweeps", "validate"], ["sweeps", "run"],
        ["sweeps", "curves"]]
    copy = fresh_copy(tmp_path / "clone")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "PYTHONPATH": str(copy), "MLFLOW_TRACKING_URI": "", "SWEEPS_STORAGE": ""}
    env = {k: v for k, v in env.items() if v != ""}
    outputs = []
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=copy, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        outputs.append(done.stdout)
    _, validated, ran, curves = outputs
    assert (copy / "my-sweep.yaml").is_file()
    assert "my-sweep" in validated and "2 points" in validated
    assert "learned" in ran
    assert "simple" in curves and "0.1" in curves
    rows = sweeps.status("my-sweep", tracking_uri=f"sqlite:///{copy / 'mlflow.db'}")
    assert sorted((int(r.params["width"]), r.state) for r in rows) == [
        (4, "FINISHED"), (16, "FINISHED")]
    assert (copy / "mlflow.db").is_file() and (copy / "runs/my-sweep").is_dir()
