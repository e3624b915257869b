"""``mesc3d contact-sheet``: a labelled PNG grid showing the benchmark at a glance.

Usage::

    mesc3d contact-sheet (--root R | --config RUN.yaml [--set k=v ...]) --out sheet.png
                         [--per-class N] [--view V] [--categories ...] [--unseen-categories ...]

Inputs: the data root R (ShapeNet layout for the seen classes, ``pix3d/`` for the unseen ones);
with ``--config`` R and the class lists come from ``data.root`` / ``data.categories`` /
``data.unseen_categories`` (a source that renders its data, ``meshes``: R = ``<data.prepared>/renders``).
Without them the seen classes are those R's renders hold: ShapeNet-13 (by synset) in table order,
then any other folder (a class name: the ``meshes`` renders), sorted.  Output: one PNG (matplotlib, Agg), N tiles per class: the first N
models (sorted ids) at render ``V`` composited on white for the seen classes, and the first N Pix3D
photos (bbox square crop) for the unseen ones.  Classes without data are skipped with a log line.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path


from mesc3d.categories import SEEN, SYNSET_TO_NAME, UNSEEN
from mesc3d.cli._common import setup_logging
from mesc3d.data import images as im
from mesc3d.data import pix3d, shapenet
from mesc3d.errors import BadInputError
from mesc3d.io import atomic_path

log = logging.getLogger("mesc3d.contact_sheet")


def collect_tiles(root: Path, seen: list[str], unseen: list[str], per_class: int, view: int) -> list[tuple]:
    """[(label, uint8 (H, W, 3)), ...]: seen classes first, then unseen."""
    tiles = []
    for cat in seen:
        try:
            ids = shapenet.list_models(root, cat, SEEN.get(cat, cat))[:per_class]
        except BadInputError as err:
            log.info("skipping %s: %s", cat, err)
            continue
        for mid in ids:
            rgba = im.load_rgba(root / shapenet.view_relpath(SEEN.get(cat, cat), mid, view))
            tiles.append((f"{cat}", im.composite_white(rgba)))
    if unseen and pix3d.json_path(root).is_file():
        records = pix3d.read_records(root)
        for cat in unseen:
            recs = pix3d.select(records, [cat])[:per_class]
            if not recs:
                log.info("skipping %s: no Pix3D record", cat)
            for rec in recs:
                rgb = im.load_rgb(root / pix3d.PIX3D_DIR / rec["img"])
                tiles.append((f"{cat} (unseen)", im.resize(im.square_crop(rgb, rec["bbox"]), 137)))
    return tiles


def root_classes(root: Path) -> list[str]:
    """Seen classes whose renders ``root`` holds: ShapeNet-13 in table order, then other folders sorted;
    all 13 when the root has no render folder (each is then skipped with a log line)."""
    folder = root / shapenet.RENDER_DIR
    if not folder.is_dir():
        return list(SEEN)
    names = {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}
    return [c for c, syn in SEEN.items() if syn in names] + sorted(names - set(SYNSET_TO_NAME))


def draw_sheet(tiles: list[tuple], out: str | Path, ncols: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not tiles:
        raise BadInputError(out, "nothing to draw: no class has data under the root")
    nrows = math.ceil(len(tiles) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.8 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (label, img) in zip(axes.ravel(), tiles):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(label, fontsize=8, color="firebrick" if "unseen" in label else "black")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png", metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mesc3d contact-sheet", description=__doc__.split("\n")[0])
    p.add_argument("--root", default=None, help="data root (else data.root of --config)")
    p.add_argument("--config", default=None, help="run YAML (data.root and class lists)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--per-class", type=int, default=1)
    p.add_argument("--view", type=int, default=0)
    p.add_argument("--categories", nargs="+", default=None)
    p.add_argument("--unseen-categories", nargs="*", default=None)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    seen, unseen, root = None, list(UNSEEN), args.root
    if args.config or args.set:
        from mesc3d.config import load_config
        from mesc3d.registries import DATA_SOURCES

        cfg = load_config(args.config, args.set)
        seen, unseen = list(cfg.data.categories), list(cfg.data.unseen_categories)
        if not DATA_SOURCES[cfg.data.source].pix3d_photos:  # renders of its own (mesc3d.data.meshes)
            root = root or str(Path(cfg.data.prepared) / "renders")
        root = root or cfg.data.root
    if root is None:
        p.error("give --root or --config")
    seen = args.categories or seen or root_classes(Path(root))
    unseen = unseen if args.unseen_categories is None else args.unseen_categories
    tiles = collect_tiles(Path(root), seen, unseen, args.per_class, args.view)
    draw_sheet(tiles, args.out, ncols=args.per_class if args.per_class > 1 else 6)
    log.info("contact sheet with %d tiles -> %s", len(tiles), args.out)
    return 0
