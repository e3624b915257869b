"""The class vocabulary: 13 ShapeNet (3D-R2N2) classes and the 4 Pix3D zero-shot classes.

Order matters: tables list classes in ``SEEN`` order, class ids index into it, and the paper's
label map (keyed by int(synset)) gives exactly these names.
"""

from __future__ import annotations

from mesc3d.errors import ConfigError

# name -> ShapeNetCore v1 synset id (docs/design.md)
SEEN: dict[str, str] = {
    "airplane": "02691156",
    "bench": "02828884",
    "cabinet": "02933112",
    "car": "02958343",
    "chair": "03001627",
    "display": "03211117",
    "lamp": "03636649",
    "loudspeaker": "03691459",
    "rifle": "04090263",
    "sofa": "04256520",
    "table": "04379243",
    "telephone": "04401088",
    "vessel": "04530566",
}

# Pix3D categories absent from the 13 ShapeNet classes (docs/design.md, zero-shot)
UNSEEN: tuple[str, ...] = ("bed", "bookcase", "desk", "tool")

# Every Pix3D category (for reading real pix3d.json files)
PIX3D_ALL: tuple[str, ...] = ("bed", "bookcase", "chair", "desk", "misc", "sofa", "table", "tool", "wardrobe")

# The seen class each unseen one resembles (used by the generator and documented in the README)
UNSEEN_RELATIVE: dict[str, str] = {"desk": "table", "bed": "sofa", "bookcase": "cabinet", "tool": "rifle"}

SYNSET_TO_NAME: dict[str, str] = {v: k for k, v in SEEN.items()}
ALL_NAMES: tuple[str, ...] = tuple(SEEN) + UNSEEN


def check_categories(names, allowed=ALL_NAMES, where: str = "config") -> list[str]:
    """Return ``names`` as a list, or raise ``ConfigError`` naming the unknown ones."""
    names = list(names)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown categories {unknown}; known: {list(allowed)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: duplicate categories in {names}")
    return names


def synset_of(name: str) -> str:
    if name not in SEEN:
        raise ConfigError(f"category {name!r} has no ShapeNet synset; known: {list(SEEN)}")
    return SEEN[name]
