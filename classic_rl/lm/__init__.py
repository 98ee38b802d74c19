"""Language models as policies of the text envs: `model.load` (local files only), `policy.LMPolicy`
(KV-cached acting, one batched pass of log-probs, value head, reference), `tiny` (offline test model).
Needs the `lm` extra: pip install 'classic_rl[lm]'."""
