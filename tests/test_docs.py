"""The README and the documentation site: size, product voice, generated pages in step with the code."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _docs_pages():
    spec = importlib.util.spec_from_file_location("docs_pages", ROOT / "experiments" / "docs_pages.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _product_files() -> list[Path]:
    files = [ROOT / "README.md"]
    files += sorted((ROOT / "docs").rglob("*.md")) + sorted((ROOT / "docs").rglob("*.py"))
    files += sorted((ROOT / "conf").rglob("*.yaml"))
    return files


def test_readme_stays_short():
    size = len((ROOT / "README.md").read_text())
    assert size <= 15_000, f"README.md is {size} characters; move detail into docs/ (limit 15,000)"


# history wording: how the project was developed does not belong in the product (it lives in git and CHANGELOG.md)
HISTORY = [r"\bsession\b(?<!HParams session)", r"\bwe tried\b", r"\bnow uses\b", r"\bthat machine\b",
           r"\bbefore \(", r"\bused to be\b", r"\bpreviously\b"]


@pytest.mark.parametrize("pattern", HISTORY)
def test_no_history_wording(pattern):
    hits = []
    for path in _product_files():
        text = path.read_text().replace("HParams session", "")
        for n, line in enumerate(text.splitlines(), 1):
            if re.search(pattern, line, flags=re.IGNORECASE):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:80]}")
    assert not hits, "history wording in product files:\n" + "\n".join(hits)


def test_session_pattern_matches_the_word_but_not_tensorboards_term():
    assert re.search(HISTORY[0], "Session", flags=re.IGNORECASE)
    assert not re.search(HISTORY[0], "TensorBoard's HParams session view", flags=re.IGNORECASE)


def test_tuned_configs_keep_a_short_rationale():
    long = []
    for path in sorted((ROOT / "conf" / "tuned").glob("*.yaml")):
        comments = [line for line in path.read_text().splitlines()
                    if line.strip().startswith("#") and "@package" not in line]
        if len(comments) > 3:
            long.append(f"{path.name}: {len(comments)} comment lines")
    assert not long, "tuned configs keep at most a 3-line rationale:\n" + "\n".join(long)


def test_generated_pages_are_current():
    module = _docs_pages()
    stale = [rel for rel, text in module.pages().items()
             if not (ROOT / "docs" / rel).is_file() or (ROOT / "docs" / rel).read_text() != text]
    assert not stale, f"stale generated pages {stale}: run python experiments/docs_pages.py and commit docs/"


def test_every_config_key_is_documented():
    from classic_rl.agents import AGENTS
    from classic_rl.config import RunConfig

    module = _docs_pages()
    classes, todo = set(), [RunConfig, *(cls for cls, _ in AGENTS.values())]
    while todo:  # RunConfig and every dataclass reachable from it
        cls = todo.pop()
        if cls in classes:
            continue
        classes.add(cls)
        for tp in __import__("typing").get_type_hints(cls).values():
            todo += [a for a in (__import__("typing").get_args(tp) or (tp,)) if dataclasses.is_dataclass(a)]
    missing = [f"{cls.__name__}.{name}" for cls in classes for name, doc in module.field_docs(cls).items()
               if not doc and name not in ("name", "agent", "env", "train", "eval", "logger", "export", "model",
                                           "lora", "discretize")]
    assert not missing, f"config fields without a meaning (a comment or metadata doc): {missing}"


def test_configuration_page_lists_every_key():
    from classic_rl.agents.dqn import DQNConfig
    from classic_rl.config import TrainConfig

    page = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    for f in dataclasses.fields(TrainConfig):
        assert f"`train.{f.name}`" in page
    for f in dataclasses.fields(DQNConfig):
        if f.name != "name":
            assert f"`agent.{f.name}`" in page


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert targets and not missing, f"README links to files that do not exist: {missing}"


def test_every_algorithm_page_shows_a_learning_curve_from_the_results():
    pages = sorted((ROOT / "docs" / "algorithms").glob("*.md"))
    assert len(pages) >= 6
    for page in pages:
        pictures = re.findall(r"!\[[^\]]*\]\(\.\./results/([^)]+\.png)\)", page.read_text())
        assert pictures, f"{page.name} shows no picture from experiments/results"
        for name in pictures:
            assert (ROOT / "experiments" / "results" / name).is_file(), f"{page.name}: no experiments/results/{name}"
