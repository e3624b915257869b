"""Test helpers: tiny trees in the exact real on-disk layouts, archives of them, a loopback server.

Layouts (docs/real-data.md):
- ``ShapeNetV1PointCloud/<synset>/<id>.points.ply.npy``   float32 (K, 3) or (K, 6) with normals
- ``ShapeNetV1Renderings/<synset>/<id>/rendering/00.png..23.png`` 137x137 RGBA
  + ``rendering_metadata.txt`` (24 lines: azimuth elevation in-plane distance fov) + ``renderings.txt``
- ``pix3d/pix3d.json``, ``img/<cat>/<n>.jpg|png``, ``mask/<cat>/<n>.png``, ``model/<cat>/<name>/model.obj``

``LoopbackServer`` is a ``ThreadingHTTPServer`` bound to 127.0.0.1 port 0 (loopback only) whose
behaviour per path is configured by the test: plain, drop the connection after K bytes on the
first request, ignore Range, or answer a fixed status.  Every request is counted.
"""

from __future__ import annotations

import http.server
import io
import json
import socket
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

SYNSETS = {"airplane": "02691156", "chair": "03001627"}


def _png(rng: np.random.Generator, size: int, mode: str = "RGBA") -> bytes:
    arr = rng.integers(0, 255, (size, size, len(mode)), dtype=np.uint8)
    if mode == "RGBA":
        arr[..., 3] = 0
        arr[size // 4: 3 * size // 4, size // 4: 3 * size // 4, 3] = 255
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if mode == "L" else arr, mode).save(buf, format="PNG")
    return buf.getvalue()


def make_shapenet_tree(root: Path, per_class: int = 3, n_points: int = 500, seed: int = 0) -> list[tuple[str, str]]:
    """Write both ShapeNet trees under ``root``; returns [(class, model_id), ...]."""
    rng = np.random.default_rng(seed)
    shapes = []
    for ci, (cls, syn) in enumerate(SYNSETS.items()):
        for k in range(per_class):
            mid = f"{ci:02x}{k:06x}" + "ab" * 12  # 32 hex chars, like ShapeNet ids
            pc = root / "ShapeNetV1PointCloud" / syn
            pc.mkdir(parents=True, exist_ok=True)
            pts = rng.normal(size=(n_points, 6 if k == 0 else 3)).astype(np.float32)  # first one carries normals
            np.save(pc / f"{mid}.points.ply.npy", pts)
            rend = root / "ShapeNetV1Renderings" / syn / mid / "rendering"
            rend.mkdir(parents=True, exist_ok=True)
            names = [f"{v:02d}.png" for v in range(24)]
            for n in names:
                (rend / n).write_bytes(_png(rng, 137))
            (rend / "renderings.txt").write_text("\n".join(names) + "\n")
            (rend / "rendering_metadata.txt").write_text(
                "".join(f"{15 * v:.1f} {25.0 + v % 5:.1f} 0 {0.7 + 0.01 * v:.3f} 25\n" for v in range(24))
            )
            shapes.append((cls, mid))
    return shapes


CUBE_OBJ = "".join(f"v {x} {y} {z}\n" for x in (0, 1) for y in (0, 1) for z in (0, 1)) + "".join(
    f"f {a} {b} {c}\n"
    for a, b, c in [(1, 2, 4), (1, 4, 3), (5, 7, 8), (5, 8, 6), (1, 5, 6), (1, 6, 2),
                    (3, 4, 8), (3, 8, 7), (1, 3, 7), (1, 7, 5), (2, 6, 8), (2, 8, 4)]
)


def make_pix3d_tree(root: Path, cats=("chair", "bed", "desk", "tool", "bookcase"), per_cat: int = 3, seed: int = 0) -> list[dict]:
    """Write ``root/pix3d.json``, ``img/``, ``mask/``, ``model/`` (the content of pix3d.zip)."""
    rng = np.random.default_rng(seed)
    records = []
    for cat in cats:
        model = f"model/{cat}/IKEA_{cat.upper()}_1/model.obj"
        (root / model).parent.mkdir(parents=True, exist_ok=True)
        (root / model).write_text(CUBE_OBJ)
        for k in range(per_cat):
            ext = "jpg" if k % 2 else "png"
            img, mask = f"img/{cat}/{k:04d}.{ext}", f"mask/{cat}/{k:04d}.png"
            (root / img).parent.mkdir(parents=True, exist_ok=True)
            (root / mask).parent.mkdir(parents=True, exist_ok=True)
            w, h = 96 + 8 * k, 80
            arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / img, format="JPEG" if ext == "jpg" else "PNG")
            m = np.zeros((h, w), np.uint8)
            m[10:70, 20:80] = 255
            Image.fromarray(m).save(root / mask)
            records.append({
                "img": img, "mask": mask, "model": model, "category": cat, "img_size": [w, h],
                "bbox": [20, 10, 79, 69], "rot_mat": np.eye(3).tolist(), "trans_mat": [0, 0, 2.0],
                "focal_length": 35.0, "cam_position": [0, 0, 2.0], "inplane_rotation": 0.0,
                "truncated": False, "occluded": False, "slightly_occluded": False,
                "model_raw": model.replace("model.obj", "model_raw.obj"), "voxel": model.replace("model.obj", "voxel.mat"),
                "img_source": "test", "model_source": "test", "2d_keypoints": [], "3d_keypoints": "",
            })
    (root / "pix3d.json").write_text(json.dumps(records))
    return records


def zip_tree(src: Path, dest: Path, prefix: str = "") -> Path:
    """Zip every file under ``src`` with member names ``prefix + relative path``."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(src.rglob("*")):
            rel = prefix + p.relative_to(src).as_posix()
            if p.is_dir():
                zf.write(p, rel + "/")
            else:
                zf.write(p, rel)
    return dest


def tar_tree(src: Path, dest: Path, arcname: str, mode: str = "w:gz") -> Path:
    with tarfile.open(dest, mode) as tf:
        tf.add(src, arcname=arcname)
    return dest


# ------------------------------------------------------------------------------ loopback server
@dataclass
class Route:
    body: bytes
    status: int = 200  # e.g. 404 / 500 to answer an error
    drop_after: int | None = None  # first request: close the socket after this many body bytes
    ignore_range: bool = False
    drop_always: bool = False  # drop after `drop_after` bytes on EVERY request
    content_type: str = "application/octet-stream"
    hits: list[str] = field(default_factory=list)  # Range header of every request ("" if none)


class _Handler(http.server.BaseHTTPRequestHandler):
    timeout = 10  # bounded: a stuck client cannot hold a thread forever

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        route: Route | None = self.server.routes.get(self.path)  # type: ignore[attr-defined]
        if route is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range", "")
        route.hits.append(rng)
        if route.status != 200:
            self.send_error(route.status)
            return
        body, start = route.body, 0
        if rng.startswith("bytes=") and not route.ignore_range:
            start = int(rng[6:].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if route.drop_after is not None and (len(route.hits) == 1 or route.drop_always):
            self.wfile.write(payload[: route.drop_after])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(payload)


class LoopbackServer:
    """Context manager: ``with LoopbackServer() as srv: srv.add("/a.zip", Route(data)); srv.url("/a.zip")``."""

    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.routes = {}  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def add(self, path: str, route: Route) -> Route:
        self.httpd.routes[path] = route  # type: ignore[attr-defined]
        return route

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> "LoopbackServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
