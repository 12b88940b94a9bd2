"""Serve a gallery folder on localhost: for galleries too large to open from disk.

``serve(directory)`` blocks until Ctrl-C; tests use ``GalleryServer`` directly, on port 0, and
stop it from another thread with ``shutdown()``.
"""

from __future__ import annotations

import functools
import os
import sys
import webbrowser
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Handler(SimpleHTTPRequestHandler):
    """Static files with the glTF types and no caching (a re-run rewrites the same names)."""

    extensions_map = {  # noqa: RUF012 - the stdlib declares it a plain class attribute
        **SimpleHTTPRequestHandler.extensions_map,
        ".glb": "model/gltf-binary",
        ".gltf": "model/gltf+json",
        ".js": "text/javascript",
    }

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None  # one line per request would bury the URL the user needs


class GalleryServer(ThreadingHTTPServer):
    """An HTTP server for ``directory`` on ``host:port`` (port 0: any free one)."""

    daemon_threads = True

    def __init__(self, directory: Path, port: int = 0, host: str = "127.0.0.1") -> None:
        if not (directory / "index.html").is_file():
            raise FileNotFoundError(f"no gallery to serve: {directory / 'index.html'} is missing")
        handler = functools.partial(_Handler, directory=str(directory))
        super().__init__((host, port), handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/index.html"


def _has_gui_browser() -> bool:
    """Whether ``webbrowser.open`` would show a window rather than a text browser or nothing.

    On a Linux server without a display, webbrowser falls back to console browsers (lynx,
    w3m) that would take over the terminal the URL was just printed to.
    """
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def serve(
    directory: Path,
    *,
    port: int = 0,
    open_browser: bool = True,
    echo: Callable[[str], object] | None = None,
) -> None:
    """Serve ``directory`` on localhost, print its URL, open a browser if there is one.

    Messages go to ``echo`` (default: stderr, keeping stdout for reports). Returns when the
    user presses Ctrl-C.
    """
    if echo is None:
        echo = functools.partial(print, file=sys.stderr, flush=True)
    with GalleryServer(directory, port) as server:
        try:  # Ctrl-C may come at any point, even while the browser starts
            echo(f"serving the gallery at {server.url} (Ctrl-C stops)")
            if open_browser and _has_gui_browser():
                webbrowser.open(server.url)
            server.serve_forever()
        except KeyboardInterrupt:
            echo("stopped serving the gallery")


__all__ = ["GalleryServer", "serve"]
