"""A static, offline gallery page of a run's assets: ``write_gallery(out_dir, entries)``.

The page needs no network: model-viewer's bundle is copied beside it, and every asset,
thumbnail and photo is referenced by a relative path inside ``out_dir``.
"""

from __future__ import annotations

import html
import json
import os
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

MODEL_VIEWER_JS = "model-viewer.min.js"
#: Overrides where model-viewer's bundle is copied from (default: the repository's node_modules).
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


def _card(out_dir: Path, entry: GalleryEntry, index: int) -> str:
    e = html.escape
    status = entry.status.value if isinstance(entry.status, JobState) else str(entry.status)
    status_class = status if status in TERMINAL_STATES else "other"
    asset = _local(out_dir, entry.asset, index)
    thumb = _local(out_dir, entry.thumbnail, index)
    photo = _local(out_dir, entry.photo, index)
    entry_id = f"entry-{index}"
    parts = [f'<article class="card" id="{entry_id}" data-status="{e(status)}">']
    parts.append(f"<h2>{e(entry.name)}</h2>")
    parts.append(f'<span class="status {status_class}">{e(status)}</span>')
    if asset and entry.asset and entry.asset.suffix.lower() in _PREVIEWABLE:
        poster = f' poster="{thumb}"' if thumb else ""
        parts.append(
            f'<model-viewer data-entry="{entry_id}" src="{asset}"{poster} alt="{e(entry.name)}"'
            ' loading="eager" reveal="auto" camera-controls'
            ' shadow-intensity="1"></model-viewer>'
        )
    elif thumb:
        parts.append(f'<img class="nopreview" src="{thumb}" alt="{e(entry.name)} preview">')
    else:
        note = "no 3D preview for this format" if asset else "no asset"
        parts.append(f'<div class="nopreview">{note}</div>')
    if entry.error:
        parts.append(f'<p class="reason">{e(entry.error)}</p>')
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
    details = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    photo_html = f'<img src="{photo}" alt="source photo of {e(entry.name)}">' if photo else ""
    parts.append(f'<div class="row">{photo_html}<dl>{details}</dl></div>')
    if asset and entry.asset:
        parts.append(
            f'<a class="download" href="{asset}" download>download {e(entry.asset.name)}</a>'
        )
    parts.append("</article>")
    return "\n".join(parts)


def write_gallery(
    out_dir: Path, entries: Sequence[GalleryEntry], *, title: str = "meshdrop gallery"
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

    Returns
    -------
    Path
        The written ``index.html``.

    Raises
    ------
    FileNotFoundError
        An entry names a file that does not exist, or model-viewer's bundle is missing.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_viewer_js(), out_dir / MODEL_VIEWER_JS)
    cards = [_card(out_dir, entry, n) for n, entry in enumerate(entries)]
    counts: dict[str, int] = {}
    for entry in entries:
        status = entry.status.value if isinstance(entry.status, JobState) else str(entry.status)
        counts[status] = counts.get(status, 0) + 1
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "no jobs"
    page = Template(resources.files(__package__).joinpath("template.html").read_text("utf-8"))
    text = page.substitute(
        title=html.escape(title),
        summary=html.escape(f"{len(entries)} jobs: {summary} · written {when}"),
        cards="\n".join(cards),
    )
    index = out_dir / "index.html"
    index.write_text(text, encoding="utf-8")
    return index


__all__ = ["GalleryEntry", "write_gallery"]
