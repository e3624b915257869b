"""Parametric families for the 5 furniture classes of ShapeNet-13: bench, cabinet, chair, sofa, table.

Same contract as ``shapes_seen``: builder(rng) -> list of ``Part`` in the ShapeNet v1 frame.  A chair
has four (possibly splayed, round or square) legs or a pedestal with a star base, arms or not, a
solid, slatted or framed back at some tilt; tables are rectangular, square or round on four legs,
a pedestal or trestles; benches, cabinets and sofas vary legs, backs, doors/drawers and cushions.
"""

from __future__ import annotations

import numpy as np

from mesc3d.data.primitives import ACCENT, DARK, PRIMARY, Part, bar, box, cylinder, frustum, rot


def bench(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    W, D, H, t = u(1.0, 1.8), u(0.3, 0.45), u(0.38, 0.5), u(0.03, 0.08)
    leg_role = ACCENT if rng.random() < 0.5 else PRIMARY
    parts = [box((W, t, D), (0, H, 0))]
    kind = rng.choice(["four", "panel", "trestle"])
    if kind == "four":
        s = u(0.03, 0.06)
        for x in (-W / 2 + 0.08, W / 2 - 0.08):
            for z in (-D / 2 + 0.05, D / 2 - 0.05):
                parts.append(box((s, H, s), (x, H / 2, z), leg_role))
    else:
        for x in (-W / 2 + 0.1, W / 2 - 0.1):
            parts.append(box((0.05, H, D * (0.9 if kind == "panel" else 0.3)), (x, H / 2, 0), leg_role))
            if kind == "trestle":
                parts.append(box((0.06, 0.05, D * 0.95), (x, 0.025, 0), leg_role))
        if kind == "trestle":
            parts.append(box((W - 0.2, 0.04, 0.04), (0, H * 0.35, 0), leg_role))
    if rng.random() < 0.6:  # backrest
        hb = u(0.25, 0.45)
        n_slats = int(rng.integers(1, 5))
        zb = -D / 2 + 0.03
        for x in (-W / 2 + 0.08, W / 2 - 0.08):
            parts.append(box((0.04, hb, 0.04), (x, H + hb / 2, zb)))
        for k in range(n_slats):
            hs = hb / (n_slats * 1.6)
            parts.append(box((W - 0.1, hs, 0.025), (0, H + hb - hs / 2 - k * hb / n_slats, zb)))
        if rng.random() < 0.5:  # armrests
            for x in (-W / 2 + 0.04, W / 2 - 0.04):
                parts.append(box((0.05, 0.04, D), (x, H + 0.22, 0)))
                parts.append(box((0.04, 0.22, 0.04), (x, H + 0.11, D / 2 - 0.04)))
    return parts


def cabinet(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    W, H, D = u(0.5, 1.3), u(0.5, 1.6), u(0.35, 0.6)
    base = rng.choice(["plinth", "legs", "none"])
    y0 = {"plinth": 0.06, "legs": u(0.08, 0.2), "none": 0.0}[base]
    parts = [box((W, H, D), (0, y0 + H / 2, 0))]
    if base == "plinth":
        parts.append(box((W * 0.94, y0, D * 0.9), (0, y0 / 2, 0), DARK))
    elif base == "legs":
        for x in (-W / 2 + 0.04, W / 2 - 0.04):
            for z in (-D / 2 + 0.04, D / 2 - 0.04):
                parts.append(cylinder(0.02, y0, (x, y0 / 2, z), sections=8, role=DARK))
    if rng.random() < 0.5:  # overhanging top
        parts.append(box((W + 0.05, 0.04, D + 0.04), (0, y0 + H + 0.02, 0.01)))
    fz = D / 2 + 0.01
    if rng.random() < 0.5:  # doors side by side
        n = int(rng.integers(1, 4))
        dw = (W - 0.04) / n
        for k in range(n):
            x = -W / 2 + 0.02 + dw * (k + 0.5)
            parts.append(box((dw - 0.02, H - 0.06, 0.02), (x, y0 + H / 2, fz), ACCENT))
            hx = x + (dw / 2 - 0.06) * (1 if k % 2 else -1)  # handle near the opening edge
            parts.append(box((0.02, 0.12, 0.03), (hx, y0 + H / 2, fz + 0.02), DARK))
    else:  # drawers stacked
        n = int(rng.integers(2, 6))
        dh = (H - 0.04) / n
        for k in range(n):
            y = y0 + 0.02 + dh * (k + 0.5)
            parts.append(box((W - 0.06, dh - 0.02, 0.02), (0, y, fz), ACCENT))
            parts.append(box((min(0.2, W / 3), 0.025, 0.03), (0, y, fz + 0.02), DARK))
    return parts


def chair(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    w, d, h, t = u(0.4, 0.58), u(0.4, 0.55), u(0.4, 0.5), u(0.04, 0.1)
    parts = [box((w, t, d), (0, h, 0))]
    hb = u(0.3, 0.6)
    tilt = np.radians(u(0, 15))
    zb = -d / 2 + 0.02
    back_kind = rng.choice(["solid", "slats", "frame"])
    back: list[Part] = []
    if back_kind == "solid":
        back.append(box((w, hb, 0.04), (0, h + t / 2 + hb / 2, zb)))
    else:
        for x in (-w / 2 + 0.025, w / 2 - 0.025):
            back.append(box((0.04, hb, 0.04), (x, h + t / 2 + hb / 2, zb)))
        back.append(box((w, 0.06, 0.04), (0, h + t / 2 + hb - 0.03, zb)))
        if back_kind == "slats":
            n = int(rng.integers(2, 6))
            for k in range(n):
                x = -w / 2 + w * (k + 1) / (n + 1)
                back.append(box((0.025, hb - 0.06, 0.025), (x, h + t / 2 + (hb - 0.06) / 2, zb)))
        else:
            back.append(box((w, 0.05, 0.035), (0, h + t / 2 + hb * 0.45, zb)))
    parts += [p.rotated(rot("x", -tilt), about=(0, h, zb)) for p in back]
    leg_role = ACCENT if rng.random() < 0.5 else PRIMARY
    if rng.random() < 0.65:  # four legs
        s = u(0.025, 0.05)
        splay = u(0.0, 0.05)
        round_legs = rng.random() < 0.4
        for sx in (-1, 1):
            for sz in (-1, 1):
                top = (sx * (w / 2 - s), h - t / 2, sz * (d / 2 - s))
                foot = (sx * (w / 2 - s + splay), 0.0, sz * (d / 2 - s + splay))
                parts.append(bar(top, foot, s, leg_role, sections=8 if round_legs else 4))
        if rng.random() < 0.4:  # stretchers
            for sx in (-1, 1):
                parts.append(box((0.02, 0.02, d - 2 * s), (sx * (w / 2 - s), h * 0.3, 0), leg_role))
    else:  # pedestal with a star base
        parts.append(cylinder(0.03, h - t / 2 - 0.06, (0, (h - t / 2 + 0.06) / 2, 0), sections=10, role=DARK))
        n_feet = int(rng.choice([4, 5]))
        reach = u(0.25, 0.32)
        for k in range(n_feet):
            a = 2 * np.pi * k / n_feet
            parts.append(bar((0, 0.06, 0), (reach * np.cos(a), 0.03, reach * np.sin(a)), 0.035, DARK, sections=6))
    if rng.random() < 0.4:  # arms
        ha = u(0.18, 0.26)
        for sx in (-1, 1):
            x = sx * (w / 2 + 0.02)
            parts.append(box((0.05, 0.035, d * 0.85), (x, h + ha, 0)))
            parts.append(box((0.03, ha, 0.03), (x, h + ha / 2, d * 0.35)))
    return parts


def sofa(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    W, D, hs = u(1.3, 2.2), u(0.7, 0.95), u(0.35, 0.45)
    y_leg = u(0.0, 0.1) if rng.random() < 0.6 else 0.0
    hb0 = hs - 0.12
    parts = [box((W, hb0 - y_leg, D), (0, (hb0 + y_leg) / 2, 0))]
    tb, hb = u(0.15, 0.25), u(0.65, 0.95)
    parts.append(box((W, hb - y_leg, tb), (0, (hb + y_leg) / 2, -D / 2 + tb / 2)))
    arms = rng.random() < 0.85
    ta = u(0.1, 0.25) if arms else 0.0
    if arms:
        ha = u(0.5, 0.7)
        for sx in (-1, 1):
            parts.append(box((ta, ha - y_leg, D), (sx * (W / 2 - ta / 2), (ha + y_leg) / 2, 0)))
    n = int(rng.integers(1, 4))
    cw = (W - 2 * ta) / n
    for k in range(n):
        x = -W / 2 + ta + cw * (k + 0.5)
        parts.append(box((cw - 0.02, 0.12, D - tb - 0.02), (x, hb0 + 0.06, tb / 2), ACCENT))
        parts.append(box((cw - 0.02, (hb - hs) * 0.8, 0.1), (x, hs + (hb - hs) * 0.4, -D / 2 + tb + 0.05), ACCENT))
    if rng.random() < 0.2:  # chaise longue extension
        sx = rng.choice([-1, 1])
        cw2 = min(u(0.5, 0.7), W / 2 - ta)
        centre = (sx * (W / 2 - ta - cw2 / 2), (hb0 + y_leg) / 2, D / 2 + 0.3)
        parts.append(box((cw2, hb0 - y_leg, u(0.5, 0.7)), centre))
    if y_leg > 0:
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(frustum(0.025, 0.02, y_leg, (sx * (W / 2 - 0.06), y_leg / 2, sz * (D / 2 - 0.06)),
                                     sections=8, role=DARK))
    return parts


def table(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    H, T = u(0.65, 0.8), u(0.03, 0.07)
    shape = rng.choice(["rect", "rect", "round", "square"])
    if shape == "round":
        R = u(0.4, 0.6)
        W = D = 2 * R
        parts = [cylinder(R, T, (0, H - T / 2, 0), sections=28)]
    else:
        W = u(1.0, 1.8) if shape == "rect" else u(0.7, 1.0)
        D = u(0.6, 1.0) if shape == "rect" else W
        parts = [box((W, T, D), (0, H - T / 2, 0))]
    leg_role = ACCENT if rng.random() < 0.4 else PRIMARY
    kind = rng.choice(["four", "four", "pedestal", "trestle"])
    inset = 0.07 if shape != "round" else 0.3 * W / 2
    if kind == "four":
        s = u(0.03, 0.07)
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(box((s, H - T, s), (sx * (W / 2 - inset), (H - T) / 2, sz * (D / 2 - inset)), leg_role))
        if rng.random() < 0.4 and shape != "round":  # apron
            parts.append(box((W - 2 * inset, 0.08, D - 2 * inset), (0, H - T - 0.04, 0), leg_role))
        if rng.random() < 0.2:  # lower shelf
            parts.append(box((W - 2 * inset, 0.02, D - 2 * inset), (0, u(0.1, 0.25), 0)))
    elif kind == "pedestal":
        parts.append(cylinder(u(0.04, 0.08), H - T, (0, (H - T) / 2, 0), sections=12, role=leg_role))
        if rng.random() < 0.5:
            parts.append(cylinder(u(0.2, 0.3), 0.04, (0, 0.02, 0), sections=20, role=leg_role))
        else:
            for a in (0, np.pi / 2):
                parts.append(box((0.5, 0.05, 0.06), (0, 0.025, 0), leg_role).rotated(rot("y", a + np.pi / 4)))
    else:
        for sx in (-1, 1):
            parts.append(box((0.05, H - T, D * 0.7), (sx * (W / 2 - inset), (H - T) / 2, 0), leg_role))
        parts.append(box((W - 2 * inset, 0.05, 0.05), (0, 0.25, 0), leg_role))
    return parts


FURNITURE_BUILDERS = {
    "bench": bench,
    "cabinet": cabinet,
    "chair": chair,
    "sofa": sofa,
    "table": table,
}
