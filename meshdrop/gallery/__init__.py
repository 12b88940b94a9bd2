"""A static, offline gallery page of a run's assets: ``write_gallery(out_dir, entries)``.

The page needs no network: model-viewer's bundle is copied beside it, and every asset,
thumbnail and photo is referenced by a relative path inside ``out_dir``. It works both opened
from disk (assets embedded as classic scripts, see ``embed``) and served (``serve``).
"""

from __future__ import annotations

import html
import json
import os
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote

from meshdrop_contract import TERMINAL_STATES, JobState

from .embed import ENV_EMBED_MB, EmbedPlan, embed_limit_bytes, write_data_scripts

#: model-viewer's UMD build: a classic script, which browsers load from disk (the ES module
#: build is CORS-fetched and so refused on file:// pages).
MODEL_VIEWER_JS = "model-viewer-umd.min.js"
#: Overrides where model-viewer's UMD bundle is copied from (default: the repository's
#: node_modules).
ENV_MODEL_VIEWER_JS = "MESHDROP_MODEL_VIEWER_JS"
_NPM_PATH = Path("node_modules/@google/model-viewer/dist") / MODEL_VIEWER_JS
#: Files outside ``out_dir`` are copied here so the page stays self-contained.
FILES_DIR = "files"
#: Formats model-viewer renders; others get a download link only.
_PREVIEWABLE = {".glb", ".gltf"}


@dataclass(frozen=True, slots=True)
class GalleryEntry:
    """One job on the page.

    ``asset``, ``thumbnail`` and ``photo`` are local files (inside ``out_dir`` or copied there);
    failed and rejected jobs have no asset and show ``error``.
    """

    name: str
    status: JobState | str
    asset: Path | None = None
    thumbnail: Path | None = None
    photo: Path | None = None
    error: str | None = None
    job_id: str | None = None
    faces: int | None = None
    vertices: int | None = None
    seconds: float | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)


def model_viewer_js() -> Path:
    """Path of model-viewer's bundle to copy beside the page.

    Raises
    ------
    FileNotFoundError
        Saying how to install it.
    """
    candidates = []
    if override := os.environ.get(ENV_MODEL_VIEWER_JS):
        candidates.append(Path(override))
    candidates += [Path.cwd() / _NPM_PATH, Path(__file__).resolve().parents[2] / _NPM_PATH]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{MODEL_VIEWER_JS} not found (looked in {', '.join(map(str, candidates))}): "
        f"run `npm install` in the repository or set {ENV_MODEL_VIEWER_JS}."
    )


def _local(out_dir: Path, path: Path | None, index: int) -> str | None:
    """URL of ``path`` relative to the page, copying it in when it lies outside ``out_dir``."""
    if path is None:
        return None
    if not path.is_file():
        raise FileNotFoundError(f"gallery file {path} does not exist")
    resolved, root = path.resolve(), out_dir.resolve()
    if not resolved.is_relative_to(root):
        dest = root / FILES_DIR / f"{index:04d}-{path.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(resolved, dest)
        resolved = dest
    return "/".join(quote(p) for p in resolved.relative_to(root).parts)


def _fmt_metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping | list):
        return json.dumps(value, default=str)
    return str(value)


def _urls(out_dir: Path, entry: GalleryEntry, index: int) -> dict[str, str | None]:
    """The entry's files as URLs relative to the page (copied into ``out_dir`` if need be)."""
    return {
        "asset": _local(out_dir, entry.asset, index),
        "thumb": _local(out_dir, entry.thumbnail, index),
        "photo": _local(out_dir, entry.photo, index),
    }


def _status(entry: GalleryEntry) -> str:
    return entry.status.value if isinstance(entry.status, JobState) else str(entry.status)


def _previewable(entry: GalleryEntry) -> bool:
    return entry.asset is not None and entry.asset.suffix.lower() in _PREVIEWABLE


def _reason_in_preview(entry: GalleryEntry, urls: dict[str, str | None]) -> bool:
    return bool(entry.error) and not urls["asset"] and not urls["thumb"]


def _preview(
    entry: GalleryEntry, entry_id: str, urls: dict[str, str | None], embed: str | None
) -> str:
    """The card's picture: a 3D viewer, the thumbnail, or why there is nothing to show."""
    e = html.escape
    asset, thumb = urls["asset"], urls["thumb"]
    if asset and _previewable(entry):
        poster = f' poster="{thumb}"' if thumb else ""
        # No src: page.js sets it, to the URL when served or to a blob: URL from disk.
        data_embed = f' data-embed="{embed}"' if embed else ""
        return (
            f'<div class="viewer"><model-viewer data-entry="{entry_id}" data-src="{asset}"'
            f'{data_embed}{poster} alt="{e(entry.name)}" loading="eager" reveal="auto"'
            ' camera-controls shadow-intensity="1"></model-viewer>'
            '<p class="viewer-note" role="status" hidden></p></div>'
        )
    if thumb:
        return f'<img class="nopreview" src="{thumb}" alt="{e(entry.name)} preview">'
    if asset:
        return '<div class="nopreview">no 3D preview for this format</div>'
    if _reason_in_preview(entry, urls):  # a failed or rejected job: why, where the model would be
        # A superseded job is no failure: a newer upload of the key made (or makes) the asset.
        kind = "" if _status(entry) == JobState.SUPERSEDED.value else " problem"
        return (
            f'<div class="nopreview{kind}"><p class="reason">{e(_status(entry).lower())}: '
            f"{e(entry.error or '')}</p></div>"
        )
    return '<div class="nopreview">no asset</div>'


def _facts(entry: GalleryEntry) -> str:
    facts: list[tuple[str, str]] = []
    if entry.job_id:
        facts.append(("job", entry.job_id))
    if entry.faces is not None:
        facts.append(("faces", f"{entry.faces:,}"))
    if entry.vertices is not None:
        facts.append(("vertices", f"{entry.vertices:,}"))
    if entry.seconds is not None:
        facts.append(("seconds", f"{entry.seconds:.1f}"))
    facts += [(str(k), _fmt_metric(v)) for k, v in sorted(entry.metrics.items())]
    return "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts)


def _card(entry: GalleryEntry, index: int, urls: dict[str, str | None], embed: str | None) -> str:
    e = html.escape
    status = _status(entry)
    status_class = status if status in TERMINAL_STATES else "other"
    asset, photo = urls["asset"], urls["photo"]
    entry_id = f"entry-{index}"
    parts = [f'<article class="card" id="{entry_id}" data-status="{e(status)}">']
    parts.append(f"<h2>{e(entry.name)}</h2>")
    parts.append(f'<span class="status {status_class}">{e(status)}</span>')
    preview = _preview(entry, entry_id, urls, embed)
    parts.append(preview)
    if entry.error and not _reason_in_preview(entry, urls):
        parts.append(f'<p class="reason">{e(entry.error)}</p>')
    photo_html = f'<img src="{photo}" alt="source photo of {e(entry.name)}">' if photo else ""
    parts.append(f'<div class="row">{photo_html}<dl>{_facts(entry)}</dl></div>')
    if asset and entry.asset:
        parts.append(
            f'<a class="download" href="{asset}" download>download {e(entry.asset.name)}</a>'
        )
    parts.append("</article>")
    return "\n".join(parts)


def _problems(entries: Sequence[GalleryEntry]) -> str:
    """A list, above the cards, of the jobs that made no asset and why (links to their cards)."""
    rows = [
        f'<li><a href="#entry-{n}">{html.escape(entry.name)}</a> '
        f"<b>{html.escape(_status(entry).lower())}</b>: "
        f'<span class="why">{html.escape(entry.error or "no reason recorded")}</span></li>'
        for n, entry in enumerate(entries)
        if entry.asset is None
        and _status(entry) in {JobState.FAILED.value, JobState.REJECTED.value}
    ]
    if not rows:
        return ""
    return (
        f'<section class="problems" id="problems"><h2>{len(rows)} without an asset</h2>'
        f"<ul>{''.join(rows)}</ul></section>"
    )


def _serve_note(out_dir: Path, plan: EmbedPlan) -> str:
    """What the page says, opened from disk, when some assets were too large to embed."""
    folder = shlex.quote(str(out_dir.resolve()))
    return (
        f"{len(plan.left_out)} 3D asset(s) ({plan.left_out_bytes / 1e6:.3g} MB) are not shown: "
        "this page was opened from disk, and it carries at most "
        f"{plan.limit_bytes / 1e6:g} MB of assets for that (the {ENV_EMBED_MB} setting). "
        "To see every asset, serve the folder: pass <code>--serve</code> to the command that "
        "writes the gallery, or run "
        f"<code>python3 -m http.server --bind 127.0.0.1 --directory {html.escape(folder)}</code> "
        "and open <code>http://127.0.0.1:8000/</code>."
    )


def _summary(entries: Sequence[GalleryEntry]) -> str:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[_status(entry)] = counts.get(_status(entry), 0) + 1
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "no jobs"
    return f"{len(entries)} jobs: {summary} · written {when}"


def write_gallery(
    out_dir: Path,
    entries: Sequence[GalleryEntry],
    *,
    title: str = "meshdrop gallery",
    embed_mb: float | None = None,
) -> Path:
    """Write ``out_dir/index.html`` (and model-viewer's bundle) showing ``entries``.

    Parameters
    ----------
    out_dir
        Folder of the page; created. Entry files outside it are copied into ``files/``.
    entries
        The jobs to show, in order.
    title
        Page title.
    embed_mb
        Megabytes of 3D assets embedded in ``gallery-data/`` so the page works opened from
        disk; default ``$MESHDROP_GALLERY_EMBED_MB`` or 50. Past it, the page says to serve it.

    Returns
    -------
    Path
        The written ``index.html``.

    Raises
    ------
    FileNotFoundError
        An entry names a file that does not exist, or model-viewer's bundle is missing.
    ValueError
        The embedding limit is not a number >= 0.
    """
    limit = embed_limit_bytes(embed_mb)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_viewer_js(), out_dir / MODEL_VIEWER_JS)
    urls = [_urls(out_dir, entry, n) for n, entry in enumerate(entries)]
    embeddable = [
        (f"entry-{n}", e.asset) for n, e in enumerate(entries) if e.asset and _previewable(e)
    ]
    plan = write_data_scripts(out_dir, embeddable, limit)
    cards = [
        _card(entry, n, urls[n], plan.scripts.get(f"entry-{n}")) for n, entry in enumerate(entries)
    ]
    page = Template(resources.files(__name__).joinpath("template.html").read_text("utf-8"))
    text = page.substitute(
        title=html.escape(title),
        summary=html.escape(_summary(entries)),
        model_viewer_js=MODEL_VIEWER_JS,
        script=resources.files(__name__).joinpath("page.js").read_text("utf-8"),
        serve_note=_serve_note(out_dir, plan) if plan.left_out else "",
        problems=_problems(entries),
        cards="\n".join(cards),
    )
    index = out_dir / "index.html"
    index.write_text(text, encoding="utf-8")
    return index


__all__ = ["GalleryEntry", "write_gallery"]
