"""The generated pages of the documentation site, so that they cannot drift from the code and the data.

- `reference/configuration.md`: every public config key (type, default, allowed values, meaning), read from
  the config dataclasses (`classic_rl/config.py`, each agent's config class): the meaning is the field's
  `metadata["doc"]` and its source comments, the default the value `conf/` gives.
- `reference/tuned.md`: every tuned config in `conf/tuned/` with the keys it sets and its rationale.
- the Benchmarks pages: `experiments/results_pages.py`, from `experiments/results/*.json`.

`python experiments/docs_pages.py` writes them into docs/ (commit them with the change that moves them);
`--check` only reports stale ones (a test runs it, so a result or a config key cannot change without its page).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import inspect
import io
import sys
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------------------------
# a dataclass field's documentation: metadata["doc"] + the comments on and above its line


def field_comments(cls: type) -> dict[str, str]:
    """{field name: its comment text} for the fields `cls` itself declares (comments above and beside)."""
    lines, _ = inspect.getsourcelines(cls)
    source = textwrap.dedent("".join(lines))
    comments: dict[int, str] = {}  # line (1-based) -> comment text
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    src_lines = source.splitlines()
    body = ast.parse(source).body[0].body  # the class body
    out: dict[str, str] = {}
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        line = node.lineno - 1
        while line >= 1 and src_lines[line - 1].strip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        beside = [comments[n] for n in range(node.lineno, node.end_lineno + 1) if n in comments]
        out[node.target.id] = " ".join(above + beside)
    return out


def field_docs(cls: type) -> dict[str, str]:
    """{field name: meaning} for every field of `cls`, inherited ones from the class that declares them."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass) and "__dataclass_fields__" in vars(klass):
            comments.update({k: v for k, v in field_comments(klass).items() if v})
    docs = {}
    for f in dataclasses.fields(cls):
        parts = [f.metadata.get("doc", ""), comments.get(f.name, "")]
        docs[f.name] = "; ".join(p for p in parts if p)
    return docs


def type_name(tp: Any) -> str:
    """int, float, bool, str, list[int], int | list[int], str | null, bool | "auto", mapping, ..."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(sorted({"str" if isinstance(a, str) else type(a).__name__ for a in typing.get_args(tp)}))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"list[{type_name((typing.get_args(tp) or (Any,))[0])}]"
    if origin is dict or tp is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def allowed(f: dataclasses.Field, tp: Any) -> str:
    """The field's range check, else the values its type spells out (Literal choices, and in a union bool and null)."""
    if "check" in f.metadata:
        return f.metadata["check"][1]
    names = []
    for part in (typing.get_args(tp) if typing.get_origin(tp) not in (Literal, None) else (tp,)):
        if typing.get_origin(part) is Literal:
            names += [str(a).lower() if isinstance(a, bool) else str(a) for a in typing.get_args(part)]
        elif part is bool:
            names += ["true", "false"]
        elif part is type(None):
            names.append("null")
    return " | ".join(names) if len(names) > 1 or typing.get_origin(tp) is Literal else ""


def show(value: Any) -> str:
    if value is dataclasses.MISSING:
        return "required"
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return f"`{text}`".replace("|", "\\|")


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def key_rows(cls: type, prefix: str, defaults: dict[str, Any] | None = None, skip: tuple[str, ...] = ()) -> list[str]:
    """One table row per leaf key of dataclass `cls`; nested dataclass fields recurse as their own keys."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = hints[f.name]
        inner = [a for a in (typing.get_args(tp) or (tp,)) if dataclasses.is_dataclass(a)]
        if inner:
            continue  # a section of its own (env.discretize, model.lora)
        if defaults is not None and f.name in defaults:
            default = defaults[f.name]
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        rows.append(f"| `{prefix}{f.name}` | {cell(type_name(tp))} | {show(default)} | {cell(allowed(f, tp))} "
                    f"| {cell(docs[f.name])} |")
    return rows


HEADER = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    data.pop("defaults", None)
    return data


def agent_defaults(name: str) -> dict[str, Any]:
    """The agent keys `agent=NAME` composes: conf/agent/NAME.yaml over the files it names in `defaults`."""
    raw = yaml.safe_load((CONF / "agent" / f"{name}.yaml").read_text()) or {}
    merged: dict[str, Any] = {}
    for parent in raw.get("defaults", []):
        if isinstance(parent, str) and parent != "_self_":
            merged.update(agent_defaults(parent))
    merged.update({k: v for k, v in raw.items() if k != "defaults"})
    return merged


def presets() -> dict[str, tuple[str, dict[str, Any]]]:
    """{preset name: (base agent, the keys it changes)} for conf/agent files that are not an agent's own."""
    from classic_rl.agents import AGENTS

    out = {}
    for path in sorted((CONF / "agent").glob("*.yaml")):
        if path.stem in AGENTS:
            continue
        keys = agent_defaults(path.stem)
        base = keys["name"]
        changed = {k: v for k, v in keys.items() if agent_defaults(base).get(k) != v}
        out[path.stem] = (base, changed)
    return out


def configuration_page() -> str:
    from classic_rl.agents import AGENTS
    from classic_rl.config import (DiscretizeConfig, EnvConfig, EvalConfig, ExportConfig, LoggerConfig, LoraConfig,
                                   ModelConfig, RunConfig, TrainConfig)

    top = load_yaml(CONF / "config.yaml")
    out = [
        "# Configuration reference",
        "",
        "Every key a run accepts, generated from the config dataclasses (`classic_rl/config.py` and each agent's",
        "config class), which validate it at start: a wrong key, type or value ends with one line naming the key",
        "and what is allowed. Set a key on the command line (`python -m classic_rl agent.lr=3e-4`) or as an",
        "override of `classic_rl.train(...)`. Defaults are what `conf/` composes before any tuned config",
        "(`conf/tuned/AGENT_ENV.yaml`, [Tuned configs](tuned.md)) applies. Steps are env steps: one vector step of",
        "`env.num_envs` envs is `env.num_envs` steps. A budget written `${vector_steps:K}` is K vector steps.",
        "",
        "## Run",
        "",
        "`agent=NAME`, `env=NAME` and `model=NAME` choose config groups (`conf/agent/`, `conf/env/`, `conf/model/`);",
        "`+experiment=NAME` a whole set-up from `conf/experiment/`.",
        "",
        *HEADER,
        *key_rows(RunConfig, "", top, skip=("agent", "env", "train", "eval", "logger", "export", "model")),
    ]
    sections = [
        ("env", EnvConfig, None, "The env group (`conf/env/ID.yaml`) sets `env.id` and per-env values such as "
                                 "`env.num_envs`; the defaults below are the dataclass's."),
        ("env.discretize", DiscretizeConfig, None, "Tabular agents on a Box observation (`classic_rl/envs/discretize.py`)."),
        ("train", TrainConfig, top.get("train"), ""),
        ("eval", EvalConfig, top.get("eval"), ""),
        ("logger", LoggerConfig, top.get("logger"), ""),
        ("export", ExportConfig, top.get("export"), "`mode=export` (see [Checkpoints](../checkpoints.md))."),
        ("model", ModelConfig, None, "Language models, with the text envs (`model=smollm2-135m | tiny | path`)."),
        ("model.lora", LoraConfig, None, "LoRA adapters through peft."),
    ]
    for name, cls, defaults, note in sections:
        out += ["", f"## {name}", ""] + ([note, ""] if note else []) + HEADER + key_rows(cls, name + ".", defaults)
    out += ["", "## Agents", "",
            "`agent=NAME` selects `conf/agent/NAME.yaml`; its keys are `agent.KEY`. The default column is that",
            "file's value.", ""]
    seen: set[type] = set()
    for name, (cls, _) in AGENTS.items():
        names = [n for n, (c, _) in AGENTS.items() if c is cls]
        if cls in seen:
            continue
        seen.add(cls)
        title = " / ".join(f"`{n}`" for n in names)
        module = cls.__module__.replace(".", "/") + ".py"
        out += [f"### agent={title}", "", f"`{cls.__name__}` in `{module}`."
                + (" The three names share the keys; the defaults are `q_learning`'s." if len(names) > 1 else ""),
                "", *HEADER, *key_rows(cls, "agent.", agent_defaults(name), skip=("name",)), ""]
    out += ["## Presets", "", "A preset is an agent file that switches options of another agent on.", "",
            "| preset | agent | keys it sets |", "|---|---|---|"]
    for preset, (base, changed) in presets().items():
        keys = ", ".join(f"`{k}={show(v).strip('`')}`" for k, v in changed.items())
        out.append(f"| `agent={preset}` | `{base}` | {cell(keys)} |")
    return "\n".join(out) + "\n"


def tuned_page() -> str:
    out = ["# Tuned configs", "",
           "`conf/tuned/AGENT_ENV.yaml` applies on top of `agent=AGENT env=ENV` whenever a run names that pair;",
           "keys given on the command line override it. Each file's comment is its rationale and measured result;",
           "[the measurements behind them](../benchmarks/tuned-configs.md) has the alternatives that were measured.", "",
           "| file | includes | keys it sets | rationale |", "|---|---|---|---|"]
    for path in sorted((CONF / "tuned").glob("*.yaml")):
        text = path.read_text()
        raw = yaml.safe_load(text) or {}
        includes = ", ".join(f"`{d}`" if isinstance(d, str) else f"`{next(iter(d.values()))}`"
                             for d in raw.pop("defaults", []) if d != "_self_")
        flat = []

        def walk(node: Any, prefix: str) -> None:
            if isinstance(node, dict) and not (prefix.endswith("kwargs.") or prefix.endswith("discretize.")):
                for k, v in node.items():
                    walk(v, f"{prefix}{k}.")
            else:
                flat.append(f"`{prefix[:-1]}={show(node).strip('`')}`")

        walk(raw, "")
        comment = " ".join(line.strip().lstrip("#").strip() for line in text.splitlines()
                           if line.strip().startswith("#") and "@package" not in line)
        out.append(f"| `{path.name}` | {includes} | {cell(', '.join(flat))} | {cell(comment)} |")
    return "\n".join(out) + "\n"


def results_pages() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("results_pages", ROOT / "experiments" / "results_pages.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.pages()


def pages() -> dict[str, str]:
    """{site path: Markdown} of every generated page."""
    return {"reference/configuration.md": configuration_page(), "reference/tuned.md": tuned_page(),
            **results_pages()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Write (or check) the generated pages of the documentation site.")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="directory to write them into (default: docs/)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page in --out is stale")
    args = parser.parse_args()
    stale = []
    for rel, text in pages().items():
        path = Path(args.out) / rel
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        print(path)
    if stale:
        sys.exit(f"stale generated pages: {', '.join(stale)}; run: python experiments/docs_pages.py")


if __name__ == "__main__":
    main()
