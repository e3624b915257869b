"""Headless CPU renderer (trimesh + embree ray casting) for R2N2-style views and Pix3D-style photos.

Camera convention (3D-R2N2 ``rendering_metadata.txt``; one line per view)::

    azimuth_deg elevation_deg inplane_deg distance_ratio fov_column

R2N2's Blender script places the camera at distance ``distance_ratio * 1.75`` (``MAX_CAMERA_DIST``)
at the given azimuth/elevation in Blender's z-up frame, i.e. in the ShapeNet (y-up) frame

    eye = d * (cos(el) cos(az),  sin(el),  -cos(el) sin(az)),   looking at the origin,

with a 35 mm lens on a 32 mm sensor (horizontal FOV 2*atan(16/35) = 49.13 deg) at 137x137.  Its
files write 25 in the last column (a value the renders do not use); we write the same, so our files
read exactly like theirs.  ``R2N2_FOV_DEG`` is the angle actually used.  The in-plane rotation
is 0 in R2N2 and here (supported: it rolls the camera about its viewing axis).

Shading: two-sided Lambert plus ambient, ``c = colour[role] * (0.3 + 0.7 |n . l|)``, one directional
light fixed in the camera frame (upper left, towards the object).  Output: straight-alpha RGBA
uint8; background pixels are (255, 255, 255, 0) and object pixels have alpha 255 (one ray per
pixel, no anti-aliasing, so masks are exact).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import trimesh
from PIL import Image, ImageDraw
from trimesh.ray.ray_pyembree import RayMeshIntersector

R2N2_MAX_DIST = 1.75
R2N2_FOV_DEG = math.degrees(2 * math.atan(16.0 / 35.0))  # 49.13: 35 mm lens, 32 mm sensor
R2N2_FOV_COLUMN = 25  # what R2N2's metadata files write in the last column
AMBIENT, DIFFUSE = 0.3, 0.7
_LIGHT_CAM = np.array([-0.45, 0.6, 1.0]) / np.linalg.norm([-0.45, 0.6, 1.0])  # camera frame, +z = backwards


def r2n2_eye(azimuth: float, elevation: float, distance_ratio: float) -> np.ndarray:
    """Camera position (3,) in the ShapeNet y-up frame for R2N2 metadata values (degrees)."""
    a, e = math.radians(azimuth), math.radians(elevation)
    d = distance_ratio * R2N2_MAX_DIST
    return np.array([d * math.cos(e) * math.cos(a), d * math.sin(e), -d * math.cos(e) * math.sin(a)])


def look_at(eye: np.ndarray, target=(0.0, 0.0, 0.0), inplane_deg: float = 0.0) -> np.ndarray:
    """World-from-camera rotation (3, 3): columns = camera right, up, backward (OpenGL style)."""
    eye = np.asarray(eye, dtype=np.float64)
    back = eye - np.asarray(target, dtype=np.float64)
    back /= np.linalg.norm(back)
    up0 = np.array([0.0, 1.0, 0.0]) if abs(back[1]) < 0.999 else np.array([0.0, 0.0, 1.0])
    right = np.cross(up0, back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    if inplane_deg:
        t = math.radians(inplane_deg)
        right, up = math.cos(t) * right + math.sin(t) * up, -math.sin(t) * right + math.cos(t) * up
    return np.stack([right, up, back], axis=1)


@functools.lru_cache(maxsize=16)
def _camera_frame_dirs(fov_deg: float, size: int) -> np.ndarray:
    """Unit ray directions (size*size, 3) in the camera frame (looking down -z), row 0 = top."""
    half = math.tan(math.radians(fov_deg) / 2)
    c = (np.arange(size) + 0.5) / size * 2 - 1  # (size,)
    xs, ys = np.meshgrid(c * half, -c * half)  # (size, size)
    d = np.stack([xs, ys, -np.ones_like(xs)], -1).reshape(-1, 3)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    d.setflags(write=False)
    return d


def camera_rays(eye, fov_deg: float, size: int, inplane_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Rays through pixel centres of a square pinhole camera looking at the origin.

    Returns origins (size*size, 3) and unit directions (size*size, 3); row 0 is the image top.
    """
    r = look_at(eye, inplane_deg=inplane_deg)
    d = _camera_frame_dirs(float(fov_deg), int(size)) @ r.T  # rotation keeps unit length
    return np.broadcast_to(np.asarray(eye, dtype=np.float64), d.shape), d


def render_views(mesh: trimesh.Trimesh, roles: np.ndarray, colors: np.ndarray, cameras: list[tuple],
                 size: int = 137, fov_deg: float = R2N2_FOV_DEG,
                 intersector: RayMeshIntersector | None = None) -> np.ndarray:
    """Render ``cameras`` [(azimuth, elevation, inplane, distance_ratio), ...] -> uint8 (V, size, size, 4).

    ``roles`` (F,) indexes ``colors`` (R, 3) in [0, 1].  All views are cast in one embree call.
    """
    roles = np.asarray(roles)
    if roles.shape != (len(mesh.faces),):
        raise ValueError(f"roles must be (F,) = ({len(mesh.faces)},), got {roles.shape}")
    origins, dirs, lights = [], [], []
    for az, el, inplane, dist in cameras:
        eye = r2n2_eye(az, el, dist)
        o, d = camera_rays(eye, fov_deg, size, inplane)
        origins.append(o)
        dirs.append(d)
        lights.append(look_at(eye, inplane_deg=inplane) @ _LIGHT_CAM)
    o = np.concatenate(origins)  # (V*P, 3)
    d = np.concatenate(dirs)
    isect = intersector or RayMeshIntersector(mesh)
    tri = isect.intersects_first(o, d)  # (V*P,) face index or -1
    n_pix = size * size
    out = np.zeros((len(cameras), n_pix, 4), dtype=np.uint8)
    out[..., :3] = 255
    normals = np.asarray(mesh.face_normals)
    colors = np.asarray(colors, dtype=np.float64)
    for v in range(len(cameras)):
        t = tri[v * n_pix:(v + 1) * n_pix]
        hit = t >= 0
        f = t[hit]
        shade = AMBIENT + DIFFUSE * np.abs(normals[f] @ lights[v])  # (H,)
        rgb = colors[roles[f]] * shade[:, None]
        out[v, hit, :3] = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
        out[v, hit, 3] = 255
    return out.reshape(len(cameras), size, size, 4)


def r2n2_cameras(rng: np.random.Generator, n_views: int = 24) -> list[tuple[float, float, float, float]]:
    """R2N2-like random cameras: azimuth U[0,360), elevation U[25,30], in-plane 0, distance U[0.72,0.9].

    The distance range keeps a bbox-diagonal-1 object fully inside the 49 deg frame.
    """
    az = rng.uniform(0.0, 360.0, n_views)
    el = rng.uniform(25.0, 30.0, n_views)
    dist = rng.uniform(0.72, 0.9, n_views)
    return [(float(a), float(e), 0.0, float(d)) for a, e, d in zip(az, el, dist)]


def metadata_text(cameras: list[tuple[float, float, float, float]]) -> str:
    """``rendering_metadata.txt`` content: one ``az el inplane dist 25`` line per view."""
    return "".join(f"{az!r} {el!r} {int(ip)} {d!r} {R2N2_FOV_COLUMN}\n" for az, el, ip, d in cameras)


def parse_metadata(text: str) -> np.ndarray:
    """Inverse of ``metadata_text`` (also reads real R2N2 files) -> float64 (V, 5)."""
    rows = [[float(x) for x in line.split()] for line in text.splitlines() if line.strip()]
    arr = np.array(rows, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 5:
        raise ValueError(f"rendering metadata must have 5 columns per line, got shape {arr.shape}")
    return arr


def cluttered_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A busy RGB background (H, W, 3) uint8: gradient, random shapes, mild noise."""
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    base = (c0 * (1 - t) + c1 * t) * np.ones((1, width, 1))
    img = Image.fromarray(base.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(12, 28))):
        kind = int(rng.integers(0, 4))
        x0, x1 = sorted(rng.integers(-width // 4, width + width // 4, 2).tolist())
        y0, y1 = sorted(rng.integers(-height // 4, height + height // 4, 2).tolist())
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        if kind == 0:
            draw.rectangle([x0, y0, x1, y1], fill=col)
        elif kind == 1:
            draw.ellipse([x0, y0, x1, y1], fill=col)
        elif kind == 2:
            draw.line([x0, y0, x1, y1], fill=col, width=int(rng.integers(1, 8)))
        else:
            pts = [(int(x), int(y)) for x, y in zip(rng.integers(0, width, 3), rng.integers(0, height, 3))]
            draw.polygon(pts, fill=col)
    arr = np.asarray(img, dtype=np.int16)
    arr = arr + rng.integers(-10, 11, arr.shape, dtype=np.int16)
    return np.clip(arr, 0, 255).astype(np.uint8)


def render_photo(mesh: trimesh.Trimesh, roles: np.ndarray, colors: np.ndarray, rng: np.random.Generator,
                 sizes: tuple[int, int] = (160, 288)) -> dict:
    """A Pix3D-style photo: object rendered from a random camera, pasted on a cluttered background.

    Returns dict with ``image`` (H, W, 3) uint8, ``mask`` (H, W) uint8 in {0, 255}, ``bbox``
    [x0, y0, x1, y1] (inclusive pixel bounds of the mask), ``img_size`` [W, H] and camera fields.
    """
    W, H = (int(x) for x in rng.integers(sizes[0], sizes[1] + 1, 2))
    side = int(min(W, H) * rng.uniform(0.55, 0.9))
    cam = (float(rng.uniform(0, 360)), float(rng.uniform(5, 35)), 0.0, float(rng.uniform(0.72, 0.85)))
    rgba = render_views(mesh, roles, colors, [cam], size=side)[0]
    ox, oy = int(rng.integers(0, W - side + 1)), int(rng.integers(0, H - side + 1))
    image = cluttered_background(rng, W, H)
    alpha = rgba[..., 3:] > 0
    window = image[oy:oy + side, ox:ox + side]
    image[oy:oy + side, ox:ox + side] = np.where(alpha, rgba[..., :3], window)
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[oy:oy + side, ox:ox + side] = alpha[..., 0] * 255
    ys, xs = np.nonzero(mask)
    bbox = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
    eye = r2n2_eye(cam[0], cam[1], cam[3])
    rot_wc = look_at(eye)  # world-from-camera
    return {
        "image": image, "mask": mask, "bbox": bbox, "img_size": [W, H],
        "cam_position": eye.tolist(), "rot_mat": rot_wc.T.tolist(), "trans_mat": (-rot_wc.T @ eye).tolist(),
        "focal_length": 35.0, "inplane_rotation": 0.0, "camera": list(cam),
    }
