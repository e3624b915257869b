"""3DSPL prompt learner + DPT text encoder: token layout, exactness of the port, gradients, zero-shot names."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # never touch the network (set before transformers loads)

import pytest  # noqa: E402
import torch  # noqa: E402

from mesc3d.config import PromptCfg  # noqa: E402
from mesc3d.models.text_prompt import PromptBank, encode_naive  # noqa: E402
from mesc3d.models.text_towers import build_tower  # noqa: E402

UNSEEN = ["bed", "bookcase", "desk", "tool"]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def minilm_tower():
    return build_tower("minilm")


def _bank(tower, p=3, q=2, n_deep=0, names=("chair",)):
    torch.manual_seed(0)
    return PromptBank(PromptCfg(n_ctx_prefix=p, n_ctx_suffix=q, n_deep=n_deep), list(names), tower=tower)


def test_token_layout_single_and_multi_token_names(tower):
    bank = _bank(tower, p=3, q=2)
    assert len(bank.name_tokens("chair")) == 1 and len(bank.name_tokens("loudspeaker")) == 2
    ids, name_len, eot_pos, valid = bank.tokenize(["chair", "loudspeaker"])
    t = tower
    for row, name in enumerate(["chair", "loudspeaker"]):
        k = len(bank.name_tokens(name))
        assert int(name_len[row]) == k
        assert ids[row, 0] == t.sot_id
        assert (ids[row, 1:4] == t.pad_id).all()  # P = 3 context slots
        assert ids[row, 4:4 + k].tolist() == bank.name_tokens(name)  # class tokens in the middle
        assert (ids[row, 4 + k:4 + k + 2] == t.pad_id).all()  # Q = 2 context slots
        assert int(eot_pos[row]) == 1 + 3 + k + 2 and ids[row, eot_pos[row]] == t.eot_id
        assert valid[row].sum() == 1 + 3 + k + 2 + 1
    # the assembled embeddings carry the learnable context exactly in those slots
    emb = bank.assemble(ids, name_len)  # (2, L, W)
    assert torch.equal(emb[1, 1:4], bank.ctx_prefix) and torch.equal(emb[1, 6:8], bank.ctx_suffix)
    assert torch.equal(emb[1, 4:6], tower.word_embed(ids[1:2, 4:6])[0])


def test_dpt_with_no_deep_prompts_equals_plain_open_clip(tower):
    """n_deep = 0 and context = the words' own embeddings -> identical to encode_text of the plain text."""
    bank = _bank(tower, p=4, q=3)
    bank.init_context_from_text("a photo of a", "in the scene")
    bank.eval()
    texts = [f"a photo of a {n} in the scene" for n in ("chair", "loudspeaker")]
    with torch.no_grad():
        out32 = bank.encode(["chair", "loudspeaker"])
    ref32 = tower.reference_encode(texts)
    assert out32.shape == (2, 512)
    torch.testing.assert_close(out32, ref32, atol=2e-5, rtol=1e-5)  # float32: only summation order differs
    try:  # float64: the port is exact up to round-off
        tower.double(), bank.double()
        with torch.no_grad():
            out64 = bank.encode(["chair", "loudspeaker"])
        ref64 = tower.reference_encode(texts)
        assert (out64 - ref64).abs().max() < 1e-10
    finally:
        tower.float(), bank.float()


def test_only_prompt_parameters_get_gradients(tower):
    bank = _bank(tower, p=2, q=2, n_deep=3)
    bank.train()
    assert not tower.training  # the frozen tower stays in eval mode
    out = bank(["chair", "table", "loudspeaker"])  # (3, 512)
    out.pow(2).sum().backward()
    assert all(p.grad is None for p in tower.parameters())
    names = {n for n, _ in bank.named_parameters() if not n.startswith("tower.")}
    assert {"ctx_prefix", "ctx_suffix", "prompt_embeddings", "deep_prompt_embeddings", "prompt_proj.weight",
            "prompt_norm.weight"} <= names
    for p in bank.prompt_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert bank.deep_prompt_embeddings.shape == (tower.n_layers - 1, 3, 512)


def test_deep_prompts_batched_equals_one_by_one_and_unseen_names(tower):
    bank = _bank(tower, p=2, q=2, n_deep=4)
    bank.eval()
    with torch.no_grad():
        seen = bank(["chair", "airplane", "loudspeaker"])
        naive = encode_naive(bank, ["chair", "airplane", "loudspeaker"])
        unseen = bank.encode(UNSEEN)  # zero-shot: no retraining, just new names
    torch.testing.assert_close(seen, naive, atol=2e-5, rtol=1e-5)
    assert unseen.shape == (4, 512) and torch.isfinite(unseen).all()
    assert torch.cdist(unseen, unseen).triu(1)[torch.ones(4, 4).triu(1).bool()].min() > 0  # distinct priors


def test_minilm_backend_offline_exact_and_deep(minilm_tower):
    bank = _bank(minilm_tower, p=2, q=2)
    bank.init_context_from_text("a photo", "in it")
    bank.eval()
    with torch.no_grad():
        out = bank.encode(["chair", "loudspeaker"])
    ref = minilm_tower.reference_encode(["a photo chair in it", "a photo loudspeaker in it"])
    assert out.shape == (2, 384)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)  # = SentenceTransformer mean pooling

    deep = _bank(minilm_tower, p=2, q=2, n_deep=4, names=["table", "sofa"])
    deep.train()
    prior = deep(["table", "sofa"] + UNSEEN)  # (6, 384)
    assert prior.shape == (6, 384) and torch.isfinite(prior).all()
    prior.sum().backward()
    assert all(p.grad is None for p in minilm_tower.parameters())
    assert all(p.grad is not None for p in deep.prompt_parameters())
    assert isinstance(deep.prompt_norm, torch.nn.Identity)  # post-LN tower: no extra prompt_norm


def test_minilm_knows_words(minilm_tower):
    """The embedded default's tower is pretrained: desk is closer to table than to airplane."""
    bank = _bank(minilm_tower, p=0, q=0)
    bank.eval()
    with torch.no_grad():
        e = torch.nn.functional.normalize(bank.encode(["desk", "table", "airplane"]), dim=-1)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.05


def test_missing_pretrained_file_is_a_config_error(tmp_path):
    from mesc3d.errors import ConfigError

    with pytest.raises(ConfigError, match="no such file"):
        build_tower("open_clip", "ViT-B-16", str(tmp_path / "clip.pt"))
    with pytest.raises(ConfigError, match="text_backend"):
        build_tower("word2vec")
