"""A tiny GPT-2 and a byte-level tokenizer built in code: `model=tiny` runs the LM side offline in
seconds (tests, CI, smoke runs). Nothing is downloaded; weights are random unless a checkpoint is given.
"""

from __future__ import annotations

from typing import Any

import torch


SPECIALS = ("<|endoftext|>", "<|pad|>")


def byte_tokenizer() -> Any:
    """A byte-level tokenizer (256 byte tokens + <|endoftext|> (EOS) + <|pad|>) as a transformers
    PreTrainedTokenizerFast: every string round-trips, no merges, no vocabulary file."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()  # the 256 printable stand-ins for bytes
    vocab = {symbol: i for i, symbol in enumerate(sorted(alphabet))}
    for special in SPECIALS:
        vocab[special] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(list(SPECIALS))
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=SPECIALS[0], pad_token=SPECIALS[1])


def tiny_gpt2(vocab_size: int, eos_id: int | None = None, seed: int = 0, n_embd: int = 64, n_layer: int = 2, n_head: int = 2,
              n_positions: int = 256) -> torch.nn.Module:
    """A randomly initialised GPT-2 small enough to train on a CPU in seconds."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                        n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=eos_id, eos_token_id=eos_id)
    return GPT2LMHeadModel(config)
