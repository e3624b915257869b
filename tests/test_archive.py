"""Safe extraction (mesc3d.data.archive): real layouts, refusals, truncation leaves nothing behind."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mesc3d.data.archive import member_parts, safe_extract
from mesc3d.errors import BadInputError
from realdata_layouts import make_pix3d_tree, make_shapenet_tree, tar_tree, zip_tree


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _add_special(tf: tarfile.TarFile, name: str, kind: bytes, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    tf.addfile(info)


@pytest.fixture(scope="module")
def shapenet_src(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    make_shapenet_tree(src, per_class=2, n_points=200)
    return src


def test_member_parts_rules():
    assert member_parts("a/b/c.png") == ("a", "b", "c.png")
    assert member_parts("./a//b") == ("a", "b")
    assert member_parts("/etc/passwd") == "absolute path"
    assert member_parts("C:\\x\\y") == "absolute path"
    assert member_parts("a/../../x") == "'..' component"
    assert member_parts("a\\..\\..\\x") == "'..' component"


def test_zip_with_wrapper_dir_into_top_dir(shapenet_src, tmp_path):
    arc = zip_tree(shapenet_src / "ShapeNetV1PointCloud", tmp_path / "ShapeNetV1PointCloud.zip", "ShapeNetV1PointCloud/")
    out = tmp_path / "out"
    rep = safe_extract(arc, out, top_dir="ShapeNetV1PointCloud")
    assert rep.refused == [] and rep.n_files == 4
    assert _listing(out / "ShapeNetV1PointCloud") == _listing(shapenet_src / "ShapeNetV1PointCloud")
    f = next((out / "ShapeNetV1PointCloud").rglob("*.points.ply.npy"))
    assert np.array_equal(np.load(f), np.load(shapenet_src / f.relative_to(out)))
    assert [p.name for p in out.iterdir()] == ["ShapeNetV1PointCloud"]  # no temp dir left


def test_cvgl_tgz_wrapper_renamed_and_synset_dirs_not_stripped(shapenet_src, tmp_path):
    # cvgl's ShapeNetRendering.tgz wraps the synset dirs in ShapeNetRendering/: auto-strip renames it
    arc = tar_tree(shapenet_src / "ShapeNetV1Renderings", tmp_path / "ShapeNetRendering.tgz", "ShapeNetRendering")
    rep = safe_extract(arc, tmp_path / "a", top_dir="ShapeNetV1Renderings")
    assert rep.n_files == 4 * 26
    assert _listing(tmp_path / "a" / "ShapeNetV1Renderings") == _listing(shapenet_src / "ShapeNetV1Renderings")
    # an archive whose single top-level entry is a synset dir is NOT stripped
    one = tar_tree(shapenet_src / "ShapeNetV1Renderings" / "02691156", tmp_path / "one.tar.bz2", "02691156", "w:bz2")
    safe_extract(one, tmp_path / "b", top_dir="ShapeNetV1Renderings")
    assert (tmp_path / "b" / "ShapeNetV1Renderings" / "02691156").is_dir()


def test_pix3d_zip_without_wrapper(tmp_path):
    src = tmp_path / "pix3d_src"
    recs = make_pix3d_tree(src, per_cat=2)
    arc = zip_tree(src, tmp_path / "pix3d.zip")
    rep = safe_extract(arc, tmp_path / "root", top_dir="pix3d")
    assert (tmp_path / "root" / "pix3d" / "pix3d.json").is_file()
    for r in recs:
        for key in ("img", "mask", "model"):
            assert (tmp_path / "root" / "pix3d" / r[key]).is_file()
    assert rep.placed == [str(tmp_path / "root" / "pix3d")]


def test_no_top_dir_places_top_level_entries(shapenet_src, tmp_path):
    arc = tar_tree(shapenet_src / "ShapeNetV1PointCloud", tmp_path / "pc.tar.xz", "ShapeNetV1PointCloud", "w:xz")
    safe_extract(arc, tmp_path / "o")
    assert (tmp_path / "o" / "ShapeNetV1PointCloud" / "03001627").is_dir()


def test_zip_slip_and_absolute_members_refused(tmp_path):
    arc = tmp_path / "evil.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("good/a.txt", "ok")
        zf.writestr("../evil.txt", "pwned")
        zf.writestr("good/../../evil2.txt", "pwned")
        zf.writestr("/tmp/abs_evil.txt", "pwned")
        link = zipfile.ZipInfo("good/link")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "../../outside")  # symlink escaping the target
        inner = zipfile.ZipInfo("good/inner")
        inner.external_attr = (0o120777 << 16)
        zf.writestr(inner, "a.txt")  # harmless symlink inside
    out = tmp_path / "deep" / "out"
    rep = safe_extract(arc, out)
    reasons = dict(rep.refused)
    assert set(reasons) == {"../evil.txt", "good/../../evil2.txt", "/tmp/abs_evil.txt", "good/link"}
    assert "leaves the target" in reasons["good/link"]
    assert (out / "good" / "a.txt").read_text() == "ok"
    assert (out / "good" / "inner").is_symlink() and (out / "good" / "inner").read_text() == "ok"
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil2.txt").exists()
    assert not Path("/tmp/abs_evil.txt").exists()
    with pytest.raises(BadInputError, match="unsafe member"):
        safe_extract(arc, tmp_path / "strict", strict=True)
    assert not (tmp_path / "strict").exists() or _listing(tmp_path / "strict") == []


def test_tar_links_devices_refused(tmp_path):
    arc = tmp_path / "evil.tar"
    with tarfile.open(arc, "w") as tf:
        _add_bytes(tf, "d/file.txt", b"data")
        _add_special(tf, "d/up", tarfile.SYMTYPE, "../../../etc")
        _add_special(tf, "d/abs", tarfile.SYMTYPE, "/etc/passwd")
        _add_special(tf, "d/hard", tarfile.LNKTYPE, "/etc/passwd")
        _add_special(tf, "d/hard_ok", tarfile.LNKTYPE, "d/file.txt")
        _add_special(tf, "d/fifo", tarfile.FIFOTYPE)
        _add_special(tf, "d/dev", tarfile.CHRTYPE)
        _add_special(tf, "d/sub", tarfile.SYMTYPE, "x")  # fine alone ...
        _add_special(tf, "d/x", tarfile.SYMTYPE, "..")  # ... also fine alone (points at the root)
        _add_special(tf, "d/y", tarfile.SYMTYPE, "x/..")  # textually inside, really root/.. = outside
        _add_bytes(tf, "d/up/pwned.txt", b"through the link")  # goes through a refused link: written inside
        _add_special(tf, "a", tarfile.SYMTYPE, "b/..")  # root/b/.. = root: inside (b does not exist yet)
        _add_special(tf, "b", tarfile.SYMTYPE, ".")  # root: inside; but now a = root/.. = outside
        _add_bytes(tf, "a/escaped/x.txt", b"pwned")  # would create dirs outside: refused
    out = tmp_path / "out"
    rep = safe_extract(arc, out)
    refused = dict(rep.refused)
    assert {"d/up", "d/abs", "d/hard", "d/fifo", "d/dev"} <= set(refused)
    assert refused["a/escaped/x.txt"] == "path goes through a symlink of the archive"
    assert "resolves outside" in refused["a"] and not (tmp_path / "escaped").exists()
    assert "resolves outside" in refused["d/y"] and not (out / "d" / "y").is_symlink()
    assert (out / "d" / "sub").is_symlink()
    assert "d/hard_ok" not in refused and (out / "d" / "hard_ok").read_bytes() == b"data"
    assert not (out / "d" / "hard_ok").is_symlink()
    assert (out / "d" / "up" / "pwned.txt").is_file() and not (out / "d" / "up").is_symlink()
    assert not (tmp_path / "etc").exists()
    for p in out.rglob("*"):  # nothing extracted resolves outside
        assert str(p.resolve()).startswith(str(out.resolve()))


@pytest.mark.parametrize("fmt", ["zip", "tgz", "tar_mid", "tar_boundary"])
def test_truncated_archive_clear_error_nothing_left(fmt, shapenet_src, tmp_path):
    src = shapenet_src / "ShapeNetV1PointCloud"
    if fmt == "zip":
        full = zip_tree(src, tmp_path / "a.zip").read_bytes()
        cut = full[: len(full) * 2 // 3]
    elif fmt == "tgz":
        full = tar_tree(src, tmp_path / "a.tgz", "ShapeNetV1PointCloud").read_bytes()
        cut = full[: len(full) * 2 // 3]
    else:
        full = tar_tree(src, tmp_path / "a.tar", "ShapeNetV1PointCloud", "w").read_bytes()
        with tarfile.open(tmp_path / "a.tar") as tf:
            members = tf.getmembers()
        last = members[-1]
        cut = full[: last.offset_data + 100] if fmt == "tar_mid" else full[: last.offset]
    bad = tmp_path / f"bad.{fmt}"
    bad.write_bytes(cut)
    out = tmp_path / "out"
    with pytest.raises(BadInputError, match="truncated or corrupt"):
        safe_extract(bad, out, top_dir="ShapeNetV1PointCloud")
    assert _listing(out) == []


def test_not_an_archive_and_existing_destination(tmp_path, shapenet_src):
    junk = tmp_path / "x.zip"
    junk.write_bytes(b"<html>quota exceeded</html>")
    with pytest.raises(BadInputError, match="not a zip or tar"):
        safe_extract(junk, tmp_path / "o")
    arc = zip_tree(shapenet_src / "ShapeNetV1PointCloud", tmp_path / "pc.zip")
    (tmp_path / "o" / "pc").mkdir(parents=True)
    (tmp_path / "o" / "pc" / "mine.txt").write_text("user data")
    with pytest.raises(BadInputError, match="already exists"):
        safe_extract(arc, tmp_path / "o", top_dir="pc")
    assert (tmp_path / "o" / "pc" / "mine.txt").exists()
    safe_extract(arc, tmp_path / "o", top_dir="pc", replace=True)
    assert not (tmp_path / "o" / "pc" / "mine.txt").exists()
    assert (tmp_path / "o" / "pc" / "02691156").is_dir()
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["pc"]
