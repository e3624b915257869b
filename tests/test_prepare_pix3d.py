"""``data.source: pix3d``: train/val/test from the Pix3D layout with the BDM split."""

import numpy as np
import yaml

from mesc3d.cli.prepare import main as prepare_main
from mesc3d.data.dataset import ReconDataset
from mesc3d.config import load_config
from mesc3d.io import load_npz


def test_pix3d_source_uses_the_bdm_split(tiny_data, tmp_path):
    run = yaml.safe_load(tiny_data["config"].read_text())
    run["data"].update(source="pix3d", categories=["bed", "bookcase"], unseen_categories=["desk", "tool"])
    cfg_path = tmp_path / "pix3d.yaml"
    cfg_path.write_text(yaml.safe_dump(run))
    out = tmp_path / "prepared"
    assert prepare_main(["--config", str(cfg_path), "--out", str(out)]) == 0
    splits = {k: load_npz(out / f"{k}.npz") for k in ("train", "val", "test", "zeroshot")}
    assert all(str(v["source"]) == "pix3d" for v in splits.values())
    for cat in ("bed", "bookcase"):
        n = {k: int((splits[k]["categories"] == cat).sum()) for k in ("train", "val", "test")}
        total = sum(n.values())
        assert total > 0 and n["train"] + n["val"] == int(np.floor(total * 0.8 + 1e-9))  # first 80% in json order
    assert set(splits["zeroshot"]["categories"]) == {"desk", "tool"}
    seen_imgs = set(splits["train"]["images"].ravel()) | set(splits["test"]["images"].ravel())
    assert not seen_imgs & set(splits["zeroshot"]["images"].ravel())  # (stems repeat across classes)
    ds = ReconDataset(out / "test.npz", load_config(cfg_path).data, ["bed", "bookcase"], train=False)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["points"].shape == (256, 3)
