"""Parametric families for 8 of the 13 ShapeNet (3D-R2N2) classes: vehicles, devices, lamps, rifles.

Every builder takes a ``numpy.random.Generator`` and returns a list of ``Part`` in the ShapeNet v1
frame (y up, front +z, x = width); ``mesc3d.data.shapes.make_shape`` assembles and normalises them.
Parts appear or not, proportions and counts vary, so shapes within a class differ visibly (e.g.
airplanes vary wing sweep, span, engine count and tail layout, conventional or T-tail; cars are
sedans, hatchbacks, SUVs or pickups).  The furniture classes live in ``shapes_furniture``.
"""

from __future__ import annotations

import numpy as np

from mesc3d.data.primitives import (
    ACCENT, DARK, PRIMARY, Part, bar, box, cylinder, ellipsoid, frustum, hull, mirror_x, prism, rot,
)


def _wing(x0, x1, z_lead_root, chord_root, chord_tip, sweep, y, thick, dihedral=0.0, role=PRIMARY) -> Part:
    """Half wing in the x-z plane from span x0 to x1; ``sweep`` shifts the tip leading edge back."""
    zl_tip = z_lead_root - sweep
    yt = y + dihedral
    pts = [[x0, y - thick / 2, z_lead_root], [x0, y + thick / 2, z_lead_root],
           [x0, y - thick / 2, z_lead_root - chord_root], [x0, y + thick / 2, z_lead_root - chord_root],
           [x1, yt - thick / 4, zl_tip], [x1, yt + thick / 4, zl_tip],
           [x1, yt - thick / 4, zl_tip - chord_tip], [x1, yt + thick / 4, zl_tip - chord_tip]]
    return hull(pts, role)


def airplane(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    L, R = 1.0, u(0.045, 0.075)
    parts = [ellipsoid((R, R * u(1.0, 1.15), L / 2), n_lat=12, n_lon=12)]
    span = u(0.35, 0.7)
    cr = u(0.16, 0.3)
    ct = cr * u(0.25, 0.7)
    sweep = span * np.tan(np.radians(u(0, 40)))
    zw = u(-0.08, 0.12)
    yw = u(-0.7, 0.5) * R
    wing = _wing(0, span, zw + cr / 2, cr, ct, sweep, yw, 0.025, dihedral=u(-0.02, 0.06))
    parts += [wing] + mirror_x([wing])
    n_eng = int(rng.choice([0, 2, 2, 4]))
    for k in range(n_eng // 2):
        xe = span * (0.35 + 0.3 * k)
        ze = zw + cr / 2 - sweep * xe / span + 0.04
        eng = cylinder(R * u(0.4, 0.6), cr * 0.7, (xe, yw - R * 0.7, ze - cr * 0.3), axis="z", sections=12,
                       role=ACCENT)
        parts += [eng] + mirror_x([eng])
    # tail: vertical fin, horizontal stabiliser (conventional or on top of the fin)
    fh, fc = u(0.12, 0.22), u(0.12, 0.2)
    zt = -L / 2 + 0.04
    fin = _wing(0, fh, zt + fc, fc, fc * u(0.3, 0.7), fh * u(0.3, 1.0), 0.0, 0.015).rotated(rot("z", np.pi / 2))
    parts.append(fin.moved((0, R * 0.6, 0)))
    t_tail = rng.random() < 0.3
    hs, hc = span * u(0.25, 0.4), fc * u(0.7, 1.0)
    ht = R * 0.6 + fh if t_tail else u(0.0, 0.5) * R
    hz = zt + hc + (fh * 0.4 if t_tail else 0.0)
    tail = _wing(0, hs, hz, hc, hc * 0.5, hs * u(0.2, 0.6), ht, 0.015)
    parts += [tail] + mirror_x([tail])
    return parts


def car(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    kind = rng.choice(["sedan", "hatch", "suv", "pickup"])
    L, W = 1.0, u(0.38, 0.48)
    r = u(0.08, 0.11)
    hb = u(0.12, 0.17) + (0.06 if kind in ("suv", "pickup") else 0.0)
    y0 = r * 0.7
    nose = u(0.0, 0.06)
    body = hull([[sx * W / 2, y, z] for sx in (-1, 1) for y, z in
                 [(y0, L / 2), (y0 + hb - nose, L / 2), (y0, -L / 2), (y0 + hb, -L / 2 + 0.02),
                  (y0 + hb, L / 2 - 0.12)]])
    parts = [body]
    hc = u(0.11, 0.17)
    if kind == "sedan":
        zb, zf = u(-0.32, -0.25), u(0.1, 0.2)
    elif kind == "hatch":
        zb, zf = -L / 2 + 0.04, u(0.1, 0.2)
    elif kind == "suv":
        zb, zf = -L / 2 + 0.03, u(0.12, 0.22)
    else:
        zb, zf = u(-0.15, -0.05), u(0.12, 0.22)
    yb = y0 + hb
    rake_f, rake_b = u(0.08, 0.18), (u(0.02, 0.05) if kind in ("suv", "hatch") else u(0.08, 0.15))
    cabin = hull([[sx * W * 0.44, y, z] for sx in (-1, 1) for y, z in
                  [(yb, zb), (yb, zf), (yb + hc, zf - rake_f), (yb + hc, zb + rake_b)]], DARK)
    roof_len = max(zf - rake_f - zb - rake_b, 0.05)
    roof = box((W * 0.86, 0.015, roof_len), (0, yb + hc + 0.007, (zf - rake_f + zb + rake_b) / 2))
    parts += [cabin, roof]
    if kind == "pickup":  # bed walls behind the cab
        for sx in (-1, 1):
            parts.append(box((0.02, 0.07, -L / 2 - zb + 0.02), (sx * (W / 2 - 0.01), yb + 0.035, (zb - L / 2) / 2)))
    wz = L / 2 - u(0.16, 0.22)
    for x in (-W / 2 + 0.05, W / 2 - 0.05):
        for z in (-wz, wz):
            parts.append(cylinder(r, u(0.07, 0.09), (x, r, z), axis="x", sections=16, role=DARK))
    return parts


def display(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    W = u(0.6, 1.0)
    H = W * u(0.5, 0.78)
    T = u(0.025, 0.06)
    stand_h = u(0.08, 0.25)
    yc = stand_h + H / 2
    parts = [box((W, H, T), (0, yc, 0)), box((W * 0.94, H * 0.9, 0.01), (0, yc + H * 0.02, T / 2 + 0.004), DARK)]
    if rng.random() < 0.2:  # CRT-style back
        parts.append(hull([[sx * W * s, yc + sy * H * s, z] for sx in (-1, 1) for sy in (-1, 1)
                           for s, z in [(0.45, -T / 2), (0.25, -T / 2 - u(0.3, 0.5))]]))
    kind = rng.choice(["neck", "neck", "legs", "none"])
    if kind == "neck":
        parts.append(box((u(0.05, 0.12), stand_h + H * 0.3, 0.04), (0, (stand_h + H * 0.3) / 2, -T / 2 - 0.02), ACCENT))
        if rng.random() < 0.5:
            parts.append(box((u(0.25, 0.45), 0.02, u(0.15, 0.25)), (0, 0.01, 0), ACCENT))
        else:
            parts.append(cylinder(u(0.1, 0.18), 0.02, (0, 0.01, 0), sections=20, role=ACCENT))
    elif kind == "legs":
        for sx in (-1, 1):
            parts.append(bar((sx * W * 0.35, stand_h + 0.02, 0), (sx * W * 0.38, 0, 0.06), 0.03, ACCENT))
            parts.append(bar((sx * W * 0.38, 0.0, -0.08), (sx * W * 0.38, 0.0, 0.1), 0.025, ACCENT))
    return parts


def lamp(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    kind = rng.choice(["floor", "table", "arm"])
    parts = []
    rb = u(0.1, 0.2)
    if rng.random() < 0.7:
        parts.append(cylinder(rb, 0.03, (0, 0.015, 0), sections=20, role=DARK))
    else:
        parts.append(box((rb * 1.6, 0.04, rb * 1.6), (0, 0.02, 0), DARK))
    if kind == "arm":
        h1, l2 = u(0.35, 0.55), u(0.3, 0.5)
        a2 = np.radians(u(10, 60))
        p1 = np.array([0.0, h1, 0.0])
        p2 = p1 + l2 * np.array([0.0, np.sin(a2) * 0.3, np.cos(a2)])
        parts += [bar((0, 0.03, -0.05), p1, 0.025, DARK), bar(p1, p2, 0.022, DARK)]
        shade = frustum(u(0.07, 0.12), 0.03, u(0.1, 0.16), (0, 0, 0), axis="y", role=ACCENT)
        parts.append(shade.rotated(rot("x", np.radians(u(20, 50)))).moved(p2 - np.array([0, 0.05, 0])))
        return parts
    H = u(1.0, 1.6) if kind == "floor" else u(0.35, 0.6)
    if kind == "table" and rng.random() < 0.5:  # vase-like body
        parts.append(ellipsoid((rb * 0.8, H * 0.3, rb * 0.8), (0, H * 0.3 + 0.03, 0)))
    parts.append(cylinder(u(0.01, 0.02), H, (0, H / 2, 0), sections=8, role=DARK))
    sh = u(0.15, 0.32) * (1.0 if kind == "floor" else 0.8)
    r_lo = u(0.1, 0.25)
    r_hi = r_lo * u(0.3, 1.0)
    if rng.random() < 0.25:  # dome shade
        parts.append(ellipsoid((r_lo, sh * 0.6, r_lo), (0, H, 0), role=ACCENT))
    else:
        parts.append(frustum(r_lo, r_hi, sh, (0, H, 0), sections=20, role=ACCENT))
    return parts


def loudspeaker(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    W, H, D = u(0.28, 0.5), u(0.45, 1.2), u(0.28, 0.5)
    y0 = u(0.0, 0.12)
    parts = []
    if rng.random() < 0.2:  # round tower
        parts.append(frustum(W / 2, W / 2 * u(0.6, 1.0), H, (0, y0 + H / 2, 0), sections=20))
    else:
        parts.append(box((W, H, D), (0, y0 + H / 2, 0)))
    n = int(rng.integers(1, 4))
    fz = (W / 2 if len(parts[0].faces) > 12 else D / 2)
    ys = np.linspace(y0 + H * 0.8, y0 + H * 0.25, n) if n > 1 else [y0 + H * 0.6]
    for k, y in enumerate(ys):
        r = W * (0.18 if k == 0 and n > 1 else u(0.3, 0.4))
        parts.append(cylinder(r, 0.03, (0, y, fz), axis="z", sections=18, role=DARK))
        parts.append(cylinder(r * 0.35, 0.05, (0, y, fz + 0.01), axis="z", sections=12, role=ACCENT))
    if y0 > 0.03:
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append(frustum(0.03, 0.01, y0, (sx * W * 0.35, y0 / 2, sz * D * 0.3), sections=8, role=DARK))
    return parts


def rifle(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    rr = u(0.012, 0.02)
    lb = u(0.3, 0.45)
    zr0, zr1 = 0.5 - lb, 0.5 - lb - u(0.2, 0.3)  # receiver front/back
    parts = [cylinder(rr, lb, (0, 0, 0.5 - lb / 2), axis="z", sections=10, role=DARK)]
    hr = u(0.06, 0.1)
    parts.append(box((0.05, hr, zr0 - zr1), (0, -hr / 2 + rr, (zr0 + zr1) / 2), DARK))
    if rng.random() < 0.6:  # handguard / forestock
        lf = lb * u(0.4, 0.8)
        parts.append(box((0.055, u(0.04, 0.06), lf), (0, -0.01, zr0 + lf / 2)))
    sd = u(0.1, 0.18)
    z_end = -0.5
    parts.append(hull([[sx * 0.025, y, z] for sx in (-1, 1) for y, z in
                       [(rr, zr1), (-hr + rr, zr1), (rr - u(0.0, 0.04), z_end), (rr - sd, z_end)]]))
    grip = box((0.04, u(0.08, 0.12), 0.035), (0, -hr - 0.03, zr1 + 0.03)).rotated(rot("x", 0.35), about=(0, -hr, zr1))
    parts.append(grip.with_role(ACCENT))
    if rng.random() < 0.7:
        lm = u(0.08, 0.18)
        mag = box((0.03, lm, 0.045), (0, -hr - lm / 2 + rr, (zr0 + zr1) / 2 + 0.03), DARK)
        parts.append(mag.rotated(rot("x", u(-0.35, 0.0)), about=(0, -hr, (zr0 + zr1) / 2)))
    if rng.random() < 0.5:  # scope
        ls = u(0.15, 0.25)
        zs = (zr0 + zr1) / 2
        parts.append(cylinder(u(0.015, 0.025), ls, (0, rr + 0.06, zs), axis="z", sections=12, role=DARK))
        for dz in (-ls / 4, ls / 4):
            parts.append(box((0.015, 0.05, 0.015), (0, rr + 0.03, zs + dz), DARK))
    if rng.random() < 0.2:  # bipod
        for sx in (-1, 1):
            parts.append(bar((0, -0.01, 0.4 - lb / 2 + 0.2), (sx * 0.06, -0.15, 0.45 - lb / 2 + 0.2), 0.012, DARK))
    return parts


def telephone(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    if rng.random() < 0.7:  # smartphone standing upright, screen facing +z
        H, W, T = 1.0, u(0.45, 0.58), u(0.05, 0.1)
        parts = [box((W, H, T), (0, 0, 0)), box((W * 0.9, H * u(0.8, 0.9), 0.01), (0, 0.01, T / 2 + 0.004), DARK)]
        if rng.random() < 0.5:
            parts.append(box((W * 0.35, W * 0.35, 0.02), (W * 0.2, H * 0.35, -T / 2 - 0.01), ACCENT))
        if rng.random() < 0.4:  # home button
            parts.append(cylinder(0.035, 0.012, (0, -H * 0.45, T / 2 + 0.005), axis="z", sections=12, role=ACCENT))
        return parts
    # desk phone: wedge base, handset on top, keypad
    W, D = u(0.5, 0.7), u(0.5, 0.7)
    h0, h1 = u(0.06, 0.1), u(0.15, 0.25)
    parts = [prism([[-W / 2, -D / 2], [W / 2, -D / 2], [W / 2, D / 2], [-W / 2, D / 2]], 0, h0)]
    parts.append(hull([[sx * W / 2, y, z] for sx in (-1, 1) for y, z in
                       [(h0, D / 2), (h0, -D / 2), (h1, -D / 2), (h0 + 0.02, D / 2)]]))
    parts.append(box((W * 0.5, 0.02, D * 0.45), (W * 0.18, (h0 + h1) / 2 + 0.02, D * 0.1), DARK)
                 .rotated(rot("x", -np.arctan2(h1 - h0, D)), about=(0, (h0 + h1) / 2, 0)))
    hy = h1 + 0.04
    parts.append(bar((-W * 0.45, hy, -D * 0.3), (W * 0.45, hy, -D * 0.3), 0.06, ACCENT))
    for sx in (-1, 1):
        parts.append(ellipsoid((0.07, 0.04, 0.08), (sx * W * 0.45, hy - 0.01, -D * 0.3), role=ACCENT))
    return parts


def vessel(rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    B, Hh = u(0.16, 0.3), u(0.08, 0.16)
    bow, stern = u(0.15, 0.3), u(0.0, 0.08)
    deck = [(0, 0.5)] + [(sx * B / 2, z) for sx in (-1, 1) for z in (0.5 - bow, -0.5 + stern)] + \
           [(sx * B / 2 * 0.8, -0.5) for sx in (-1, 1)]
    keel = [(0, 0.5 - bow * 0.3)] + [(sx * B / 2 * u(0.3, 0.6), z) for sx in (-1, 1) for z in (0.2, -0.45)]
    parts = [hull([[x, 0.0, z] for x, z in deck] + [[x, -Hh, z] for x, z in keel])]
    if rng.random() < 0.3:  # sailing boat: mast and sails
        hm = u(0.5, 0.8)
        zm = u(0.0, 0.15)
        parts.append(bar((0, 0, zm), (0, hm, zm), 0.015, DARK))
        parts.append(hull([[0, 0.05, zm - 0.01], [0, hm * 0.95, zm - 0.01], [0, 0.05, zm - u(0.3, 0.45)],
                           [0.005, 0.05, zm - 0.02]], ACCENT))
        if rng.random() < 0.6:
            parts.append(hull([[0, 0.05, zm + 0.01], [0, hm * 0.85, zm + 0.01], [0, 0.02, 0.5 - bow * 0.5],
                               [0.005, 0.05, zm + 0.02]], ACCENT))
        return parts
    n = int(rng.integers(1, 4))
    z = u(-0.3, -0.05)
    y = 0.0
    for k in range(n):
        l, w, h = u(0.15, 0.35) * (0.8 ** k), B * u(0.5, 0.8) * (0.85 ** k), u(0.05, 0.1)
        parts.append(box((w, h, l), (0, y + h / 2, z), ACCENT if k % 2 == 0 else PRIMARY))
        y += h
    for k in range(int(rng.integers(0, 3))):  # funnels
        parts.append(frustum(0.03, 0.025, u(0.08, 0.14), (0, y + 0.05, z - 0.05 + 0.08 * k), sections=10, role=DARK))
    if rng.random() < 0.5:  # radar mast
        parts.append(bar((0, y, z + 0.05), (0, y + u(0.1, 0.2), z + 0.05), 0.012, DARK))
    return parts


SEEN_BUILDERS = {
    "airplane": airplane,
    "car": car,
    "display": display,
    "lamp": lamp,
    "loudspeaker": loudspeaker,
    "rifle": rifle,
    "telephone": telephone,
    "vessel": vessel,
}
