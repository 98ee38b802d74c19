import pytest

pytest.importorskip("transformers")

from classic_rl.config import ModelConfig  # noqa: E402
from classic_rl.lm.model import load  # noqa: E402


@pytest.fixture
def tiny_lm():
    """A fresh random 2-layer GPT-2 with the byte-level tokenizer (no download)."""
    return load(ModelConfig(name="tiny"), "cpu", seed=0)
