"""A user's reward functions with TRL's signature (tests/lm/test_text_tasks.py imports them by name)."""


def digits(prompts, completions, **columns):
    """The fraction of digit characters in each completion."""
    return [sum(ch.isdigit() for ch in c) / len(c) if c else 0.0 for c in completions]


def wrong_length(prompts, completions, **columns):
    return [1.0]


def not_a_number(prompts, completions, **columns):
    return ["yes" for _ in completions]


NOT_CALLABLE = 3
