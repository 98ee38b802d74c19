"""experiments/results_pages.py: the Benchmarks pages of the site are generated from experiments/results/*.json,
cover every result, name their command and hardware, and reference only pictures that exist."""

import json
import re
from pathlib import Path
import shutil

import pytest

from conftest import ROOT, load_experiment

RESULTS = ROOT / "experiments" / "results"


@pytest.fixture(scope="module")
def module():
    return load_experiment("results_pages")


@pytest.fixture(scope="module")
def pages(module):
    return module.pages()


def test_every_results_json_is_claimed_by_a_page(module, pages):
    names = sorted(p.name for p in RESULTS.glob("*.json"))
    assert names, "no results"
    assert module.unclaimed(names) == []
    assert "benchmarks/index.md" in pages
    assert all(path.startswith("benchmarks/") and path.endswith(".md") for path in pages)


def test_a_new_result_without_a_page_fails(module, tmp_path, monkeypatch):
    for path in RESULTS.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "brand_new_experiment.json").write_text(json.dumps({"rows": []}))
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    with pytest.raises(RuntimeError, match="brand_new_experiment.json"):
        module.pages()


def test_every_page_has_a_title_a_command_and_hardware(pages):
    for path, text in pages.items():
        assert text.startswith("# "), path
        assert re.search(r"`(python|torchrun) [^`]+`", text), f"{path}: no command"
        assert "hardware" in text.lower(), f"{path}: no hardware"


def test_the_index_links_every_page(pages):
    index = pages["benchmarks/index.md"]
    for path in pages:
        if path != "benchmarks/index.md":
            assert f"]({path.removeprefix('benchmarks/')})" in index, path


def test_links_stay_inside_the_site(pages):
    """Links go to another generated page or to a written page of the site (docs/), nowhere else."""
    names = {path.removeprefix("benchmarks/") for path in pages}
    docs = Path(__file__).resolve().parent.parent / "docs"
    for path, text in pages.items():
        for target in re.findall(r"(?<!!)\[[^\]]*\]\(([^)]+)\)", text):
            target = target.split("#")[0]
            written = (docs / "benchmarks" / target).resolve()
            assert target in names or (written.is_file() and docs in written.parents), f"{path}: link to {target}"


def test_pictures_exist(pages):
    seen = set()
    for path, text in pages.items():
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
            assert target.startswith("../results/"), f"{path}: {target}"
            name = target.removeprefix("../results/")
            assert (RESULTS / name).is_file(), f"{path}: {target}"
            seen.add(name)
    # each per-env curve of the suites and the other pictures appear on some page
    assert {p.name for p in RESULTS.glob("*.png")} <= seen


def test_the_classic_page_is_generated_from_the_data(pages):
    row = json.loads((RESULTS / "classic.json").read_text())["rows"][0]
    spec = ".2f" if abs(row["threshold"]) < 20 else ".1f"  # experiments/benchmark.py's format for returns
    final = f"{row['final_iqm']:{spec}} [{row['final_ci'][0]:{spec}}, {row['final_ci'][1]:{spec}}]"
    assert f"| {row['agent']} | {final} |" in pages["benchmarks/classic.md"]


def test_product_voice(pages):
    from tests.test_docs import HISTORY  # the product-voice patterns README, docs and conf are held to

    for path, text in pages.items():
        for pattern in HISTORY:
            assert not re.search(pattern, text.replace("HParams session", ""), flags=re.IGNORECASE), (path, pattern)
