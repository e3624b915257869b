"""Frozen 2D teachers and the agglomerated image encoder: real EfficientNet-Lite0 ImageNet weights,
token shapes, the uncertainty-fusion formula, where gradients go, tiny DINOv2/CLIP, refusal without weights."""

from __future__ import annotations

import pytest
import torch

from mesc3d.errors import BadInputError
from mesc3d.models.effnet_lite0 import (EFFNET_INPUT_SIZE, effnet_preprocess, imagenet_class_names,
                                        load_effnet_lite0)

CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat", "cougar", "lynx"}


@pytest.fixture(scope="module")
def effnet():
    return load_effnet_lite0()


def _chelsea() -> torch.Tensor:
    from skimage.data import chelsea  # a real photo of a cat, shipped inside the scikit-image wheel

    return torch.from_numpy(chelsea()).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, 300, 451)


def _top5(model, x) -> list[str]:
    names = imagenet_class_names()
    with torch.no_grad():
        logits = model(effnet_preprocess(x))  # (1, 1000)
    return [names[i] for i in logits[0].topk(5).indices.tolist()]


def test_effnet_lite0_packaged_weights_are_real(effnet, one_thread):
    x = _chelsea()
    top5 = _top5(effnet, x)
    assert CAT_CLASSES & set(top5[:1]), top5  # the top-1 class is a cat
    assert len(imagenet_class_names()) == 1000
    assert not effnet.training
    with torch.no_grad():
        feats = effnet.forward_features(effnet_preprocess(x))
    assert feats.shape == (1, 1280, 7, 7)
    assert tuple(effnet.classifier.weight.shape) == (1000, 1280)
    # the same architecture with random weights does not see a cat
    import timm

    torch.manual_seed(0)
    rand = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    assert not CAT_CLASSES & set(_top5(rand, x))


def test_effnet_preprocess_range_and_size():
    x = torch.rand(2, 3, 32, 48)
    y = effnet_preprocess(x)
    assert y.shape == (2, 3, EFFNET_INPUT_SIZE, EFFNET_INPUT_SIZE)
    assert float(y.min()) >= -1.0 - 1e-5 and float(y.max()) <= 1.0 + 1e-5
    z = effnet_preprocess(torch.ones(1, 3, EFFNET_INPUT_SIZE, EFFNET_INPUT_SIZE))
    assert torch.allclose(z, torch.ones_like(z))  # white -> +1
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        effnet_preprocess(torch.zeros(3, 8, 8))


def test_effnet_weights_errors(tmp_path):
    with pytest.raises(BadInputError, match="not found"):
        load_effnet_lite0(str(tmp_path / "absent.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"_conv_stem.weight": torch.zeros(1)}, bad)
    with pytest.raises(BadInputError, match="not an EfficientNet-Lite0"):
        load_effnet_lite0(str(bad))
