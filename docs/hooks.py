"""mkdocs hooks: the result pictures of experiments/results/ at results/NAME.png, and the Benchmarks
navigation from the pages in docs/benchmarks/ (written by experiments/docs_pages.py)."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent


def on_config(config):
    pages = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs" / "benchmarks").glob("*.md"))
    pages.remove("benchmarks/index.md")
    for i, entry in enumerate(config.nav):
        if isinstance(entry, dict) and "Benchmarks" in entry:
            config.nav[i] = {"Benchmarks": ["benchmarks/index.md", *pages]}
    return config


def on_files(files, config):
    for png in sorted((ROOT / "experiments" / "results").glob("*.png")):
        files.append(File.generated(config, f"results/{png.name}", abs_src_path=str(png)))
    return files
