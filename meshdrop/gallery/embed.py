"""Asset bytes as classic scripts, so the gallery works when opened from disk.

Browsers refuse to let a ``file://`` page fetch other local files, so ``<model-viewer
src="x.glb">`` stays empty there. A classic ``<script src>`` is still allowed, so each asset's
bytes also go into ``gallery-data/<n>.js`` as base64; the page loads that script when it was
opened from disk and hands model-viewer a ``blob:`` URL. Base64 costs a third more space and
the page holds every asset in memory, hence a size limit (``MESHDROP_GALLERY_EMBED_MB``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Folder beside ``index.html`` holding one script per embedded asset.
DATA_DIR = "gallery-data"
#: Megabytes (10**6 bytes) of assets embedded for opening from disk; 0 embeds none.
ENV_EMBED_MB = "MESHDROP_GALLERY_EMBED_MB"
DEFAULT_EMBED_MB = 50.0
#: Bytes per base64 string in a data script: whole 3-byte groups, so chunks decode alone.
_CHUNK = 3 * 256 * 1024
_MIME = {".glb": "model/gltf-binary", ".gltf": "model/gltf+json"}


def embed_limit_bytes(embed_mb: float | None = None) -> int:
    """The embedding budget in bytes: ``embed_mb``, else ``$MESHDROP_GALLERY_EMBED_MB``, else 50.

    Raises
    ------
    ValueError
        The setting is not a number of megabytes >= 0.
    """
    source = "embed_mb"
    if embed_mb is None:
        raw = os.environ.get(ENV_EMBED_MB, "").strip()
        source = ENV_EMBED_MB
        try:
            embed_mb = float(raw) if raw else DEFAULT_EMBED_MB
        except ValueError:
            raise ValueError(f"{ENV_EMBED_MB}={raw!r} is not a number of megabytes") from None
    if not embed_mb >= 0:  # also refuses NaN
        raise ValueError(f"{source} must be a number of megabytes >= 0, got {embed_mb}")
    return int(embed_mb * 1_000_000)


@dataclass(frozen=True, slots=True)
class EmbedPlan:
    """Which assets the page can show from disk, and what it could not embed."""

    #: entry id -> data script URL relative to the page.
    scripts: dict[str, str]
    #: entry ids of assets left out because the budget ran out.
    left_out: list[str]
    left_out_bytes: int
    limit_bytes: int


def write_data_scripts(
    out_dir: Path, assets: Sequence[tuple[str, Path]], limit_bytes: int
) -> EmbedPlan:
    """Write ``gallery-data/<n>.js`` for ``assets`` (entry id, file) in order, within the budget.

    Assets are taken in page order while they fit; one that does not fit is left out but
    smaller ones after it may still fit, so as much of the page as possible works from disk.
    The folder is rewritten each time so no stale asset of an earlier run is left behind.
    """
    data_dir = out_dir / DATA_DIR
    shutil.rmtree(data_dir, ignore_errors=True)
    scripts: dict[str, str] = {}
    left_out: list[str] = []
    used = left_out_bytes = 0
    for entry_id, path in assets:
        size = path.stat().st_size
        if used + size > limit_bytes:
            left_out.append(entry_id)
            left_out_bytes += size
            continue
        used += size
        data_dir.mkdir(parents=True, exist_ok=True)
        name = f"{len(scripts)}.js"
        (data_dir / name).write_text(_data_script(entry_id, path), encoding="ascii")
        scripts[entry_id] = f"{DATA_DIR}/{name}"
    return EmbedPlan(scripts, left_out, left_out_bytes, limit_bytes)


def _data_script(entry_id: str, path: Path) -> str:
    """One call handing the page ``path``'s bytes as base64 chunks (see page.js)."""
    data = path.read_bytes()
    chunks = [
        base64.b64encode(data[i : i + _CHUNK]).decode("ascii") for i in range(0, len(data), _CHUNK)
    ]
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    args = ", ".join([json.dumps(entry_id), json.dumps(mime), json.dumps(chunks)])
    # json.dumps of ASCII strings is a valid JavaScript literal.
    return f"// {path.name}: {len(data)} bytes as base64, for opening index.html from disk.\n" + (
        f"meshdropGallery.embedded({args});\n"
    )
