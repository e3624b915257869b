"""``mesc3d download``: fetch (or take a local copy of) one archive, verify it, extract it safely.

Usage
    mesc3d download --out DIR (--url URL [--url ALTERNATE ...] | --local-archive PATH)
                    [--sha256 HEX|null] [--size BYTES] [--lock FILE | --no-verify]
                    [--name NAME] [--extract | --no-extract] [--top-dir NAME]
                    [--strip-components auto|N] [--archive PATH] [--keep-archive]
                    [--retries N] [--timeout S] [--backoff S] [--marker NAME] [--strict] [--force]

File contract
- inputs: the URL(s) (tried in order; ``gdrive://<id>`` and Drive share links allowed, see
  ``mesc3d.data.download``) or ``--local-archive PATH`` (a file the user already has; it wins
  over ``--url`` when given and is verified the same way but never moved or deleted).
- outputs, all under ``--out DIR``:
  * extracted data: ``DIR/<top-dir>/...`` (with ``--top-dir``) or the archive's top-level entries;
  * ``DIR/<archive file name>``: the downloaded archive, deleted after a successful extraction
    unless ``--keep-archive`` or ``--no-extract``; ``DIR/<archive>.part`` while downloading;
  * the marker ``DIR/<marker>`` (default ``.complete-<name>.json``), written LAST and atomically:
    ``{name, url, urls, local_archive, sha256, sha256_source, size, members, n_dirs, n_links,
    refused: [[member, reason], ...], placed: [...], archive}``.  Snakemake rules depend on it.
- Verification: ``--sha256 HEX`` (and ``--size``) are checked.  When the hash is unknown
  (``--sha256 null`` or omitted), either ``--lock FILE`` (trust on first use: the hash and size of
  the first good download are recorded in that JSON file under ``--name`` and every later download
  or local copy must match them; commit the file or copy it to the cluster).  "Good" means: the
  whole file arrived with the size given by ``--size`` or announced by the server, and (unless
  ``--no-extract``) it extracted without error; only then is the hash recorded or an explicit
  ``--no-verify`` is required; otherwise the command refuses to run.
- Re-running with an existing marker does nothing (``--force`` redoes the work); an existing
  destination directory not created by this command is never replaced without ``--force``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import fcntl
import json
import logging
import os
import urllib.parse
from pathlib import Path

from mesc3d.cli._common import setup_logging
from mesc3d.data.archive import DEFAULT_MAX_BYTES, DEFAULT_MAX_RATIO, CorruptArchiveError, safe_extract
from mesc3d.data.download import WEIGHTS_KINDS, check_local, copy_verified, download, weights_kind, weights_problem
from mesc3d.errors import BadInputError, ConfigError
from mesc3d.io import write_json

log = logging.getLogger("mesc3d.download")
_NULL = {"", "null", "none", "None"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mesc3d download", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, type=Path, help="directory the archive is extracted into")
    p.add_argument("--url", action="append", default=[], help="source URL; repeat for alternates (tried in order)")
    p.add_argument("--local-archive", default="", help="use this already-downloaded file instead of the URL")
    p.add_argument(
        "--sha256", default="", help="expected SHA-256 (hex); 'null' = unknown (then --lock or --no-verify)"
    )
    p.add_argument("--size", default="", help="expected size in bytes ('null' = unknown)")
    p.add_argument("--lock", type=Path, default=None, help="JSON file: record the hash on first download, verify later")
    p.add_argument("--no-verify", action="store_true", help="accept the file without any hash (explicit opt-out)")
    p.add_argument("--name", default="", help="source name (lock key, marker name); default: archive file stem")
    p.add_argument("--extract", action=argparse.BooleanOptionalAction, default=True, help="extract into --out")
    p.add_argument("--top-dir", default=None, help="place the extracted content in DIR/<top-dir> (e.g. pix3d)")
    p.add_argument("--strip-components", default="auto", help="'auto' (drop one non-data wrapper dir) or an integer")
    p.add_argument("--archive", type=Path, default=None, help="where to store the download (default DIR/<file name>)")
    p.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive after extraction")
    p.add_argument("--retries", type=int, default=5, help="attempts without progress before giving up on a URL")
    p.add_argument("--timeout", type=float, default=60.0, help="socket time-out in seconds")
    p.add_argument("--backoff", type=float, default=2.0, help="first retry delay in seconds (doubles, max 120 s)")
    p.add_argument("--marker", default="", help="marker file name in --out (default .complete-<name>.json)")
    p.add_argument("--max-bytes", type=int, default=None,
                   help=f"refuse an archive that would extract to more bytes (default {DEFAULT_MAX_BYTES})")
    p.add_argument("--max-ratio", type=float, default=None,
                   help=f"refuse an archive that extracts to more than RATIO x its size (default {DEFAULT_MAX_RATIO:g}; "
                        "small archives get a 64 MiB allowance)")
    p.add_argument("--kind", default="auto", choices=["auto", "none", *WEIGHTS_KINDS],
                   help="with --no-extract: what the file must load as before it is trusted (auto: from the "
                        "file name, .pt/.pth/.bin = torch checkpoint or TorchScript, .safetensors)")
    p.add_argument("--strict", action="store_true", help="fail (instead of skipping) on unsafe archive members")
    p.add_argument("--force", action="store_true", help="redo even if the marker exists; replace existing data")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def _none_if_null(value: str) -> str | None:
    return None if value is None or str(value).strip() in _NULL else str(value).strip()


def _file_name(url: str) -> str:
    name = Path(urllib.parse.urlparse(url).path).name
    return name if "." in name and "download" not in name else ""


def _utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.contextmanager
def _locked(lock: Path):
    """Exclusive flock on ``<lock>.flock`` so concurrent download jobs do not lose entries."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock.with_name(lock.name + ".flock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_lock(lock: Path) -> dict:
    if not lock.exists():
        return {}
    try:
        data = json.loads(lock.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{lock}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{lock}: expected a JSON object name -> {{sha256, size}}")
    return data


def _record_lock(lock: Path, name: str, entry: dict) -> None:
    with _locked(lock):
        data = read_lock(lock)
        old = data.get(name)
        if old and old.get("sha256") != entry["sha256"]:
            raise ConfigError(f"{lock}: {name} is recorded with SHA-256 {old.get('sha256')}, got {entry['sha256']}")
        if not old:
            data[name] = entry
            write_json(lock, data)
            log.info("recorded SHA-256 of %s in %s (trust on first use)", name, lock)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    urls = [u for u in args.url if _none_if_null(u)]
    local = _none_if_null(args.local_archive)
    if not urls and not local:
        raise ConfigError("mesc3d download: give --url (one or more) or --local-archive")
    first_name = _file_name(urls[0]) if urls else Path(local).name
    name = args.name or args.top_dir or (first_name.split(".")[0] if first_name else "")
    if not name:
        raise ConfigError(f"{urls[0]}: cannot infer a file name from this URL; pass --name")
    sha = _none_if_null(args.sha256)
    size_s = _none_if_null(args.size)
    if size_s is not None and not size_s.isdigit():
        raise ConfigError(f"mesc3d download: --size {size_s!r} is not a byte count (a non-negative integer or null)")
    size = int(size_s) if size_s is not None else None
    if args.strip_components != "auto" and not str(args.strip_components).isdigit():
        raise ConfigError(f"mesc3d download: --strip-components {args.strip_components!r} is not 'auto' or a "
                          "non-negative integer")
    sha_source = "given" if sha else "unverified"
    if args.lock is not None and sha is None:
        entry = read_lock(args.lock).get(name)
        if entry:
            sha, sha_source = entry["sha256"], "lock"
            size = size if size is not None else entry.get("size")
    if sha is None and args.lock is None and not args.no_verify:
        raise ConfigError(
            f"no SHA-256 known for {name!r}: pass --sha256 HEX, or --lock FILE to record it on the first "
            "download (trust on first use), or --no-verify to accept the file unchecked"
        )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    marker = out / (args.marker or f".complete-{name}.json")
    ours = marker.exists()
    if ours and not args.force:
        done = json.loads(marker.read_text())
        if sha is None or done.get("sha256") == sha:
            log.info("%s: already complete (%s); use --force to redo", name, marker)
            return 0
        log.info("%s: marker records another SHA-256; redoing", name)
    if ours:
        marker.unlink()  # a failed redo must not leave a stale marker behind

    file_name = first_name or f"{name}.archive"
    archive_path = args.archive or out / file_name
    used_url = None
    if local:
        digest = check_local(local, sha, size)
        src = Path(local).resolve()
        if not args.extract:
            copy_verified(src, archive_path, digest, None)
            src = archive_path
        log.info("%s: using local archive %s (sha256 %s)", name, local, digest)
    else:
        res = download(
            urls, archive_path, sha, size, retries=args.retries, timeout=args.timeout, backoff=args.backoff
        )
        digest, src, used_url = res.sha256, res.path, res.url
        log.info("%s: got %s (%d bytes, sha256 %s, %d request(s))", name, res.url, res.size, digest, res.attempts)
    kind = weights_kind(src, args.kind) if not args.extract else None
    if kind:  # a weights file is trusted (lock entry, marker) only once it loads as what it claims to be
        problem = weights_problem(src, kind)
        if problem:
            where = local or used_url
            if Path(src) != Path(local or "").resolve():  # our copy/download: moved aside, never used again
                bad = Path(src).with_name(f"{Path(src).name}.bad-{digest[:8]}")
                os.replace(src, bad)
                problem += f"; moved aside to {bad}"
            raise BadInputError(where, f"not a usable {kind} weights file: {problem}; nothing was recorded")
        log.info("%s: loads as a %s weights file", name, kind)
    actual_size = Path(src).stat().st_size
    size_checked = bool(local) or res.size_checked

    info = {"members": 0, "n_dirs": 0, "n_links": 0, "refused": [], "placed": []}
    kept = str(src)
    if args.extract:
        strip = args.strip_components if args.strip_components == "auto" else int(args.strip_components)
        try:
            report = safe_extract(
                src, out, top_dir=args.top_dir, strip_components=strip, replace=ours or args.force, strict=args.strict,
                max_bytes=args.max_bytes, max_ratio=args.max_ratio,
            )
        except CorruptArchiveError:
            if not local:  # a corrupt download is never used again (the user's own file is left alone)
                bad = Path(src).with_name(f"{Path(src).name}.bad-{digest[:8]}")
                os.replace(src, bad)
                log.error("%s: moved the unusable archive aside to %s", name, bad)
            raise
        for member, why in report.refused:
            log.warning("%s: refused member %r: %s", name, member, why)
        info = {
            "members": report.n_files, "n_dirs": report.n_dirs, "n_links": report.n_links,
            "refused": [list(r) for r in report.refused],
            "placed": [os.path.relpath(p, out) for p in report.placed],
        }
        if not local and not args.keep_archive:
            Path(src).unlink()
            kept = None
        log.info("%s: extracted %d files into %s (%d refused)", name, report.n_files, out, len(report.refused))
    # trust on first use: record only a file that is complete (size-checked) and, unless --no-extract,
    # has just extracted; a stale .part or an error page must never become the trusted hash
    if args.lock is not None and sha_source == "unverified":
        if size_checked:
            entry = {"sha256": digest, "size": actual_size, "source": used_url or str(local), "recorded_utc": _utc()}
            _record_lock(args.lock, name, entry)
            sha_source = "recorded"
        else:
            log.warning("%s: the server announced no size, so the SHA-256 %s is NOT recorded in %s; pass --size "
                        "or --sha256 to pin it", name, digest, args.lock)
    write_json(marker, {
        "name": name, "url": used_url, "urls": urls, "local_archive": local, "sha256": digest,
        "sha256_source": sha_source, "size": actual_size, "archive": kept, "finished_utc": _utc(), **info,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
