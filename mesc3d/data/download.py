"""Resumable, verified HTTP(S) downloads with the standard library only (``urllib``).

File contract
- ``download(urls, dest, sha256=None, size=None, ...)`` writes ``dest`` atomically: bytes stream
  into ``dest.part``; only after the size and SHA-256 checks pass is it renamed onto ``dest``.
  ``dest`` therefore either does not exist or is the complete, verified file.
- Resume: an existing ``dest.part`` (left by a dropped connection or a killed job) is continued
  with an HTTP ``Range: bytes=N-`` request.  A ``206`` whose ``Content-Range`` starts at ``N`` is
  appended; a server that ignores ``Range`` (answers ``200``) or starts elsewhere makes us restart
  from byte 0; ``416`` means the part is already complete (it is then verified like any other).
- Retries: network errors, time-outs, truncated bodies and HTTP 408/425/429/5xx are retried with
  exponential back-off ``min(backoff * 2**k, max_backoff)``; ``k`` counts consecutive attempts
  that made no progress and the download gives up after ``retries`` of them.  Progress means the
  ``.part`` grew beyond the most bytes it ever held, so a long flaky download keeps going while a
  dead server, or one that ignores ``Range`` and always drops at the same point, does not.
  Other 4xx (404, 403, ...) are permanent: no retry for that URL, the next alternate URL is tried.
- Verification: ``size`` (bytes) and ``sha256`` (hex) when given.  A mismatch moves the file aside
  to ``<name>.bad-<sha8>`` (never used again) and raises ``BadInputError`` naming both hashes.
  The hash is computed while streaming (a resumed ``.part`` is hashed once from disk first).
- An HTML answer (``Content-Type: text/html``) is never taken for an archive: it is a login,
  quota or "virus scan" page.

Google Drive
  ``gdrive://<file-id>`` and the usual ``drive.google.com/file/d/<id>/...``, ``uc?id=<id>`` and
  ``open?id=<id>`` links are rewritten to the direct endpoint
  ``https://drive.usercontent.google.com/download?id=<id>&export=download&confirm=t`` (the
  ``confirm=t`` parameter skips the "cannot scan this file for viruses" page of large files).  If
  Drive still answers with its HTML warning form, the form's action and hidden fields (``id``,
  ``export``, ``confirm``, ``uuid``) are followed once.  If the answer is still HTML (daily quota
  exceeded, file not public) the download stops with a one-line error that points to the
  documented manual step: open the link in a browser, save the file, and pass it as
  ``local_archive`` / ``--local-archive`` (docs/real-data.md).  Drive *folder* links cannot be
  downloaded without the Drive API and are rejected with the same pointer.
"""

from __future__ import annotations

import hashlib
import html.parser
import http.client
import json
import logging
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from mesc3d.errors import BadInputError, UserFacingError, quote
from mesc3d.safe_load import load_torch

log = logging.getLogger(__name__)

USER_AGENT = "mesc3d-download/0.1 (+https://github.com/; urllib)"
CHUNK = 1 << 20  # bytes per read
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
MAX_ATTEMPTS = 10_000  # absolute cap on requests per download, whatever the server does
MANUAL_HINT = (
    "download it in a browser and pass the file with --local-archive "
    "(config key local_archive), see docs/real-data.md"
)


@dataclass(frozen=True)
class DownloadResult:
    path: Path  # the verified file
    url: str  # the URL that delivered it
    sha256: str  # hex digest of the file (computed even when none was expected)
    size: int  # bytes
    resumed: bool  # a previous .part was continued at least once
    attempts: int  # HTTP requests made in total
    size_checked: bool = False  # the size equals ``size`` or the total the server announced


class _Retryable(Exception):
    """Transient failure: retry the same URL after back-off."""


class _Permanent(Exception):
    """This URL will not work (404, HTML page, size disagreement): try the next alternate."""


# ----------------------------------------------------------------------------------- Google Drive
_GDRIVE_ID = re.compile(r"^[A-Za-z0-9_-]{10,}$")


def gdrive_direct_url(file_id: str) -> str:
    return (
        "https://drive.usercontent.google.com/download?"
        + urllib.parse.urlencode({"id": file_id, "export": "download", "confirm": "t"})
    )


def resolve_url(url: str) -> str:
    """Rewrite Google-Drive share links to the direct endpoint; other URLs are returned as-is."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "gdrive":
        file_id = parsed.netloc or parsed.path.lstrip("/")
        if not _GDRIVE_ID.match(file_id):
            raise UserFacingError(f"{url}: not a Google-Drive file id")
        return gdrive_direct_url(file_id)
    if parsed.scheme not in ("http", "https", "ftp"):  # ftp: urllib's handler, no Range (restarts)
        raise UserFacingError(f"{url}: only http(s)://, ftp:// and gdrive:// URLs are supported")
    if parsed.netloc in ("drive.google.com", "docs.google.com"):
        if "/folders/" in parsed.path:
            raise UserFacingError(f"{url}: a Google-Drive folder cannot be downloaded by URL; {MANUAL_HINT}")
        m = re.search(r"/file/d/([A-Za-z0-9_-]+)", parsed.path)
        query = urllib.parse.parse_qs(parsed.query)
        file_id = m.group(1) if m else (query.get("id") or [""])[0]
        if file_id:
            return gdrive_direct_url(file_id)
    return url


class _FormParser(html.parser.HTMLParser):
    """Collect the first <form action=...> and its <input type=hidden name value>."""

    def __init__(self):
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action")
        elif tag == "input" and a.get("name") and self.action is not None:
            self.fields[a["name"]] = a.get("value") or ""


def gdrive_form_url(page: str, base_url: str) -> str | None:
    """The URL Drive's "download anyway" form submits to (GET), or None if the page has no form."""
    parser = _FormParser()
    parser.feed(page)
    if not parser.action or "id" not in parser.fields:
        return None
    action = urllib.parse.urljoin(base_url, parser.action)
    return action + ("&" if "?" in action else "?") + urllib.parse.urlencode(parser.fields)


# ------------------------------------------------------------------------------------ streaming
def _hash_existing(path: Path) -> "hashlib._Hash":
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h


def _content_range_start(value: str | None) -> tuple[int, int | None] | None:
    m = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", value or "")
    if not m:
        return None
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), total


def _content_range_total(value: str | None) -> int | None:
    """TOTAL of a ``Content-Range: bytes */TOTAL`` (a 416's) or ``bytes A-B/TOTAL`` header, else None."""
    m = re.match(r"bytes\s+(?:\*|\d+-\d+)/(\d+)\s*$", value or "")
    return int(m.group(1)) if m else None


def _attempt(url: str, part: Path, size: int | None, timeout: float, state: dict, pbar) -> None:
    """One HTTP request that appends to ``part``; raises _Retryable/_Permanent or returns when done."""
    start = part.stat().st_size if part.exists() else 0
    if start and state.get("hash_len") != start:  # hash what is already on disk (new process)
        state["hash"], state["hash_len"] = _hash_existing(part), start
    if not start:
        state["hash"], state["hash_len"] = hashlib.sha256(), 0
    if size is not None and start >= size:
        if start == size:
            return  # complete already; verified by the caller
        part.unlink()  # longer than the expected file: cannot be a prefix of it
        state["hash"], state["hash_len"], start = hashlib.sha256(), 0, 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    state["attempts"] += 1
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and start:  # nothing beyond `start`: complete only if the server's total says so
            cr = _content_range_total(err.headers.get("Content-Range") if err.headers else None)
            if cr == start and (size is None or size == start):
                state["total"] = cr
                return
            log.warning("%s: HTTP 416 with Content-Range %r for a %d-byte part; restarting from byte 0",
                        url, err.headers.get("Content-Range") if err.headers else None, start)
            part.unlink()
            state["hash"], state["hash_len"] = hashlib.sha256(), 0
            raise _Retryable("HTTP 416 whose Content-Range total does not match the partial file") from err
        if err.code in RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {err.code} {err.reason}") from err
        raise _Permanent(f"HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Retryable(f"{type(err).__name__}: {getattr(err, 'reason', err)}") from err
    with resp:
        ctype = resp.headers.get("Content-Type", "")
        if ctype.startswith("text/html"):
            state["html"] = resp.read(1 << 20).decode("utf-8", "replace")
            state["html_url"] = resp.geturl()
            raise _Permanent("server answered with an HTML page instead of the file")
        mode = "ab"
        if start and resp.status == 206:
            cr = _content_range_start(resp.headers.get("Content-Range"))
            if cr is None or cr[0] != start:
                got = resp.headers.get("Content-Range")
                log.warning("%s: unexpected Content-Range %r; restarting from byte 0", url, got)
                part.unlink()
                raise _Retryable("bad Content-Range")
            total = cr[1]
            state["resumed"] = True
        else:
            if start:
                log.info("%s ignores Range requests; restarting from byte 0", url)
            mode, start = "wb", 0
            state["hash"], state["hash_len"] = hashlib.sha256(), 0
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        if size is not None and total is not None and total != size:
            raise _Permanent(f"server reports {total} bytes, expected {size}")
        state["total"] = total
        pbar.total = total or size
        pbar.n = start
        pbar.refresh()
        h = state["hash"]
        with open(part, mode) as fh:
            while True:
                try:
                    block = resp.read(CHUNK)
                except (OSError, http.client.HTTPException) as err:  # IncompleteRead, reset, timeout
                    fh.flush()
                    state["hash_len"] = fh.tell()
                    raise _Retryable(f"connection lost after {fh.tell()} bytes ({type(err).__name__})") from err
                if not block:
                    break
                fh.write(block)
                h.update(block)
                pbar.update(len(block))
            fh.flush()
            os.fsync(fh.fileno())
            state["hash_len"] = fh.tell()
        if total is not None and state["hash_len"] < total:
            raise _Retryable(f"body ended after {state['hash_len']} of {total} bytes")


def verify_file(
    path: Path, sha256: str | None, size: int | None, what: str, digest: str | None = None, final: Path | None = None
) -> str:
    """Check ``size``/``sha256`` of a finished file; on mismatch move it to ``<final>.bad-<sha8>`` and raise."""
    digest = digest or _hash_existing(path).hexdigest()
    actual = path.stat().st_size
    problem = None
    if size is not None and actual != size:
        problem = f"size mismatch: expected {size} bytes, got {actual}"
    elif sha256 and digest.lower() != sha256.lower():
        problem = f"SHA-256 mismatch: expected {sha256.lower()}, got {digest}"
    if problem:
        final = final or path
        bad = final.with_name(f"{final.name}.bad-{digest[:8]}")
        os.replace(path, bad)
        raise BadInputError(what, f"{problem}; the file was moved aside to {bad} and will not be used")
    return digest


def download(
    urls: str | list[str],
    dest: str | Path,
    sha256: str | None = None,
    size: int | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 2.0,
    max_backoff: float = 120.0,
    progress: bool | None = None,
) -> DownloadResult:
    """Download the first working URL of ``urls`` to ``dest`` (resumable, verified, atomic).

    ``progress=None`` shows a bar only on a terminal (tqdm ``disable=None``).  Raises
    ``UserFacingError`` after every URL failed (message lists each URL's last error) and
    ``BadInputError`` when the file arrived but its size or hash is wrong.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise UserFacingError(f"{dest}: no URL given")
    if retries < 1:
        raise ValueError(f"retries must be >= 1, got {retries}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if dest.exists():  # an earlier verified download (e.g. --keep-archive): reuse it if it still matches
        if sha256:
            digest = _hash_existing(dest).hexdigest()
            if digest == sha256.lower() and (size is None or dest.stat().st_size == size):
                log.info("%s: already present and verified; not downloading again", dest)
                return DownloadResult(dest, f"existing:{dest}", digest, dest.stat().st_size, False, 0)
            bad = dest.with_name(f"{dest.name}.bad-{digest[:8]}")
            os.replace(dest, bad)
            log.warning("%s: present but does not match the expected SHA-256; moved aside to %s", dest, bad)
        else:
            log.info("%s: present but no SHA-256 to check it against; downloading again", dest)
    errors: list[str] = []
    state = {"attempts": 0, "resumed": False, "total": None}
    for raw_url in urls:
        url = resolve_url(raw_url)
        tried_form = False
        failures, high = 0, part.stat().st_size if part.exists() else 0  # high: most bytes ever on disk
        disable = None if progress is None else not progress
        with tqdm(desc=dest.name, unit="B", unit_scale=True, unit_divisor=1024, disable=disable) as pbar:
            while True:
                try:
                    _attempt(url, part, size, timeout, state, pbar)
                    break
                except _Retryable as err:
                    now = part.stat().st_size if part.exists() else 0
                    failures, high = (0, now) if now > high else (failures + 1, high)
                    if failures >= retries or state["attempts"] >= MAX_ATTEMPTS:
                        errors.append(f"{raw_url}: {err} (gave up after {retries} attempts without progress)")
                        url = None
                        break
                    wait = min(backoff * 2 ** max(failures - 1, 0), max_backoff)
                    log.warning("%s: %s; retrying in %.1f s", raw_url, err, wait)
                    time.sleep(wait)
                except _Permanent as err:
                    page = state.pop("html", None)
                    form = gdrive_form_url(page, state.pop("html_url", url)) if page else None
                    if form and not tried_form and "google" in urllib.parse.urlparse(url).netloc:
                        tried_form, url = True, form
                        continue
                    hint = f"; {MANUAL_HINT}" if page else ""
                    errors.append(f"{raw_url}: {err}{hint}")
                    url = None
                    break
        if url is None:
            if part.exists() and sha256 is None and size is None:
                part.unlink()  # unverifiable bytes must not be resumed from another mirror
            continue
        digest = state["hash"].hexdigest() if state.get("hash_len") == part.stat().st_size else None
        try:
            digest = verify_file(part, sha256, size, f"{dest} (from {raw_url})", digest, final=dest)
        except BadInputError as err:
            if raw_url == urls[-1] and not errors:
                raise
            errors.append(str(err))
            log.warning("%s", err)
            continue
        got = part.stat().st_size
        checked = (size is not None and got == size) or state.get("total") == got
        os.replace(part, dest)
        return DownloadResult(dest, raw_url, digest, got, state["resumed"], state["attempts"], checked)
    raise UserFacingError(f"{dest}: download failed from every URL: " + " | ".join(errors))


def copy_verified(src: str | Path, dest: str | Path, sha256: str | None, size: int | None) -> str:
    """Copy a local file atomically to ``dest`` after checking it (``src`` itself is never moved)."""
    src, dest = Path(src), Path(dest)
    digest = check_local(src, sha256, size)
    part = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, part)
    os.replace(part, dest)
    return digest


def check_local(path: str | Path, sha256: str | None, size: int | None) -> str:
    """Verify a user-supplied archive in place (not moved on mismatch: it is the user's file)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "local archive does not exist")
    actual = path.stat().st_size
    if size is not None and actual != size:
        raise BadInputError(path, f"size mismatch: expected {size} bytes, got {actual}")
    digest = _hash_existing(path).hexdigest()
    if sha256 and digest.lower() != sha256.lower():
        raise BadInputError(path, f"SHA-256 mismatch: expected {sha256.lower()}, got {digest}")
    return digest



# --------------------------------------------------------------------------- weights validation
WEIGHTS_KINDS = ("torch", "torch_checkpoint", "torchscript", "safetensors", "transformers")
_SUFFIX_KIND = {".pt": "torch", ".pth": "torch", ".bin": "torch", ".ckpt": "torch", ".safetensors": "safetensors"}


def weights_kind(path: str | Path, kind: str) -> str | None:
    """``auto`` -> the kind a weights file name implies (None: not a weights file); else ``kind``."""
    if kind == "auto":
        return _SUFFIX_KIND.get(Path(path).suffix.lower())
    return None if kind == "none" else kind


def weights_problem(path: str | Path, kind: str) -> str | None:
    """Why ``path`` is not a usable weights file of ``kind`` (None when it loads as one).

    torch_checkpoint: ``torch.load(weights_only=True)`` gives a dict or tensor; torchscript:
    ``torch.jit.load`` works; torch: either of the two (Point-MAE .pth or OpenAI's CLIP JIT .pt);
    safetensors: the header parses and every tensor's bytes are in the file; transformers: a folder
    with a readable config.json and a weights file that passes its own check."""
    path = Path(path)
    if kind == "transformers":
        if not path.is_dir():
            return "not a folder (a transformers model is a folder with config.json)"
        try:
            json.loads((path / "config.json").read_text())
        except (OSError, ValueError) as err:
            return f"config.json is missing or not JSON ({type(err).__name__})"
        for name, sub in (("model.safetensors", "safetensors"), ("pytorch_model.bin", "torch_checkpoint")):
            if (path / name).is_file():
                return weights_problem(path / name, sub)
        return "holds neither model.safetensors nor pytorch_model.bin"
    if not path.is_file():
        return "file does not exist"
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"{\"error")):
        return "it is a web page, not weights (a login, quota or error page)"
    if kind == "safetensors":
        return _safetensors_problem(path)
    import warnings

    with warnings.catch_warnings():  # torch's deprecation / dispatch notes are not the user's problem
        warnings.simplefilter("ignore")
        return _torch_problem(path, kind)


def _torch_problem(path: Path, kind: str) -> str | None:
    import torch

    problems = []
    if kind in ("torch", "torch_checkpoint"):
        try:
            obj = load_torch(path, "torch checkpoint", mmap=True)
            if isinstance(obj, (dict, torch.Tensor)) or (kind == "torch" and isinstance(obj, torch.jit.ScriptModule)):
                return None
            problems.append(f"torch.load gives a {type(obj).__name__}, not a state dict")
        except BadInputError as err:  # truncated zip, pickle of arbitrary objects, garbage
            problems.append(quote(err.problem, 200))
    if kind in ("torch", "torchscript"):
        try:
            torch.jit.load(str(path), map_location="cpu")
            return None
        except Exception as err:
            problems.append(f"not a TorchScript archive ({type(err).__name__})")
    return "; ".join(problems) or f"unknown weights kind {kind!r}"


def _safetensors_problem(path: Path) -> str | None:
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if not 2 <= n <= min(size - 8, 100 << 20):
                return f"header length {n} does not fit a {size}-byte file"
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as err:
        return f"not a safetensors file ({type(err).__name__})"
    if not isinstance(header, dict):
        return "safetensors header is not a JSON object"
    ends = [v.get("data_offsets", [0, 0])[1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    if ends and 8 + n + max(ends) > size:
        return f"truncated: the header needs {8 + n + max(ends)} bytes, the file has {size}"
    return None
