"""The optional rembg path: a U2-Net-style ONNX model on local disk, never downloaded.

One session per process per model file, created on first use.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

SESSIONS: dict[tuple[str, str], Any] = {}
SESSIONS_LOCK = threading.Lock()


def env_path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def rembg_candidates(model_name: str) -> list[Path]:
    """Where rembg 2.0.86 looks for an already-downloaded ``<model_name>.onnx``.

    Mirrors ``BaseSession.model_dir``/``legacy_home`` without importing rembg (a 2 s import)
    when no model is there anyway.
    """
    fname = f"{model_name}.onnx"
    u2net_home = os.environ.get("U2NET_HOME")
    xdg = os.environ.get("XDG_DATA_HOME")
    legacy = Path(u2net_home or Path(xdg or "~") / ".u2net").expanduser()
    if u2net_home:
        home = legacy
    else:
        default = Path(xdg) / "rembg" if xdg else Path("~") / ".rembg"
        home = Path(os.environ.get("REMBG_HOME") or default).expanduser()
    return [home / "models" / model_name / fname, legacy / fname]


def new_session(kind: str, model: str, model_name: str) -> Any:
    """Create a rembg session from a local file; never downloads."""
    import onnxruntime as ort
    import rembg
    from rembg.sessions import sessions as rembg_sessions

    log.info("loading rembg model %s", model)
    if kind == "named":
        session_class = rembg_sessions.get(model_name)
        # resolve_existing only finds files; a miss would make rembg download, so refuse.
        if session_class is None or session_class.resolve_existing(f"{model_name}.onnx") is None:
            raise RuntimeError(f"rembg does not find {model} for model {model_name!r}")
        return rembg.new_session(model_name)
    try:
        return rembg.new_session("u2net_custom", model_path=model)
    except ValueError:
        # rembg only accepts custom models under its own home directory. This path comes from
        # the deployment's configuration, not from a user, so load it where it lies.
        return _local_session_class()("u2net_custom", ort.SessionOptions(), model_path=model)


def rembg_mask(session: Any, rgb: np.ndarray) -> np.ndarray:
    """(h, w) float32 in [0, 1] saliency mask from rembg."""
    import rembg

    out = rembg.remove(rgb, session=session, only_mask=True)
    mask = np.asarray(out, dtype=np.float32)
    if mask.ndim == 3:
        mask = mask[:, :, -1]
    return mask / 255.0


def _local_session_class() -> type:
    from rembg.sessions.u2net_custom import U2netCustomSession

    class LocalU2netSession(U2netCustomSession):
        @classmethod
        def download_models(cls, *args: Any, **kwargs: Any) -> str:
            return str(Path(kwargs["model_path"]).resolve())

    return LocalU2netSession
