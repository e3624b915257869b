"""``mesc3d reconstruct``: CAM box, grounding, GrabCut, crop geometry, tiny CLIPSeg/SAM, bad inputs, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mesc3d.cli import main as mesc3d_main
from mesc3d.engine import photo as ph
from mesc3d.engine.reconstruct import mask_iou
from mesc3d.errors import BadInputError
from mesc3d.models import grounding as gr
from conftest import TINY_RUN

CAT_CLASSES = [281, 282, 283, 284, 285]  # tabby, tiger cat, Persian, Siamese, Egyptian cat


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def effnet():
    from mesc3d.models.effnet_lite0 import load_effnet_lite0

    return load_effnet_lite0()


def _write_model(path, prior: str, prior_in_dim: int = 384):
    from mesc3d.config import from_dict, to_dict
    from mesc3d.models.mesc3d import MESC3D

    run = dict(TINY_RUN, model=dict(TINY_RUN["model"], prior_injection=prior))
    cfg = from_dict(run)
    torch.manual_seed(0)
    model = MESC3D(cfg, prior_in_dim=prior_in_dim)
    torch.save({"model": model.state_dict(), "config": to_dict(cfg), "prior_in_dim": prior_in_dim}, path)
    return cfg


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """A model without prior, a model with the prior and its prompts.pt (MiniLM, 3 seen classes)."""
    from mesc3d.config import to_dict
    from mesc3d.models.prompt_stage1 import Stage1Model

    base = tmp_path_factory.mktemp("recon_models")
    _write_model(base / "noprior.pt", "none")
    cfg = _write_model(base / "prior.pt", "concat_after_mit")
    names = ["airplane", "chair", "table"]
    stage1 = Stage1Model(cfg.prompt, names, feat_dim=32).eval()
    with torch.no_grad():
        priors = stage1.priors(names)
    torch.save({"prompt_state": stage1.trainable_state_dict(), "config": to_dict(cfg), "class_names": names,
                "priors": priors, "prior_dim": int(priors.shape[1])}, base / "prompts.pt")
    return {"noprior": base / "noprior.pt", "prior": base / "prior.pt", "prompts": base / "prompts.pt"}


def _disc_image(h=120, w=160, centre=(70, 60), radius=28, seed=0):
    """Grey noisy background with a red disc: (rgb uint8, true mask)."""
    rng = np.random.default_rng(seed)
    rgb = np.clip(rng.normal(170, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    mask = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius ** 2
    rgb[mask] = (200, 30, 30)
    return rgb, mask


def _save(path, rgb):
    Image.fromarray(rgb).save(path)
    return path


# ------------------------------------------------------------------ grounding pieces
def test_contrastive_cam_finds_the_pasted_cat(effnet, one_thread):
    """Real EfficientNet-Lite0 contrastive CAM: chelsea's cat pasted at a known place on a white canvas."""
    from skimage.data import chelsea

    from mesc3d.models import grounding_head as gh

    cat = np.asarray(Image.fromarray(chelsea()).resize((180, 120)))  # (120, 180, 3)
    canvas = np.full((300, 400, 3), 255, np.uint8)
    x0, y0 = 190, 150
    canvas[y0:y0 + 120, x0:x0 + 180] = cat
    _, feats, logits = gh.pyramid(effnet, gh.network_input(canvas))
    cam = gh.contrastive_cam(effnet, feats, logits, CAT_CLASSES, (300, 400))
    assert cam.shape == (300, 400) and 0.0 <= cam.min() and cam.max() == pytest.approx(1.0)
    box = gh.score_box(cam, 0.5)
    assert gr.box_iou(box, (x0, y0, x0 + 180, y0 + 120)) > 0.4, box
    cy, cx = np.unravel_index(np.argmax(cam), cam.shape)
    assert x0 <= cx < x0 + 180 and y0 <= cy < y0 + 120


def test_the_named_dominant_object_is_not_contrasted_away(effnet, one_thread):
    """Text outside the head's classes naming the photo's own main object (scikit-image's coffee photo,
    "cup"): its classes rank among the photo's top 5, so the plain map is used; contrasting against the
    photo's other top classes (espresso, coffee mug ...) would leave only the cup's rim."""
    from skimage.data import coffee

    from mesc3d.engine.ground import DOMINANT_RANK
    from mesc3d.models import grounding_head as gh

    rgb = coffee()  # (400, 600, 3); the cup and its contents fill about x 175-410, y 60-210
    cup_ids = [968, 504]  # ImageNet "cup", "coffee mug"
    _, feats, logits = gh.pyramid(effnet, gh.network_input(rgb))
    assert gh.among_top(logits, cup_ids, DOMINANT_RANK)
    box = gh.score_box(gh.contrastive_cam(effnet, feats, logits, cup_ids, rgb.shape[:2], n_other=0), 0.6)
    assert gr.box_iou(box, (175, 60, 410, 210)) > 0.5, box


def test_text_to_classes_threshold():
    table = torch.nn.functional.normalize(torch.eye(4, 8) + 0.01, dim=1)  # (4, 8)
    ids, cos = gr.text_to_classes(table[2], table, k=2, min_similarity=0.9)
    assert ids == [2] and cos[0] == pytest.approx(1.0)
    assert gr.text_to_classes(torch.nn.functional.normalize(torch.ones(8), dim=0) * -1, table)[0] == []
    with pytest.raises(ValueError, match="name_table"):
        gr.text_to_classes(torch.ones(3), table)


def test_grabcut_refines_box_to_object():
    rgb, true = _disc_image()
    mask = gr.grabcut_mask(rgb, (30, 20, 110, 100))
    assert mask.shape == true.shape and mask_iou(mask, true) > 0.9
    # a box covering the whole photo still leaves GrabCut a background margin
    assert mask_iou(gr.grabcut_mask(rgb, (0, 0, 160, 120)), true) > 0.8
    # degenerate box -> the filled box, never an exception
    assert gr.grabcut_mask(rgb, (5, 5, 6, 6)).sum() == 1


def test_crop_geometry_matches_training_fill():
    rgb = np.zeros((200, 300, 3), np.uint8)
    mask = np.zeros((200, 300), bool)
    mask[50:90, 100:180] = True  # 80 wide, 40 high
    crop = ph.object_crop(rgb, mask, fill=0.67, size=120)
    assert crop.shape == (120, 120, 3)
    obj = crop.min(axis=2) < 128  # dark object on white
    ys, xs = np.nonzero(obj)
    width = xs.max() - xs.min() + 1
    assert abs(width / 120 - 0.67) < 0.03
    assert abs((xs.min() + xs.max()) / 2 - 59.5) <= 1.5 and abs((ys.min() + ys.max()) / 2 - 59.5) <= 1.5
    assert (crop[0, 0] == 255).all()  # background and padding are white
    left, top, side = ph.crop_window((100, 50, 180, 90), 0.5)
    assert side == 160 and (left, top) == (60, -10)


def _tiny_sam_folder(tmp_path):
    """A tiny random SAM written with save_pretrained (what a real local SAM folder looks like)."""
    from transformers import SamConfig, SamModel
    from transformers.models.sam.configuration_sam import (SamMaskDecoderConfig, SamPromptEncoderConfig,
                                                           SamVisionConfig)

    torch.manual_seed(0)
    sam = SamModel(SamConfig(
        vision_config=SamVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=64,
                                      patch_size=16, output_channels=16, mlp_dim=64, global_attn_indexes=[1],
                                      window_size=2, num_pos_feats=8),
        prompt_encoder_config=SamPromptEncoderConfig(hidden_size=16, image_size=64, patch_size=16,
                                                     mask_input_channels=4),
        mask_decoder_config=SamMaskDecoderConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                                 mlp_dim=32, iou_head_hidden_dim=16)))
    sam.save_pretrained(tmp_path / "sam")
    return tmp_path / "sam"


def test_tiny_clipseg_and_sam_paths(tmp_path):
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation

    from mesc3d.engine.reconstruct import load_clipseg, load_sam

    torch.manual_seed(0)
    cs = CLIPSegForImageSegmentation(CLIPSegConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2,
                         vocab_size=100, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2,
                           image_size=64, patch_size=16),
        projection_dim=16, reduce_dim=16, extract_layers=[1], decoder_num_attention_heads=2,
        decoder_intermediate_size=32))
    rgb, _ = _disc_image()
    masker = gr.ClipSegMasker(cs, lambda text: [0] + [3 + ord(c) % 90 for c in text] + [1])
    prob = masker.probability(rgb, "red disc")
    assert prob.shape == (120, 160) and np.isfinite(prob).all() and masker(rgb, "red disc").dtype == bool

    loaded = load_sam(_tiny_sam_folder(tmp_path))  # from_pretrained(DIR, local_files_only=True)
    mask = loaded(rgb, (30, 20, 110, 100))
    assert mask.shape == (120, 160) and mask.dtype == bool
    with pytest.raises(BadInputError, match="CLIPSeg folder does not exist"):
        load_clipseg(tmp_path / "nope")


# ------------------------------------------------------------------ photo modes
def test_photo_modes_are_normalised(tmp_path):
    rgb, _ = _disc_image()
    g16 = (np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 50)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    out, notes = ph.load_photo(tmp_path / "g16.png")
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    assert out[-1, -1, 0] == round(g16[-1, -1] / 65535 * 255) and "scaled" in notes[0]

    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    out, notes = ph.load_photo(tmp_path / "cmyk.jpg")
    assert out.shape == (120, 160, 3) and "CMYK" in notes[0]
    assert np.abs(out.astype(int)[60, 70] - [200, 30, 30]).max() < 40

    Image.fromarray(rgb).quantize(16).save(tmp_path / "pal.png")
    out, notes = ph.load_photo(tmp_path / "pal.png")
    assert out.shape == (120, 160, 3) and "palette" in notes[0]

    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    im.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    out, notes = ph.load_photo(tmp_path / "rot.jpg")
    assert out.shape == (160, 120, 3) and "EXIF orientation 6" in notes[0]


def _cli(capsys, argv):
    rc = mesc3d_main(["reconstruct", *argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("kind", ["non_image", "one_pixel", "wrong_mask", "wrong_model", "bad_box"])
def test_bad_inputs_one_line_no_outputs(kind, tmp_path, capsys, model_files):
    rgb, _ = _disc_image()
    photo = _save(tmp_path / "photo.png", rgb)
    argv = ["--text", "disc", "--model", str(model_files["noprior"]), "--out", str(tmp_path / "out")]
    if kind == "non_image":
        photo = tmp_path / "notes.png"
        photo.write_text("this is not an image\n")
        expect = "not a readable image"
    elif kind == "one_pixel":
        photo = _save(tmp_path / "tiny.png", np.zeros((1, 1, 3), np.uint8))
        expect = "1x1 pixels"
    elif kind == "wrong_mask":
        _save(tmp_path / "mask.png", np.full((10, 10, 3), 255, np.uint8))
        argv += ["--mask", str(tmp_path / "mask.png")]
        expect = "mask is 10x10 but the photo is 160x120"
    elif kind == "wrong_model":
        argv[argv.index("--model") + 1] = str(model_files["prompts"])
        argv += ["--box", "30,20,110,100"]
        expect = "not a trained model file"
    else:
        argv += ["--box", "30,20,500,100"]
        expect = "--box"
    rc, out, err = _cli(capsys, [str(photo), *argv])
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert rc == 1 and len(lines) == 1 and expect in lines[0], err
    assert not (tmp_path / "out").exists()


def test_end_to_end_sam_box_and_prior_paths(tmp_path, capsys, model_files, monkeypatch):
    """--box + --segmenter sam (tiny SAM folder) on the prior model; unseen text uses the prompt encoder."""
    sam_dir = _tiny_sam_folder(tmp_path)
    rgb, _ = _disc_image()
    photo = _save(tmp_path / "p.png", rgb)
    rc, out, err = _cli(capsys, [str(photo), "--text", "bookcase", "--model", str(model_files["prior"]),
                                 "--prompts", str(model_files["prompts"]), "--box", "30,20,110,100",
                                 "--segmenter", "sam", "--sam-dir", str(sam_dir), "--out", str(tmp_path / "o")])
    assert rc == 0, err
    rec = json.loads(out.strip().splitlines()[-1])
    assert rec["box_source"] == "given" and rec["prior"] == "encoded" and rec["class"] == "bookcase"
    assert (tmp_path / "o" / "p.ply").read_text().startswith("ply\n")
    assert Image.open(tmp_path / "o" / "p.preview.png").size[0] > 300
    assert (tmp_path / "o" / "reconstruct.jsonl").is_file()


def test_end_to_end_text_grounding_and_no_match(tmp_path, capsys, model_files, monkeypatch, caplog):
    """Default path (text -> ImageNet classes -> CAM box -> GrabCut) and the centre-box fallback."""
    monkeypatch.setenv("MESC3D_CACHE", str(tmp_path / "cache"))
    from mesc3d.categories import ALL_NAMES
    from mesc3d.engine.grounding_train import save_head
    from mesc3d.engine.reconstruct import Reconstructor
    from mesc3d.models.grounding_head import GroundingHead

    torch.manual_seed(0)
    save_head(GroundingHead(list(ALL_NAMES)), tmp_path / "head.pt")  # untrained: "cat" is not a vocabulary class
    rec = Reconstructor(model_files["prior"], model_files["prompts"], grounding_head=tmp_path / "head.pt")
    assert (tmp_path / "cache" / "imagenet_minilm_v1.npy").is_file()
    from skimage.data import chelsea

    cat = chelsea()
    res = rec.run(cat, "cat")
    assert res.box_source == "cam" and res.mask.any() and res.points.shape == (96, 3)
    assert res.prior == "encoded" and res.crop.shape == (32, 32, 3)
    assert rec.prior_for("chair")[1] == "table"
    with caplog.at_level("WARNING"):
        res = rec.run(cat, "xqzvw")
    assert res.box_source == "centre" and "matches no ImageNet class" in caplog.text
