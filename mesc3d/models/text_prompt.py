"""3DSPL prompt learner + deep prompt tuning (DPT) text encoder over a frozen text tower (docs/design.md).

Sequence per class name (CoOp "middle", no "." token, as the official code):

    [SOT] ctx_1 .. ctx_P  <class-name tokens (k)>  ctx'_1 .. ctx'_Q  [EOT]  [pad ...]
    slot 0  1 .. P          P+1 .. P+k                P+k+1 .. P+k+Q   P+k+Q+1

The P + Q context vectors (``ctx_prefix``, ``ctx_suffix``; init N(0, 0.02)) live in the tower's
word-embedding space and are shared by all classes, so ANY class name (seen or unseen: bed,
bookcase, desk, tool) encodes without retraining.

DPT (ZegCLIP's VPT-deep moved to the text tower): ``n_deep`` learnable tokens are prepended before
layer 0 (``prompt_embeddings``) and REPLACED before every later layer l by
``deep_prompt_embeddings[l-1]``; every prompt goes through the shared ``prompt_proj`` (Linear W->W,
Kaiming-normal fan_out) + ``prompt_dropout``; prompts get no positional embedding (positions are
added to the text slots only).  Attention over the extended length n_deep + L is causal for
open_clip (prompts see earlier prompts, text sees all prompts + earlier text) and bidirectional
for MiniLM.  After the last layer ``prompt_norm`` (LayerNorm eps 1e-6, trainable; open_clip only:
MiniLM is post-LN, its outputs are already normalised) is applied to all tokens, the prompt slots
are dropped, and the tower pools: open_clip = ``ln_final`` then EOT @ ``text_projection`` (512);
MiniLM = mean over text tokens (384).  With ``n_deep = 0`` no prompt module exists and the
forward equals the plain tower on the same token sequence (tested bit-exactly).

Backend choice (``prompt.text_backend``): ``open_clip`` is the paper's tower and the default for
real runs; the embedded benchmark uses ``minilm`` because no CLIP weights can be had offline here
and a RANDOM CLIP tower knows no words: zero-shot priors for unseen names would be noise.  See
``text_towers.py``.

Trainable: ``ctx_prefix``, ``ctx_suffix``, ``prompt_embeddings``, ``deep_prompt_embeddings``,
``prompt_proj``, ``prompt_norm`` (the stage-1 module adds the point projection and temperature);
the tower is frozen and pinned to eval mode.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from mesc3d.config import PromptCfg
from mesc3d.models.text_towers import FrozenTower, build_tower


class PromptBank(nn.Module):
    """Learnable class prompts + DPT text encoder: ``forward(names) -> (C, out_dim)`` raw priors."""

    def __init__(self, cfg: PromptCfg, class_names: Sequence[str] = (), tower: FrozenTower | None = None):
        super().__init__()
        self.cfg = cfg
        self.tower = tower if tower is not None else build_tower(cfg.text_backend, cfg.open_clip_arch, cfg.pretrained)
        width, n_layers = self.tower.width, self.tower.n_layers
        self.n_prefix, self.n_suffix, self.n_deep = cfg.n_ctx_prefix, cfg.n_ctx_suffix, cfg.n_deep
        if min(self.n_prefix, self.n_suffix, self.n_deep) < 0:
            raise ValueError("prompt.n_ctx_prefix, n_ctx_suffix and n_deep must be >= 0")
        self.class_names = list(class_names)
        self.out_dim = self.tower.out_dim
        self.ctx_prefix = nn.Parameter(torch.randn(self.n_prefix, width) * 0.02)  # (P, W)
        self.ctx_suffix = nn.Parameter(torch.randn(self.n_suffix, width) * 0.02)  # (Q, W)
        if self.n_deep > 0:
            bound = math.sqrt(6.0 / float(3 * 16 * 16 + width))  # VPT/ZegCLIP init (±0.0685 at W=512)
            self.prompt_embeddings = nn.Parameter(torch.empty(1, self.n_deep, width).uniform_(-bound, bound))
            self.deep_prompt_embeddings = nn.Parameter(
                torch.empty(n_layers - 1, self.n_deep, width).uniform_(-bound, bound))  # (L-1, n, W)
            self.prompt_proj = nn.Linear(width, width)
            nn.init.kaiming_normal_(self.prompt_proj.weight, a=0, mode="fan_out")
            nn.init.zeros_(self.prompt_proj.bias)
            self.prompt_dropout = nn.Dropout(cfg.prompt_dropout)
            self.prompt_norm = nn.LayerNorm(width, eps=1e-6) if self.tower.causal else nn.Identity()
        self._tok_cache: dict[str, list[int]] = {}

    # ------------------------------------------------------------------ parameters
    def prompt_parameters(self) -> list[nn.Parameter]:
        """Every trainable parameter (everything outside the frozen tower)."""
        return [p for n, p in self.named_parameters() if not n.startswith("tower.")]

    def prompt_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.state_dict().items() if not k.startswith("tower.")}

    def train(self, mode: bool = True) -> "PromptBank":
        super().train(mode)
        self.tower.train(False)  # frozen tower never uses its own dropout
        return self

    # ------------------------------------------------------------------ tokenisation
    def name_tokens(self, name: str) -> list[int]:
        if name not in self._tok_cache:
            toks = self.tower.name_tokens(name)
            if not toks:
                raise ValueError(f"class name {name!r} tokenises to nothing")
            self._tok_cache[name] = toks
        return self._tok_cache[name]

    def tokenize(self, names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Names -> ``ids`` (C, L) with the pad id in context slots, ``name_len`` (C,), ``eot_pos`` (C,),
        ``valid`` (C, L) bool (True for SOT..EOT).  L = longest sequence of the batch."""
        t = self.tower
        toks = [self.name_tokens(n) for n in names]
        lengths = [1 + self.n_prefix + len(k) + self.n_suffix + 1 for k in toks]
        length = max(lengths)
        if length > t.max_len:
            raise ValueError(f"prompt of length {length} exceeds the tower's context {t.max_len}")
        ids = torch.full((len(names), length), t.pad_id, dtype=torch.long)
        for i, k in enumerate(toks):
            seq = [t.sot_id] + [t.pad_id] * self.n_prefix + k + [t.pad_id] * self.n_suffix + [t.eot_id]
            ids[i, : len(seq)] = torch.tensor(seq)
        lens = torch.tensor(lengths)
        valid = torch.arange(length)[None, :] < lens[:, None]  # (C, L)
        return ids, torch.tensor([len(k) for k in toks]), lens - 1, valid

    def assemble(self, ids: torch.Tensor, name_len: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the context vectors placed around each class name -> (C, L, W)."""
        tok = self.tower.word_embed(ids)  # (C, L, W)
        p, q = self.n_prefix, self.n_suffix
        rows = []
        for i in range(ids.shape[0]):
            k = int(name_len[i])
            rows.append(torch.cat([tok[i, :1], self.ctx_prefix, tok[i, 1 + p: 1 + p + k], self.ctx_suffix,
                                   tok[i, 1 + p + k + q:]], 0))  # (L, W)
        return torch.stack(rows, 0)

    @torch.no_grad()
    def init_context_from_text(self, prefix: str, suffix: str) -> None:
        """CoOp-style init: context = the word embeddings of ``prefix`` / ``suffix`` (exact token counts)."""
        for text, param in ((prefix, self.ctx_prefix), (suffix, self.ctx_suffix)):
            toks = self.tower.name_tokens(text) if text else []
            if len(toks) != param.shape[0]:
                raise ValueError(f"{text!r} has {len(toks)} tokens, the context has {param.shape[0]} slots")
            if toks:
                param.copy_(self.tower.word_embed(torch.tensor([toks]))[0])

    # ------------------------------------------------------------------ encoder
    def _prompt(self, layer: int, batch: int) -> torch.Tensor:
        raw = self.prompt_embeddings if layer == 0 else self.deep_prompt_embeddings[layer - 1: layer]  # (1, n, W)
        return self.prompt_dropout(self.prompt_proj(raw)).expand(batch, -1, -1)  # (C, n, W)

    def encode(self, names: Sequence[str]) -> torch.Tensor:
        """Class names -> raw (unnormalised) prior vectors (C, out_dim)."""
        if len(names) == 0:
            raise ValueError("encode() needs at least one class name")
        t = self.tower
        dev = self.ctx_prefix.device
        ids, name_len, eot_pos, valid = (a.to(dev) for a in self.tokenize(names))
        x = t.embed(self.assemble(ids, name_len))  # (C, L, W), positions on text slots only
        n, c = self.n_deep, ids.shape[0]
        mask = t.attention_mask(n, valid)  # (T, T) or (C, 1, T, T), T = n + L
        for layer in range(t.n_layers):
            if n > 0:
                text = x if layer == 0 else x[:, n:]  # previous prompt outputs are discarded
                x = torch.cat([self._prompt(layer, c), text], 1)  # (C, n + L, W)
            x = t.run_layer(layer, x, mask)
        if n > 0:
            x = self.prompt_norm(x)[:, n:]  # (C, L, W)
        return t.pool(x, eot_pos, valid)  # (C, D)

    def forward(self, names: Sequence[str] | None = None) -> torch.Tensor:
        return self.encode(self.class_names if names is None else names)

    def extra_repr(self) -> str:
        return (f"backend={self.cfg.text_backend}, P={self.n_prefix}, Q={self.n_suffix}, n_deep={self.n_deep}, "
                f"out_dim={self.out_dim}, classes={len(self.class_names)}")


def encode_naive(bank: PromptBank, names: Sequence[str]) -> torch.Tensor:
    """Naive twin of ``PromptBank.encode``: one class name at a time, no batching (same result)."""
    return torch.cat([bank.encode([name]) for name in names], 0)
