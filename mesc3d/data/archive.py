"""Safe extraction of zip and tar(.gz|.bz2|.xz) archives.

File contract
- ``safe_extract(archive, out_dir, top_dir=None, strip_components="auto")`` extracts every
  acceptable member into a temp dir ``out_dir/.extract-<name>-XXXX`` (same file system), then
  renames the result into place.  With ``top_dir="pix3d"`` everything lands in ``out_dir/pix3d``
  (``strip_components="auto"`` drops a single wrapper directory such as ``ShapeNetRendering/``
  unless it looks like data: an 8-digit synset id); without ``top_dir`` each top-level entry of the
  archive is renamed into ``out_dir``.  An existing destination is replaced only with
  ``replace=True`` (the CLI passes it when its own completion marker shows the data is ours).
- Refused (never written, listed in ``ExtractReport.refused`` as ``(member, reason)``): absolute
  paths and drive letters, ``..`` components, device files and FIFOs, symlinks whose target leaves
  the extraction root, hard links to anything that is not an earlier regular member.  A final
  pass also removes symlinks whose *resolved* path leaves the root (chains of links).  Regular
  files are written with mode bits ``& 0o755`` (no setuid/setgid/sticky); hard links become copies.
  ``strict=True`` turns any refusal into an error.
- Size caps (archive bombs): the bytes written may not exceed ``max_bytes`` (default
  ``DEFAULT_MAX_BYTES``, 1 TiB) nor ``max_ratio`` x the archive's size (default 100; every archive
  may reach at least ``RATIO_ALLOWANCE`` = 64 MiB).  Real datasets are far below (JPEG/PNG archives
  ~1x, point clouds ~1.1x, OBJ text ~4x); a zip of zeros is ~1000x.  Checked on the declared sizes
  of a zip before anything is written and on the bytes actually written (declared sizes can lie);
  exceeding either is a ``BadInputError`` and nothing is left behind.
- A truncated or corrupt archive (bad zip directory, CRC error, compressed stream ending early,
  tar cut at a member boundary) raises ``BadInputError(archive, ...)`` and leaves nothing behind.
"""

from __future__ import annotations

import bz2  # noqa: F401  (fail at import time, not mid-extraction, if missing)
import lzma
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

from tqdm import tqdm

from mesc3d.errors import BadInputError

COPY_CHUNK = 1 << 20
DEFAULT_MAX_BYTES = 1 << 40  # 1 TiB
DEFAULT_MAX_RATIO = 100.0
RATIO_ALLOWANCE = 64 << 20  # every archive may extract to at least this many bytes
_SYNSET = re.compile(r"^\d{8}$")
_EXISTS = "already exists and was not extracted by mesc3d download (remove it, or pass --force)"
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, lzma.LZMAError, OSError)


class CorruptArchiveError(BadInputError):
    """The archive itself is unreadable (truncated, corrupt, not an archive)."""


@dataclass
class ExtractReport:
    archive: str
    placed: list[str] = field(default_factory=list)  # paths created in out_dir (top-level entries)
    n_files: int = 0
    n_dirs: int = 0
    n_links: int = 0
    refused: list[tuple[str, str]] = field(default_factory=list)  # (member name, reason)


@dataclass
class _Member:
    name: str  # raw member name
    kind: str  # file | dir | symlink | hardlink | other
    mode: int
    link: str = ""  # link target (symlink/hardlink)
    open: object = None  # () -> BinaryIO for files


# ------------------------------------------------------------------------------ name checks
def member_parts(name: str) -> tuple[str, ...] | str:
    """The safe path components of a member name, or a string saying why it is refused."""
    raw = name.replace("\\", "/")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        return "absolute path"
    parts = tuple(p for p in PurePosixPath(raw).parts if p not in ("", "."))
    if ".." in parts:
        return "'..' component"
    if not parts:
        return "empty name"
    return parts


def _link_inside(link_parts: tuple[str, ...], target: str) -> bool:
    """Does a symlink at ``link_parts`` (relative to the root) pointing to ``target`` stay inside?"""
    target = target.replace("\\", "/")
    if not target or target.startswith("/") or re.match(r"^[A-Za-z]:", target):
        return False
    depth = len(link_parts) - 1  # directory containing the link
    for p in PurePosixPath(target).parts:
        if p == "..":
            depth -= 1
            if depth < 0:
                return False
        elif p not in ("", "."):
            depth += 1
    return True


# ------------------------------------------------------------------------------ readers
def _zip_members(zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if info.is_dir():
            kind = "dir"
        elif stat.S_ISLNK(mode):
            kind = "symlink"
        elif stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            kind = "other"
        else:
            kind = "file"
        link = zf.read(info).decode("utf-8", "replace") if kind == "symlink" else ""
        yield _Member(info.filename, kind, mode & 0o777 or 0o644, link, lambda info=info: zf.open(info))


def _tar_members(tf: tarfile.TarFile) -> Iterator[_Member]:
    for m in tf:
        if m.isdir():
            kind = "dir"
        elif m.issym():
            kind = "symlink"
        elif m.islnk():
            kind = "hardlink"
        elif m.isreg():
            kind = "file"
        else:
            kind = "other"  # char/block devices, FIFOs, contiguous files, ...
        yield _Member(m.name, kind, m.mode, m.linkname, lambda m=m: tf.extractfile(m))


def _check_tar_complete(tf: tarfile.TarFile, path: Path) -> None:
    """tarfile stops silently at a header cut short; catch truncation it does not report."""
    fileobj = tf.fileobj
    if getattr(tf, "_compressed_hint", None) == "":
        if path.stat().st_size < tf.offset + tarfile.BLOCKSIZE:
            raise EOFError(f"archive ends at byte {path.stat().st_size} without the end-of-archive block")
        return
    while fileobj.read(COPY_CHUNK):  # drain the compressed stream: raises EOFError if cut short
        pass


def _open_tar(path: Path) -> tarfile.TarFile:
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic.startswith(b"\x1f\x8b"):
        mode, hint = "r:gz", "gz"
    elif magic.startswith(b"BZh"):
        mode, hint = "r:bz2", "bz2"
    elif magic.startswith(b"\xfd7zXZ\x00"):
        mode, hint = "r:xz", "xz"
    else:
        mode, hint = "r:", ""
    tf = tarfile.open(path, mode)
    tf._compressed_hint = hint  # type: ignore[attr-defined]
    return tf


def archive_kind(path: str | Path) -> str:
    """``"zip"`` or ``"tar"``; anything else is a ``BadInputError``."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "archive does not exist")
    with open(path, "rb") as fh:
        head = fh.read(262)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" or head[257:262] == b"ustar":
        return "tar"
    raise CorruptArchiveError(path, "not a zip or tar(.gz|.bz2|.xz) archive (unknown magic bytes)")


# ------------------------------------------------------------------------------ extraction
class _Budget:
    """Bytes the extraction may still write; ``take`` raises once the cap is passed."""

    def __init__(self, archive: Path, max_bytes: int | None, max_ratio: float | None):
        max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
        max_ratio = DEFAULT_MAX_RATIO if max_ratio is None else float(max_ratio)
        by_ratio = max(int(max_ratio * archive.stat().st_size), RATIO_ALLOWANCE)
        self.archive, self.limit, self.used = archive, min(max_bytes, by_ratio), 0
        self.why = (f"more than {self.limit} bytes (caps: {max_bytes} bytes, {max_ratio:g} x the "
                    f"{archive.stat().st_size}-byte archive)")

    def take(self, n: int, member: str) -> None:
        self.used += n
        if self.used > self.limit:
            raise BadInputError(self.archive, f"would extract {self.why} at member {member!r}: refused as an "
                                              "archive bomb; nothing was extracted")


def _write_file(src: BinaryIO, dst: Path, mode: int, budget: _Budget, name: str) -> None:
    with src, open(dst, "wb") as out:
        for block in iter(lambda: src.read(COPY_CHUNK), b""):
            budget.take(len(block), name)
            out.write(block)
    os.chmod(dst, (mode & 0o755) | 0o600)


def _inside(root_real: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real == root_real or real.startswith(root_real + os.sep)


def _extract_members(members: Iterator[_Member], root: Path, report: ExtractReport, total: int | None,
                     budget: _Budget) -> None:
    """Write the acceptable members under ``root`` (a fresh temp dir only this function writes to).

    Nothing is ever written *through* a symlink of the archive: a member whose path has a symlink
    member as a prefix is refused, so writes cannot escape even via chains of links.
    """
    root_real = os.path.realpath(root)
    files: set[tuple[str, ...]] = set()  # regular files written so far (hard-link targets)
    links: dict[tuple[str, ...], Path] = {}  # symlinks created so far
    for m in tqdm(members, desc="extract", unit="member", total=total, disable=None):
        parts = member_parts(m.name)
        if isinstance(parts, str):
            report.refused.append((m.name, parts))
            continue
        dst = root.joinpath(*parts)
        if m.kind == "other":
            reason = "device file, FIFO or other special member"
        elif any(parts[:k] in links for k in range(1, len(parts))):
            reason = "path goes through a symlink of the archive"
        elif m.kind == "symlink" and not _link_inside(parts, m.link):
            reason = f"symlink to {m.link!r} leaves the target directory"
        elif m.kind == "hardlink" and member_parts(m.link) not in files:
            reason = f"hard link to {m.link!r} is not an earlier regular file of the archive"
        elif m.kind != "dir" and dst.is_dir() and not dst.is_symlink():
            reason = "a file member would replace a directory"
        else:
            reason = ""
        if reason:
            report.refused.append((m.name, reason))
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if m.kind == "dir":
            if parts in links:  # a directory member replaces an earlier symlink of the same name
                links.pop(parts).unlink()
                report.n_links -= 1
            dst.mkdir(exist_ok=True)
            report.n_dirs += 1
            continue
        if dst.is_symlink() or dst.is_file():  # duplicate member: the later one wins, as with tar/unzip
            dst.unlink()
            files.discard(parts)
            if links.pop(parts, None) is not None:
                report.n_links -= 1
            else:
                report.n_files -= 1
        if m.kind == "symlink":
            os.symlink(m.link, dst)
            links[parts] = dst
            report.n_links += 1
            continue
        if m.kind == "hardlink":
            src = root.joinpath(*member_parts(m.link))
            budget.take(src.stat().st_size, m.name)
            shutil.copyfile(src, dst)
        else:
            _write_file(m.open(), dst, m.mode, budget, m.name)
        files.add(parts)
        report.n_files += 1
    for parts, link in links.items():  # chains of individually harmless links may resolve outside
        if not _inside(root_real, str(link)):
            link.unlink()
            report.n_links -= 1
            report.refused.append(("/".join(parts), "symlink resolves outside the target directory"))


def _strip(tmp: Path, strip_components: int | str) -> Path:
    """The directory whose content is placed: ``tmp`` or its single wrapper directory."""
    entries = [p for p in tmp.iterdir()]
    if strip_components == "auto":
        wrapper = len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink()
        n = 1 if wrapper and not _SYNSET.match(entries[0].name) else 0
    else:
        n = int(strip_components)
    base = tmp
    for _ in range(n):
        entries = [p for p in base.iterdir()]
        if len(entries) != 1 or not entries[0].is_dir():
            raise BadInputError(tmp, f"cannot strip {n} leading component(s): {base.name} has {len(entries)} entries")
        base = entries[0]
    return base


def _place(src: Path, dst: Path, replace: bool) -> None:
    if dst.exists() or dst.is_symlink():
        if not replace:
            raise BadInputError(dst, _EXISTS)
        trash = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, trash)
        os.replace(src, dst)
        shutil.rmtree(trash) if trash.is_dir() and not trash.is_symlink() else trash.unlink()
    else:
        os.replace(src, dst)


def safe_extract(
    archive: str | Path,
    out_dir: str | Path,
    top_dir: str | None = None,
    strip_components: int | str = "auto",
    replace: bool = False,
    strict: bool = False,
    max_bytes: int | None = None,
    max_ratio: float | None = None,
) -> ExtractReport:
    """Extract ``archive`` into ``out_dir`` (see module docstring); returns what was done/refused."""
    archive, out_dir = Path(archive), Path(out_dir)
    kind = archive_kind(archive)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExtractReport(str(archive))
    budget = _Budget(archive, max_bytes, max_ratio)
    tmp = Path(tempfile.mkdtemp(prefix=f".extract-{archive.name}-", dir=out_dir))
    try:
        try:
            if kind == "zip":
                with zipfile.ZipFile(archive) as zf:
                    declared = sum(i.file_size for i in zf.infolist())
                    if declared > budget.limit:
                        raise BadInputError(archive, f"declares {declared} bytes of members, {budget.why}: "
                                                     "refused as an archive bomb; nothing was extracted")
                    _extract_members(_zip_members(zf), tmp, report, len(zf.infolist()), budget)
            else:
                with _open_tar(archive) as tf:
                    _extract_members(_tar_members(tf), tmp, report, None, budget)
                    _check_tar_complete(tf, archive)
        except _CORRUPT as err:
            if isinstance(err, OSError) and err.errno is not None:
                raise  # a real system error (disk full, permission): not the archive's fault
            why = f"truncated or corrupt {kind} archive ({type(err).__name__}: {err}); nothing was extracted"
            raise CorruptArchiveError(archive, why) from err
        if strict and report.refused:
            name, why = report.refused[0]
            raise BadInputError(archive, f"{len(report.refused)} unsafe member(s) refused, e.g. {name!r}: {why}")
        if report.n_files == 0:
            raise BadInputError(archive, "archive holds no extractable files")
        base = tmp if top_dir is None and strip_components == "auto" else _strip(tmp, strip_components)
        if top_dir is not None:
            if base == tmp:
                inner = tmp / f".{top_dir}.wrap"
                inner.mkdir()
                for p in list(tmp.iterdir()):
                    if p != inner:
                        os.replace(p, inner / p.name)
                base = inner
            _place(base, out_dir / top_dir, replace)
            report.placed.append(str(out_dir / top_dir))
        else:
            entries = sorted(base.iterdir())
            clash = [p.name for p in entries if (out_dir / p.name).exists() and not replace]
            if clash:  # check all before moving any, so a clash leaves nothing half placed
                raise BadInputError(out_dir / clash[0], _EXISTS)
            for p in entries:
                _place(p, out_dir / p.name, replace)
                report.placed.append(str(out_dir / p.name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report

