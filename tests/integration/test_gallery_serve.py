"""``--serve``: the gallery folder on localhost, for galleries too large to open from disk."""

from __future__ import annotations

import _thread
import threading
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meshdrop.cli.remote import app
from meshdrop.gallery import GalleryEntry, write_gallery
from meshdrop.gallery import serve as serve_module
from meshdrop.gallery.serve import GalleryServer, serve
from meshdrop_contract import JobState
from tests.integration.test_remote_cli import (  # noqa: F401 - fixtures
    Stack,
    glb,
    stack,
)


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read()


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    out = tmp_path / "gallery"
    (out / "3d_assets").mkdir(parents=True)
    (out / "3d_assets" / "box.glb").write_bytes(glb("box"))
    write_gallery(
        out, [GalleryEntry("box.jpg", JobState.SUCCEEDED, asset=out / "3d_assets/box.glb")]
    )
    return out


def test_server_on_a_free_port_serves_the_folder_until_stopped(gallery: Path) -> None:
    with GalleryServer(gallery, port=0) as server:
        port = server.server_address[1]
        assert port > 0 and server.url == f"http://127.0.0.1:{port}/index.html"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        status, kind, page = _get(server.url)
        assert status == 200 and kind.startswith("text/html") and b"<model-viewer" in page
        status, kind, asset = _get(f"http://127.0.0.1:{port}/3d_assets/box.glb")
        assert (kind, asset) == ("model/gltf-binary", (gallery / "3d_assets/box.glb").read_bytes())
        server.shutdown()  # from this (test) thread, as Ctrl-C does from the main one
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_nothing_to_serve_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"index\.html"):
        GalleryServer(tmp_path)


def _visit_then_ctrl_c(seen: list[bytes]) -> object:
    """A stand-in for webbrowser.open: fetch the page, then interrupt the main thread (Ctrl-C)."""

    def visit(url: str) -> None:
        try:
            seen.append(_get(url)[2])
        finally:
            _thread.interrupt_main()

    def open_url(url: str) -> bool:
        threading.Thread(target=visit, args=(url,), daemon=True).start()
        return True

    return open_url


def test_serve_prints_the_url_opens_a_browser_and_stops_on_ctrl_c(
    gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bytes] = []
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(serve_module.webbrowser, "open", _visit_then_ctrl_c(seen))
    said: list[str] = []
    serve(gallery, port=0, echo=said.append)  # returns once "Ctrl-C" arrives
    assert said[0].startswith("serving the gallery at http://127.0.0.1:")
    assert said[-1] == "stopped serving the gallery"
    assert len(seen) == 1 and b"<model-viewer" in seen[0]


def test_no_browser_is_opened_without_a_display(
    gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(serve_module.sys, "platform", "linux")
    opened: list[str] = []
    monkeypatch.setattr(serve_module.webbrowser, "open", opened.append)
    said: list[str] = []

    def echo(line: str) -> None:
        said.append(line)
        if line.startswith("serving"):  # no browser will visit: press "Ctrl-C" ourselves
            _thread.interrupt_main()

    serve(gallery, port=0, echo=echo)
    assert opened == [] and said[-1] == "stopped serving the gallery"


def test_gallery_command_serves_what_it_wrote(
    stack: Stack,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = "images/uploaded/mug.jpg"
    job = stack.put_photo(key, (10, 90, 10))
    stack.record(job, key, JobState.SUCCEEDED)
    stack.put_asset(job, key, glb("sphere"))
    seen: list[bytes] = []
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(serve_module.webbrowser, "open", _visit_then_ctrl_c(seen))

    out = tmp_path / "gallery"
    result = CliRunner().invoke(app, ["gallery", "-o", str(out), "--serve", *stack.flags])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == str(out / "index.html")
    assert "serving the gallery at http://127.0.0.1:" in result.stderr
    assert len(seen) == 1 and seen[0] == (out / "index.html").read_bytes()
