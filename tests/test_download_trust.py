"""What a download may trust: TOFU hashes only after a complete, size-checked download that extracts;
416 answers only with a matching Content-Range total; extraction caps (archive bombs); renders that
``prepare`` decodes fully.  Servers are loopback only (127.0.0.1)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile

import pytest

from mesc3d.cli import download as cli
from mesc3d.data.archive import safe_extract
from mesc3d.data.download import _content_range_total, download
from mesc3d.errors import BadInputError
from realdata_layouts import LoopbackServer, Route, make_pix3d_tree, make_shapenet_tree, zip_tree

FAST = ["--retries", "3", "--timeout", "5", "--backoff", "0.001"]
ZERO_MB = 300  # the bomb: 300 MB of zeros


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(scope="module")
def pix3d_zip(tmp_path_factory) -> bytes:
    tmp = tmp_path_factory.mktemp("p3")
    make_pix3d_tree(tmp / "p3", per_cat=2)
    return zip_tree(tmp / "p3", tmp / "pix3d.zip").read_bytes()


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


def test_tofu_not_recorded_for_a_file_that_does_not_extract(server, pix3d_zip, tmp_path):
    page = b"<html><body>Service temporarily unavailable</body></html>" * 20  # an error page as octet-stream
    server.add("/pix3d.zip", Route(page))
    lock, out = tmp_path / "checksums.lock.json", tmp_path / "res"
    argv = ["--url", server.url("/pix3d.zip"), "--sha256", "null", "--lock", str(lock), "--out", str(out),
            "--top-dir", "pix3d", *FAST]
    with pytest.raises(BadInputError, match="not a zip or tar"):
        cli.main(argv)
    assert not lock.exists() or "pix3d" not in json.loads(lock.read_text())  # the bad hash is not trusted
    server.add("/pix3d.zip", Route(pix3d_zip))  # the mirror recovers: the right file is accepted and recorded
    assert cli.main(argv) == 0
    assert json.loads(lock.read_text())["pix3d"]["sha256"] == _sha(pix3d_zip)
    assert json.loads((out / ".complete-pix3d.json").read_text())["sha256_source"] == "recorded"


def test_stale_longer_part_and_416_restart_from_zero(server, pix3d_zip, tmp_path):
    """A .part longer than the file gets a 416 whose total does not match: restart, do not trust it."""
    server.add("/pix3d.zip", Route(pix3d_zip))
    out, lock = tmp_path / "res", tmp_path / "lock.json"
    (out).mkdir()
    (out / "pix3d.zip.part").write_bytes(b"stale" * (len(pix3d_zip) // 5 + 10))
    assert cli.main(["--url", server.url("/pix3d.zip"), "--sha256", "null", "--lock", str(lock), "--out", str(out),
                     "--top-dir", "pix3d", *FAST]) == 0
    assert json.loads(lock.read_text())["pix3d"]["sha256"] == _sha(pix3d_zip)
    assert (out / "pix3d" / "pix3d.json").is_file()


def test_416_accepted_only_when_total_matches(server, pix3d_zip, tmp_path):
    server.add("/f.zip", Route(pix3d_zip))
    dest = tmp_path / "f.zip"
    dest.with_name("f.zip.part").write_bytes(pix3d_zip)  # complete part: 416 bytes */N with N == part size
    res = download(server.url("/f.zip"), dest, retries=2, timeout=5, backoff=0.001)
    assert res.size_checked and res.sha256 == _sha(pix3d_zip)
    assert server.httpd.routes["/f.zip"].hits == [f"bytes={len(pix3d_zip)}-"]
    assert _content_range_total("bytes */1234") == 1234 and _content_range_total("bytes 0-9/10") == 10
    assert _content_range_total("bytes */*") is None and _content_range_total(None) is None


def _zero_zip(path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("pix3d/zeros.bin", "w") as fh:
            block = bytes(1 << 20)
            for _ in range(ZERO_MB):
                fh.write(block)
    return path


def _zero_tgz(path):
    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        info = tarfile.TarInfo("data/zeros.bin")
        info.size = ZERO_MB << 20
        tf.addfile(info, io.BufferedReader(Zeros(info.size)))
    return path


@pytest.mark.parametrize("make", [_zero_zip, _zero_tgz], ids=["zip", "tgz"])
def test_archive_bomb_refused_nothing_left(make, tmp_path):
    arc = make(tmp_path / ("bomb.zip" if make is _zero_zip else "bomb.tgz"))
    assert arc.stat().st_size < 2 << 20  # a few hundred KB for 300 MB
    out = tmp_path / "out"
    with pytest.raises(BadInputError, match="archive bomb"):
        safe_extract(arc, out, top_dir="x")
    assert list(out.iterdir()) == []
    # a generous explicit cap lets it through (the caps are settings, not hard-wired)
    if make is _zero_zip:
        with pytest.raises(BadInputError, match="archive bomb"):
            safe_extract(arc, out, top_dir="x", max_ratio=1e6, max_bytes=100 << 20)  # absolute cap
        assert list(out.iterdir()) == []


def _prepare_cfg(tmp_path, root):
    run = tmp_path / "run.yaml"
    run.write_text("preset: small\ndata:\n  source: shapenet\n"
                   f"  root: {root}\n  prepared: {tmp_path / 'prepared'}\n"
                   "  categories: [airplane, chair]\n  n_gt_points: 64\n  image_size: 32\n")
    return run


@pytest.mark.parametrize("damage,why", [("truncate", "truncated or unreadable"), ("small", "must be square")])
def test_prepare_decodes_every_render(tmp_path, damage, why):
    from mesc3d.cli import prepare
    from PIL import Image

    root = tmp_path / "sn"
    shapes = make_shapenet_tree(root, per_class=3, n_points=200)
    cls, mid = shapes[-1]
    png = root / "ShapeNetV1Renderings" / ("03001627" if cls == "chair" else "02691156") / mid / "rendering" / "17.png"
    if damage == "truncate":
        png.write_bytes(png.read_bytes()[: len(png.read_bytes()) * 2 // 3])  # header intact, data cut
        with Image.open(png) as im:  # the header alone still looks fine
            assert im.size == (137, 137) and im.mode == "RGBA"
    else:
        Image.new("RGBA", (137, 100)).save(png)
    with pytest.raises(BadInputError, match=why) as err:
        prepare.main(["--config", str(_prepare_cfg(tmp_path, root))])
    assert str(png) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "prepared").exists()
