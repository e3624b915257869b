"""Downloads against a loopback HTTP server (127.0.0.1 only): resume, retries, checksums, CLI."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from mesc3d.cli import download as cli
from mesc3d.cli import main as mesc3d_main
from mesc3d.data.download import download, gdrive_form_url, resolve_url
from mesc3d.errors import BadInputError, ConfigError, UserFacingError
from realdata_layouts import LoopbackServer, Route, make_pix3d_tree, make_shapenet_tree, tar_tree, zip_tree

FAST = ["--retries", "3", "--timeout", "5", "--backoff", "0.001"]


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, bytes]:
    """The three real archives, in their published layouts, as bytes."""
    tmp = tmp_path_factory.mktemp("arch")
    make_shapenet_tree(tmp / "sn", per_class=2, n_points=300)
    make_pix3d_tree(tmp / "p3", per_cat=2)
    return {
        "pc": zip_tree(tmp / "sn" / "ShapeNetV1PointCloud", tmp / "pc.zip", "ShapeNetV1PointCloud/").read_bytes(),
        "rend": tar_tree(tmp / "sn" / "ShapeNetV1Renderings", tmp / "r.tgz", "ShapeNetRendering").read_bytes(),
        "pix3d": zip_tree(tmp / "p3", tmp / "pix3d.zip").read_bytes(),
    }


@pytest.fixture
def server():
    with LoopbackServer() as srv:
        yield srv


def test_full_download_and_extract_real_layouts(server, archives, tmp_path):
    for path, key in [("/ShapeNetV1PointCloud.zip", "pc"), ("/ShapeNetRendering.tgz", "rend"), ("/data/pix3d.zip", "pix3d")]:
        server.add(path, Route(archives[key]))
    root = tmp_path / "resources"
    jobs = [
        ("/ShapeNetV1PointCloud.zip", "pc", "ShapeNetV1PointCloud"),
        ("/ShapeNetRendering.tgz", "rend", "ShapeNetV1Renderings"),
        ("/data/pix3d.zip", "pix3d", "pix3d"),
    ]
    for path, key, top in jobs:
        argv = ["--url", server.url(path), "--sha256", _sha(archives[key]), "--size", str(len(archives[key])),
                "--out", str(root), "--top-dir", top, *FAST]
        assert cli.main(argv) == 0
        marker = json.loads((root / f".complete-{top}.json").read_text())
        assert marker["sha256"] == _sha(archives[key]) and marker["sha256_source"] == "given"
        assert marker["refused"] == [] and marker["placed"] == [top] and marker["archive"] is None
    assert marker["members"] == 5 * 2 * 2 + 5 + 1  # img + mask per record, one obj per category, json
    npys = sorted((root / "ShapeNetV1PointCloud").glob("*/*.points.ply.npy"))
    assert len(npys) == 4 and np.load(npys[0]).dtype == np.float32
    views = sorted((root / "ShapeNetV1Renderings").glob("*/*/rendering/*.png"))
    assert len(views) == 4 * 24
    assert (root / "pix3d" / "pix3d.json").is_file()
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [
        "ShapeNetV1PointCloud", "ShapeNetV1Renderings", "pix3d"]  # archives removed, no temp dirs
    hits = {p: len(r.hits) for p, r in server.httpd.routes.items()}
    assert cli.main(argv) == 0  # marker present: nothing is downloaded again
    assert {p: len(r.hits) for p, r in server.httpd.routes.items()} == hits


def test_resume_after_dropped_connection(server, archives, tmp_path):
    body = archives["rend"]
    route = server.add("/r.tgz", Route(body, drop_after=len(body) // 3))
    res = download(server.url("/r.tgz"), tmp_path / "r.tgz", _sha(body), len(body), retries=3, backoff=0.001, timeout=5)
    assert res.resumed and res.attempts == 2 and res.sha256 == _sha(body)
    assert route.hits == ["", f"bytes={len(body) // 3}-"]
    assert (tmp_path / "r.tgz").read_bytes() == body and not (tmp_path / "r.tgz.part").exists()


def test_resume_from_part_left_by_killed_process(server, archives, tmp_path):
    body = archives["pc"]
    route = server.add("/pc.zip", Route(body))
    (tmp_path / "pc.zip.part").write_bytes(body[:1000])
    res = download(server.url("/pc.zip"), tmp_path / "pc.zip", _sha(body), retries=2, backoff=0.001, timeout=5)
    assert route.hits == ["bytes=1000-"] and res.resumed and res.sha256 == _sha(body)


def test_server_ignoring_range_restarts_from_zero(server, archives, tmp_path):
    body = archives["pc"]
    route = server.add("/pc.zip", Route(body, drop_after=5000, ignore_range=True))
    res = download(server.url("/pc.zip"), tmp_path / "pc.zip", _sha(body), len(body), retries=3, backoff=0.001, timeout=5)
    assert not res.resumed and route.hits == ["", "bytes=5000-"]
    assert (tmp_path / "pc.zip").read_bytes() == body


def test_server_ignoring_range_and_always_dropping_gives_up(server, archives, tmp_path):
    body = archives["pc"]
    route = server.add("/pc.zip", Route(body, drop_after=5000, ignore_range=True, drop_always=True))
    with pytest.raises(UserFacingError, match="gave up after 3 attempts without progress"):
        download(server.url("/pc.zip"), tmp_path / "pc.zip", _sha(body), len(body), retries=3, backoff=0.001, timeout=5)
    assert len(route.hits) == 4  # first attempt made progress (5000 bytes), then 3 without


def test_checksum_mismatch_moves_file_aside(server, archives, tmp_path, capsys):
    body = archives["pix3d"]
    server.add("/pix3d.zip", Route(body))
    out = tmp_path / "root"
    wrong = "0" * 64
    rc = mesc3d_main(["download", "--url", server.url("/pix3d.zip"), "--sha256", wrong, "--out", str(out), "--top-dir", "pix3d", *FAST])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "SHA-256 mismatch" in err and wrong in err and _sha(body) in err and "moved aside" in err
    bad = out / f"pix3d.zip.bad-{_sha(body)[:8]}"
    assert bad.read_bytes() == body
    assert sorted(p.name for p in out.iterdir()) == [bad.name]  # no data, no .part, no marker


def test_truncated_archive_clear_error_nothing_left(server, archives, tmp_path):
    body = archives["rend"][: len(archives["rend"]) // 2]  # the mirror serves a cut file (hash unknown)
    server.add("/ShapeNetRendering.tgz", Route(body))
    out = tmp_path / "root"
    with pytest.raises(BadInputError, match="truncated or corrupt"):
        cli.main(["--url", server.url("/ShapeNetRendering.tgz"), "--no-verify", "--out", str(out),
                  "--top-dir", "ShapeNetV1Renderings", *FAST])
    assert [p.name for p in out.iterdir()] == [f"ShapeNetRendering.tgz.bad-{_sha(body)[:8]}"]


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors_clear_message_after_retries(server, tmp_path, status):
    route = server.add("/x.zip", Route(b"", status=status))
    with pytest.raises(UserFacingError, match=f"HTTP {status}") as info:
        cli.main(["--url", server.url("/x.zip"), "--sha256", "ab" * 32, "--out", str(tmp_path / "o"), *FAST])
    # 5xx is transient: retried `--retries` times; 404 is permanent: asked once
    assert len(route.hits) == (3 if status == 500 else 1)
    assert "download failed from every URL" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "o" / "x.zip.part").exists()
    assert not list((tmp_path / "o").glob(".complete-*"))


def test_alternate_url_used_when_first_is_dead(server, archives, tmp_path):
    body = archives["pc"]
    server.add("/dead/pc.zip", Route(b"", status=404))
    server.add("/mirror/pc.zip", Route(body))
    out = tmp_path / "o"
    assert cli.main(["--url", server.url("/dead/pc.zip"), "--url", server.url("/mirror/pc.zip"), "--sha256", _sha(body),
                     "--out", str(out), "--top-dir", "ShapeNetV1PointCloud", "--keep-archive", *FAST]) == 0
    marker = json.loads((out / ".complete-ShapeNetV1PointCloud.json").read_text())
    assert marker["url"].endswith("/mirror/pc.zip") and (out / "pc.zip").read_bytes() == body
    n_hits = len(server.httpd.routes["/mirror/pc.zip"].hits)
    assert cli.main(["--url", server.url("/mirror/pc.zip"), "--sha256", _sha(body), "--out", str(out),
                     "--top-dir", "ShapeNetV1PointCloud", "--force", *FAST]) == 0  # kept archive reused
    assert len(server.httpd.routes["/mirror/pc.zip"].hits) == n_hits and not (out / "pc.zip").exists()
    assert len(list((out / "ShapeNetV1PointCloud").glob("*/*.npy"))) == 4


def test_unknown_hash_needs_lock_or_no_verify_and_lock_is_enforced(server, archives, tmp_path):
    body = archives["pix3d"]
    server.add("/pix3d.zip", Route(body))
    url = server.url("/pix3d.zip")
    with pytest.raises(ConfigError, match="no SHA-256 known"):
        cli.main(["--url", url, "--sha256", "null", "--out", str(tmp_path / "a")])
    lock = tmp_path / "checksums.lock.json"
    assert cli.main(["--url", url, "--sha256", "null", "--lock", str(lock), "--out", str(tmp_path / "a"), "--top-dir", "pix3d", *FAST]) == 0
    entry = json.loads(lock.read_text())["pix3d"]
    assert entry["sha256"] == _sha(body) and entry["size"] == len(body)
    server.add("/pix3d.zip", Route(body[:-10] + b"0123456789"))  # the mirror now serves other bytes
    with pytest.raises(BadInputError, match="SHA-256 mismatch"):
        cli.main(["--url", url, "--lock", str(lock), "--out", str(tmp_path / "b"), "--top-dir", "pix3d", *FAST])


def test_local_archive_verified_extracted_and_left_alone(archives, tmp_path):
    local = tmp_path / "mine" / "ShapeNetV1PointCloud.zip"
    local.parent.mkdir()
    local.write_bytes(archives["pc"])
    out = tmp_path / "root"
    with pytest.raises(BadInputError, match="SHA-256 mismatch"):
        cli.main(["--local-archive", str(local), "--sha256", "1" * 64, "--out", str(out), "--top-dir", "ShapeNetV1PointCloud"])
    assert local.read_bytes() == archives["pc"]  # the user's file is never moved
    assert cli.main(["--url", "http://127.0.0.1:9/never-used.zip", "--local-archive", str(local),
                     "--sha256", _sha(archives["pc"]), "--out", str(out), "--top-dir", "ShapeNetV1PointCloud"]) == 0
    assert len(list((out / "ShapeNetV1PointCloud").glob("*/*.npy"))) == 4 and local.exists()
    marker = json.loads((out / ".complete-ShapeNetV1PointCloud.json").read_text())
    assert marker["local_archive"] == str(local) and marker["url"] is None


def test_html_page_is_never_taken_for_the_archive(server, tmp_path):
    server.add("/quota.zip", Route(b"<html>Too many users have viewed this file</html>", content_type="text/html; charset=utf-8"))
    with pytest.raises(UserFacingError, match="HTML page.*--local-archive"):
        download(server.url("/quota.zip"), tmp_path / "q.zip", retries=2, backoff=0.001, timeout=5)
    assert not (tmp_path / "q.zip").exists()


def test_google_drive_links():
    direct = "https://drive.usercontent.google.com/download?id=1OG-IxPSJok3in78uSAX26GiIJUa-kt2Y&export=download&confirm=t"
    assert resolve_url("gdrive://1OG-IxPSJok3in78uSAX26GiIJUa-kt2Y") == direct
    assert resolve_url("https://drive.google.com/file/d/1OG-IxPSJok3in78uSAX26GiIJUa-kt2Y/view?usp=sharing") == direct
    assert resolve_url("https://drive.google.com/uc?id=1OG-IxPSJok3in78uSAX26GiIJUa-kt2Y&export=download") == direct
    assert resolve_url("http://pix3d.csail.mit.edu/data/pix3d.zip") == "http://pix3d.csail.mit.edu/data/pix3d.zip"
    with pytest.raises(UserFacingError, match="folder"):
        resolve_url("https://drive.google.com/drive/folders/1If_-t0Aw9Zps-gj5ttgaMSTqRwYms9Ag")
    page = ('<html><form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
            '<input type="submit" value="Download anyway"/><input type="hidden" name="id" value="ABCDEFGHIJK">'
            '<input type="hidden" name="export" value="download"><input type="hidden" name="confirm" value="t">'
            '<input type="hidden" name="uuid" value="1234-5678"></form></html>')
    assert gdrive_form_url(page, "https://drive.usercontent.google.com/x") == (
        "https://drive.usercontent.google.com/download?id=ABCDEFGHIJK&export=download&confirm=t&uuid=1234-5678")
    assert gdrive_form_url("<html>quota</html>", "https://x") is None


def test_download_extract_prepare_load(server, tmp_path):
    """The whole real-data path: served archives -> mesc3d download -> mesc3d prepare -> ReconDataset."""
    torch = pytest.importorskip("torch")
    from mesc3d.cli import prepare
    from mesc3d.config import load_config
    from mesc3d.data.dataset import ReconDataset

    src = tmp_path / "src"
    make_shapenet_tree(src / "sn", per_class=5, n_points=400)
    make_pix3d_tree(src / "p3", per_cat=2)
    served = {
        "/ShapeNetV1PointCloud.zip": zip_tree(src / "sn" / "ShapeNetV1PointCloud", tmp_path / "pc.zip", "ShapeNetV1PointCloud/"),
        "/ShapeNetRendering.tgz": tar_tree(src / "sn" / "ShapeNetV1Renderings", tmp_path / "r.tgz", "ShapeNetRendering"),
        "/pix3d.zip": zip_tree(src / "p3", tmp_path / "pix3d.zip"),
    }
    root, lock = tmp_path / "resources" / "shapenet", tmp_path / "checksums.lock.json"
    for (path, arc), top in zip(served.items(), ["ShapeNetV1PointCloud", "ShapeNetV1Renderings", "pix3d"]):
        server.add(path, Route(arc.read_bytes()))
        assert cli.main(["--url", server.url(path), "--sha256", "null", "--lock", str(lock), "--out", str(root),
                         "--top-dir", top, *FAST]) == 0
    assert sorted(json.loads(lock.read_text())) == ["ShapeNetV1PointCloud", "ShapeNetV1Renderings", "pix3d"]
    run = tmp_path / "run.yaml"
    run.write_text(
        "preset: small\ndata:\n  source: shapenet\n"
        f"  root: {root}\n  prepared: {tmp_path / 'prepared'}\n"
        "  categories: [airplane, chair]\n  n_gt_points: 64\n  image_size: 32\n"
    )
    assert prepare.main(["--config", str(run), "--workers", "1"]) == 0
    cfg = load_config(run)
    prepared = tmp_path / "prepared"
    for split in ("train", "val", "test", "zeroshot"):
        assert (prepared / f"{split}.npz").is_file()
    test = ReconDataset(prepared / "test.npz", cfg.data, ["airplane", "chair"], train=False)
    item = test[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["points"].shape == (64, 3) and 0.99 < float(np.linalg.norm(np.asarray(item["points"]), axis=1).max()) <= 1.0001
    assert int(item["class_id"]) in (0, 1)
    zs = ReconDataset(prepared / "zeroshot.npz", cfg.data, list(cfg.data.unseen_categories), train=False)
    assert len(zs) == 4 * 2 and zs[0]["image"].shape == (3, 32, 32) and int(zs[0]["class_id"]) >= 0
