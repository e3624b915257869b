"""``mesc3d reconstruct``: segment the named object in a photo and write its point cloud.

    mesc3d reconstruct PHOTO|FOLDER --text chair --model results/train/mesc3d/model.pt \
        --prompts results/pretrain/default/prompts.pt --out OUT [--box x0,y0,x1,y1 | --mask M.png]
        [--segmenter grabcut|sam|clipseg] [--sam-dir DIR] [--clipseg-dir DIR] [--fill 0.67]
    mesc3d reconstruct --pix3d-root R --categories bed desk ... --model ... --prompts ... \
        --table results/tables/reconstruct_masks --sheet results/figures/reconstruct_unseen.png

Photo mode, per photo NAME: ``OUT/NAME.ply`` (xyz), ``OUT/NAME.preview.png`` (photo + box, mask, the
crop the model saw, three cloud views) and one JSON line on stdout (also in ``OUT/reconstruct.jsonl``)
with the box, mask area, chosen class, prior kind and timings.  Masks: the grounding box (the
grounding head's map of the text's class fused with the contrastive CAM of its ImageNet classes,
EfficientNet-Lite0; ``mesc3d.engine.ground``) -> GrabCut by default; SAM / CLIPSeg from local folders.
``--train-grounding-head OUT`` trains the grounding head (the DAG rule ``grounding_head``).
Pix3D mode (the DAG rule ``reconstruct_unseen``): every record of the given classes, text = its
category; writes the mask IoU against the true masks (``TABLE.csv``/``TABLE.md``: category, n,
mean IoU, plus ``mean``) and a contact sheet.  All inputs are validated before any output is written.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from mesc3d.cli._common import setup_logging
from mesc3d.errors import UserFacingError, quote

MAX_TEXT_WORDS, MAX_TEXT_CHARS = 16, 120  # --text names an object ("office chair"), not a paragraph

log = logging.getLogger("mesc3d.reconstruct")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mesc3d reconstruct", description=__doc__.splitlines()[0])
    p.add_argument("photo", nargs="?", help="a photo or a folder of photos")
    p.add_argument("--text", help="the object to segment (also picks the class prior)")
    p.add_argument("--model", default=None, help="model.pt from mesc3d train")
    p.add_argument("--prompts", default=None, help="prompts.pt (3DSPL priors), if the model uses them")
    p.add_argument("--out", help="output folder (photo mode)")
    p.add_argument("--box", default=None, help="override the box: x0,y0,x1,y1 in pixels")
    p.add_argument("--mask", default=None, help="override the mask: a PNG of the photo's size")
    p.add_argument("--segmenter", default="grabcut", choices=["grabcut", "sam", "clipseg"])
    p.add_argument("--sam-dir", default=None, help="local SAM folder (transformers from_pretrained)")
    p.add_argument("--clipseg-dir", default=None, help="local CLIPSeg folder (transformers from_pretrained)")
    p.add_argument("--grounding-head", default=None,
                   help="grounding head file (mesc3d reconstruct --train-grounding-head); default: the one "
                        "cached in $MESC3D_CACHE, trained on first use")
    p.add_argument("--train-grounding-head", default=None, metavar="OUT",
                   help="train the grounding head on renders over real photos, write it to OUT and stop")
    p.add_argument("--fill", type=float, default=None, help="object's share of the crop side (default 0.67)")
    p.add_argument("--pix3d-root", default=None, help="Pix3D-layout data root (DAG mode)")
    p.add_argument("--categories", nargs="+", default=None, help="Pix3D classes to reconstruct (DAG mode)")
    p.add_argument("--table", default=None, help="mask-IoU table path without suffix (DAG mode)")
    p.add_argument("--sheet", default=None, help="contact sheet PNG (DAG mode)")
    p.add_argument("--max-per-class", type=int, default=0, help="DAG mode: at most this many photos per class")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _check_args(args) -> None:
    if args.train_grounding_head:
        return
    if not args.model:
        raise UserFacingError("--model is required (model.pt from mesc3d train)")
    if args.pix3d_root:
        if not (args.table and args.sheet and args.categories):
            raise UserFacingError("--pix3d-root needs --categories, --table and --sheet")
        return
    if not args.photo or not args.text or not args.out:
        raise UserFacingError("give PHOTO, --text and --out (or --pix3d-root for the Pix3D mode)")
    if not args.text.strip():
        raise UserFacingError("--text is empty")
    if len(args.text) > MAX_TEXT_CHARS or len(args.text.split()) > MAX_TEXT_WORDS:
        raise UserFacingError(f"--text has {len(args.text.split())} words / {len(args.text)} characters: name the "
                              f"object in at most {MAX_TEXT_WORDS} words and {MAX_TEXT_CHARS} characters "
                              f"(e.g. 'office chair'), got {quote(args.text, 60)}")
    check_out_dir(Path(args.out))
    if args.fill is not None and not 0 < args.fill <= 1:
        raise UserFacingError(f"--fill {args.fill}: must be in (0, 1]")


def check_out_dir(out: Path) -> None:
    """``--out`` must be (or be creatable as) a writable folder: checked before anything loads."""
    if out.exists() and not out.is_dir():
        raise UserFacingError(f"--out {out}: is a file, not a folder")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserFacingError(f"--out {out}: {parent} is a file, so no folder can be made under it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserFacingError(f"--out {out}: {parent} is not writable")


def output_names(photos: list[Path]) -> list[str]:
    """Output stem per photo: its stem, or stem_suffix where two photos share a stem (x.png, x.jpg)."""
    stems = [p.stem for p in photos]
    return [f"{p.stem}_{p.suffix.lstrip('.').lower()}" if stems.count(p.stem) > 1 else p.stem for p in photos]


def run_photos(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from mesc3d.engine.photo import MAX_SIDE, TRAIN_FILL, list_photos, load_override_mask, load_photo, parse_box
    from mesc3d.engine.reconstruct import Reconstructor
    from mesc3d.io import write_ply, write_text
    from mesc3d.viz import plot_reconstructions, save_figure

    photos = list_photos(args.photo)
    if (args.box or args.mask) and len(photos) > 1:
        raise UserFacingError("--box / --mask apply to one photo, not a folder")
    if args.box and args.mask:
        raise UserFacingError("give --box or --mask, not both")
    loaded = []
    for path in photos:  # validate every input before any work
        rgb, notes = load_photo(path, max_side=None if (args.box or args.mask) else MAX_SIDE)
        for note in notes:
            log.info("%s: %s", path, note)
        h, w = rgb.shape[:2]
        box = parse_box(args.box, w, h) if args.box else None
        mask = load_override_mask(args.mask, (h, w)) if args.mask else None
        loaded.append((path, rgb, box, mask))
    rec = Reconstructor(args.model, args.prompts, args.segmenter, args.clipseg_dir, args.sam_dir,
                        fill=args.fill or TRAIN_FILL, need_text_grounding=not (args.box or args.mask),
                        grounding_head=args.grounding_head)
    out = Path(args.out)
    lines = []
    names = output_names([p for p, *_ in loaded])
    for (path, rgb, box, mask), name in tqdm(list(zip(loaded, names)), desc="reconstruct", unit="photo",
                                             disable=None):
        res = rec.run(rgb, args.text, box=box, mask=mask)
        write_ply(out / f"{name}.ply", res.points)
        save_figure(plot_reconstructions([(rgb, res.mask, res.box, res.crop, res.points, f"{name}: {args.text}")]),
                    out / f"{name}.preview.png")
        line = json.dumps({"photo": str(path), "ply": str(out / f"{name}.ply"), "box": list(res.box),
                           "box_source": res.box_source, "mask_area": int(np.count_nonzero(res.mask)),
                           "mask_fraction": round(float(res.mask.mean()), 4), "class": res.category,
                           "prior": res.prior, "imagenet": res.imagenet, "timings": res.timings})
        print(line, flush=True)
        lines.append(line)
    write_text(out / "reconstruct.jsonl", "\n".join(lines) + "\n")
    return 0


def run_pix3d(args) -> int:
    import numpy as np
    import pandas as pd
    from tqdm import tqdm

    from mesc3d.data import images as im
    from mesc3d.data import pix3d
    from mesc3d.engine.photo import TRAIN_FILL, load_photo
    from mesc3d.engine.reconstruct import Reconstructor, mask_iou
    from mesc3d.io import write_csv, write_text
    from mesc3d.viz import plot_reconstructions, save_figure

    root = Path(args.pix3d_root)
    records = pix3d.select(pix3d.read_records(root), args.categories)
    if args.max_per_class > 0:
        counts: dict[str, int] = {}
        records = [r for r in records if counts.setdefault(r["category"], 0) < args.max_per_class
                   and not counts.__setitem__(r["category"], counts[r["category"]] + 1)]
    if not records:
        raise UserFacingError(f"{pix3d.json_path(root)}: no records of {args.categories}")
    for r in records:
        pix3d.check_record_files(root, r)
    rec = Reconstructor(args.model, args.prompts, args.segmenter, args.clipseg_dir, args.sam_dir,
                        fill=args.fill or TRAIN_FILL, grounding_head=args.grounding_head)
    rows, sheet, shown = [], [], set()
    for r in tqdm(records, desc="reconstruct pix3d", unit="photo", disable=None):
        rgb, _ = load_photo(root / pix3d.PIX3D_DIR / r["img"])
        true = im.load_mask(root / pix3d.PIX3D_DIR / r["mask"])
        res = rec.run(rgb, r["category"])
        rows.append({"category": r["category"], "img": r["img"], "iou": mask_iou(res.mask, true),
                     "box_source": res.box_source, "seconds": res.timings["total_s"]})
        if r["category"] not in shown:
            shown.add(r["category"])
            sheet.append((rgb, res.mask, res.box, res.crop, res.points, f"{r['category']} {Path(r['img']).stem}"))
    df = pd.DataFrame(rows)
    per = df.groupby("category", sort=False).agg(n=("iou", "size"), mean_iou=("iou", "mean")).reset_index()
    per = pd.concat([per, pd.DataFrame([{"category": "mean", "n": len(df), "mean_iou": df["iou"].mean()}])],
                    ignore_index=True)
    per["mean_iou"] = per["mean_iou"].round(4)
    md = ["| category | n | mean mask IoU |", "|---|---:|---:|"]
    md += [f"| {c} | {n} | {v:.3f} |" for c, n, v in per[["category", "n", "mean_iou"]].itertuples(index=False)]
    write_csv(f"{args.table}.csv", per)
    write_text(f"{args.table}.md", "Mask IoU of `mesc3d reconstruct` (grounding box -> GrabCut) against the true "
               "masks\n\n" + "\n".join(md) + "\n")
    save_figure(plot_reconstructions(sheet), args.sheet)
    log.info("mask IoU (mean over %d photos) %.3f; %.2f s/photo\n%s", len(df), df["iou"].mean(),
             df["seconds"].mean(), per.to_string(index=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    _check_args(args)
    import torch

    if args.train_grounding_head:
        return train_grounding_head(args.train_grounding_head)
    with torch.no_grad():  # inference only; scoped, so an in-process caller keeps its grad mode
        return run_pix3d(args) if args.pix3d_root else run_photos(args)


def train_grounding_head(out) -> int:
    from mesc3d.engine.grounding_train import train_and_save

    train_and_save(out)
    log.info("wrote the grounding head to %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
