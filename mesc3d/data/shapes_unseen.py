"""Parametric families for the 4 zero-shot classes (bed, bookcase, desk, tool).

Each relates to one seen class the way the real categories do (``mesc3d.categories.UNSEEN_RELATIVE``):
bed ~ sofa (upholstered box with cushions, but long along z with a headboard), bookcase ~ cabinet
(same body, open front with shelves and books), desk ~ table (a top on legs, plus drawer
pedestals), tool ~ rifle (long thin object with a handle).  Same frame as ``shapes_seen``.
"""

from __future__ import annotations

import numpy as np

from mesc3d.data.primitives import ACCENT, DARK, PRIMARY, Part, bar, box, cylinder, ellipsoid, frustum, hull


def bed(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    L, W = u(1.9, 2.2), u(0.9, 1.8)
    y_leg = u(0.05, 0.15) if rng.random() < 0.5 else 0.0
    hf, hm = u(0.15, 0.3), u(0.15, 0.25)
    parts = [box((W, hf, L), (0, y_leg + hf / 2, 0)),
             box((W - 0.04, hm, L - 0.08), (0, y_leg + hf + hm / 2, 0.02), ACCENT)]
    hh = u(0.8, 1.25)
    tb = u(0.05, 0.12)
    if rng.random() < 0.3:  # upholstered, rounded-top headboard
        parts.append(hull([[sx * W / 2, y, -L / 2 - tb / 2 + dz] for sx in (-1, 1) for dz in (0, tb)
                           for y in (0.0, hh - 0.15)] + [[sx * W * 0.3, hh, -L / 2 - tb / 2 + dz]
                                                         for sx in (-1, 1) for dz in (0, tb)]))
    else:
        parts.append(box((W + 0.04, hh, tb), (0, hh / 2, -L / 2 - tb / 2)))
    if rng.random() < 0.5:  # footboard
        hfb = u(0.35, 0.6)
        parts.append(box((W + 0.04, hfb, tb), (0, hfb / 2, L / 2 + tb / 2)))
    n_p = 1 if W < 1.2 else int(rng.integers(1, 3))
    for k in range(n_p):
        x = 0.0 if n_p == 1 else (k - 0.5) * W * 0.5
        parts.append(ellipsoid((min(0.3, W / (2 * n_p) - 0.04), 0.07, 0.18),
                               (x, y_leg + hf + hm + 0.05, -L / 2 + 0.3), role=ACCENT))
    if rng.random() < 0.4:  # blanket over the lower part
        parts.append(box((W + 0.02, 0.03, L * 0.55), (0, y_leg + hf + hm + 0.01, L * 0.2), PRIMARY))
    if y_leg > 0:
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(box((0.06, y_leg, 0.06), (sx * (W / 2 - 0.05), y_leg / 2, sz * (L / 2 - 0.05)), DARK))
    return parts


def bookcase(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    W, H, D = u(0.6, 1.2), u(0.9, 2.0), u(0.25, 0.4)
    t = u(0.02, 0.04)
    parts = [box((t, H, D), (sx * (W / 2 - t / 2), H / 2, 0)) for sx in (-1, 1)]
    parts += [box((W, t, D), (0, t / 2, 0)), box((W, t, D), (0, H - t / 2, 0)),
              box((W, H, 0.01), (0, H / 2, -D / 2 + 0.005), ACCENT)]
    n = int(rng.integers(2, 7))
    y_lo = t
    if rng.random() < 0.3:  # closed doors at the bottom, like a cabinet
        hd = H * u(0.2, 0.35)
        parts.append(box((W - 2 * t, hd, 0.02), (0, t + hd / 2, D / 2 - 0.01), ACCENT))
        y_lo = t + hd
    ys = np.linspace(y_lo, H - t, n + 1)
    for y in ys[:-1]:
        if y > t + 1e-6:
            parts.append(box((W - 2 * t, t, D - 0.01), (0, y, 0.005)))
    books = rng.random() < 0.75
    if books:
        for y_a, y_b in zip(ys[:-1], ys[1:]):
            gap = y_b - y_a - t
            if gap < 0.08 or rng.random() < 0.25:
                continue
            x = -W / 2 + t + 0.01
            x_end = x + (W - 2 * t) * u(0.4, 0.95)
            while x < x_end:
                bw = u(0.02, 0.05)
                bh = gap * u(0.6, 0.9)
                role = int(rng.choice([ACCENT, DARK, PRIMARY]))
                parts.append(box((bw, bh, D * u(0.6, 0.85)), (x + bw / 2, y_a + t / 2 + bh / 2, 0.0), role))
                x += bw + 0.003
    return parts


def desk(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    W, D, H, T = u(1.1, 1.6), u(0.55, 0.8), u(0.7, 0.78), u(0.03, 0.05)
    parts = [box((W, T, D), (0, H - T / 2, 0))]
    kind = rng.choice(["one_pedestal", "two_pedestals", "legs_drawer"])
    pw = u(0.35, 0.45)
    leg_role = ACCENT if rng.random() < 0.5 else PRIMARY

    def pedestal(sx):
        x = sx * (W / 2 - pw / 2 - 0.01)
        out = [box((pw, H - T, D - 0.04), (x, (H - T) / 2, 0))]
        n = int(rng.integers(2, 5))
        dh = (H - T - 0.06) / n
        for k in range(n):
            y = 0.05 + dh * (k + 0.5)
            out.append(box((pw - 0.04, dh - 0.015, 0.02), (x, y, D / 2 - 0.01), ACCENT))
            out.append(box((0.1, 0.02, 0.025), (x, y, D / 2 + 0.01), DARK))
        return out

    if kind in ("one_pedestal", "two_pedestals"):
        parts += pedestal(1)
        if kind == "two_pedestals":
            parts += pedestal(-1)
        else:
            for sz in (-1, 1):
                parts.append(box((0.05, H - T, 0.05), (-W / 2 + 0.05, (H - T) / 2, sz * (D / 2 - 0.05)), leg_role))
    else:
        for sx in (-1, 1):
            for sz in (-1, 1):
                centre = (sx * (W / 2 - 0.05), (H - T) / 2, sz * (D / 2 - 0.05))
                parts.append(box((0.05, H - T, 0.05), centre, leg_role))
        parts.append(box((W * 0.4, 0.1, D - 0.1), (0, H - T - 0.05, 0), ACCENT))
    if rng.random() < 0.5:  # modesty panel at the back
        parts.append(box((W - 0.1, (H - T) * 0.5, 0.02), (0, H - T - (H - T) * 0.25, -D / 2 + 0.04)))
    if rng.random() < 0.25:  # hutch shelf on top
        hh = u(0.25, 0.45)
        for sx in (-1, 1):
            parts.append(box((0.03, hh, D * 0.35), (sx * (W / 2 - 0.015), H + hh / 2, -D / 2 + D * 0.175)))
        parts.append(box((W, 0.03, D * 0.35), (0, H + hh, -D / 2 + D * 0.175)))
    return parts


def tool(rng: np.random.Generator) -> list[Part]:
    """Hand tools lying along z (handle towards -z): hammer, screwdriver, wrench or axe."""
    u = rng.uniform
    kind = rng.choice(["hammer", "screwdriver", "wrench", "axe"])
    if kind == "hammer":
        r = u(0.02, 0.035)
        parts = [cylinder(r, 1.0, (0, 0, 0), axis="z", sections=10),
                 cylinder(r * 1.3, u(0.25, 0.4), (0, 0, -0.35), axis="z", sections=10, role=ACCENT)]
        hw = u(0.25, 0.4)
        parts.append(box((0.06, hw, 0.08), (0, hw * 0.1, 0.5), DARK))
        if rng.random() < 0.5:  # claw
            parts.append(hull([[sx, hw * 0.55, 0.5 + dz] for sx in (-0.025, 0.025) for dz in (-0.03, 0.03)] +
                              [[sx, hw * 0.75, 0.42] for sx in (-0.02, 0.02)], DARK))
        return parts
    if kind == "screwdriver":
        lh = u(0.3, 0.4)
        rh = u(0.05, 0.08)
        parts = [frustum(rh, rh * 0.8, lh, (0, 0, -0.5 + lh / 2), axis="z", sections=12, role=ACCENT),
                 cylinder(u(0.01, 0.018), 1.0 - lh - 0.05, (0, 0, (lh + 0.05) / 2 - 0.025), axis="z", sections=8,
                          role=DARK),
                 box((0.03, 0.006, 0.05), (0, 0, 0.475), DARK)]
        return parts
    if kind == "wrench":
        w = u(0.05, 0.08)
        parts = [box((w, 0.02, 0.75), (0, 0, 0), DARK)]
        for sz in (-1, 1):
            jaw = u(0.12, 0.18)
            if rng.random() < 0.5:  # open jaw: two prongs
                for sx in (-1, 1):
                    parts.append(box((jaw * 0.3, 0.022, jaw), (sx * jaw * 0.35, 0, sz * (0.375 + jaw / 2)), DARK))
                parts.append(box((jaw, 0.022, jaw * 0.3), (0, 0, sz * (0.375 + jaw * 0.1)), DARK))
            else:  # ring end
                parts.append(frustum(jaw / 2, jaw / 2, 0.024, (0, 0, sz * (0.375 + jaw * 0.35)), axis="y",
                                     sections=14, role=DARK))
        if rng.random() < 0.5:
            parts.append(box((w * 1.2, 0.03, 0.3), (0, 0, 0), ACCENT))
        return parts
    # axe
    r = u(0.02, 0.03)
    parts = [bar((0, 0, -0.5), (0, 0, 0.45), 2 * r, PRIMARY, sections=10)]
    bl = u(0.2, 0.35)
    parts.append(hull([[sx, y, z] for sx in (-0.02, 0.02) for y, z in
                       [(0.04, 0.32), (0.04, 0.48), (-bl, 0.26), (-bl, 0.52)]] +
                      [[sx, 0.0, 0.4] for sx in (-0.001, 0.001)], DARK))
    if rng.random() < 0.5:
        parts.append(cylinder(r * 1.4, 0.2, (0, 0, -0.38), axis="z", sections=10, role=ACCENT))
    return parts


UNSEEN_BUILDERS = {"bed": bed, "bookcase": bookcase, "desk": desk, "tool": tool}
