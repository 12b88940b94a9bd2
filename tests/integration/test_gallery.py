"""The gallery page: its structure, and that it really works offline in a headless Chromium.

The browser test serves the page on 127.0.0.1 and reads back, through ``--dump-dom``, the DOM
attributes the page's own script sets when model-viewer is defined and each model fires
``load`` (or ``error``). A deliberately corrupt GLB proves the check can fail.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trimesh
from PIL import Image
from typer.testing import CliRunner

from meshdrop.cli.remote import app
from meshdrop.gallery import MODEL_VIEWER_JS, GalleryEntry, model_viewer_js, write_gallery
from meshdrop_contract import JobState
from tests.integration.test_remote_cli import (  # noqa: F401 - fixtures
    Stack,
    aws_env,
    glb,
    moto_endpoint,
    stack,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "gallery"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Page(HTMLParser):
    """Collects the attributes of the elements a test cares about."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.elements if t == tag]


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _photo(path: Path, color: tuple[int, int, int]) -> Path:
    Image.new("RGB", (64, 48), color).save(path)
    return path


def _thumb(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (40, 120, 200)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, list[GalleryEntry]]:
    """A run's output folder as the local pipeline leaves it, plus files from elsewhere."""
    out = tmp_path / "site"
    assets = out / "3d_assets" / "uploaded"
    assets.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (assets / "box.glb").write_bytes(glb("box"))
    (elsewhere / "ball.glb").write_bytes(glb("sphere"))
    trimesh.creation.cylinder(radius=0.5, height=1.0).export(assets / "can.stl")
    (assets / "broken.glb").write_bytes(b"glTF but not really")
    entries = [
        GalleryEntry(
            name="images/uploaded/box.jpg",
            status=JobState.SUCCEEDED,
            asset=assets / "box.glb",
            thumbnail=_thumb(assets / "box.thumb.png"),
            photo=_photo(elsewhere / "box.jpg", (200, 60, 60)),
            job_id="a" * 32,
            faces=12,
            vertices=8,
            seconds=3.25,
            metrics={"watertight": True, "iou": 0.8125},
        ),
        GalleryEntry(
            name="images/uploaded/ball.jpg",
            status="SUCCEEDED",
            asset=elsewhere / "ball.glb",
        ),
        GalleryEntry(
            name="images/uploaded/can.jpg",
            status=JobState.SUCCEEDED,
            asset=assets / "can.stl",
        ),
        GalleryEntry(
            name="images/uploaded/bad <b>.jpg",
            status=JobState.REJECTED,
            error="image is 20x20 pixels <script>alert(1)</script>",
            photo=_photo(elsewhere / "bad.jpg", (0, 0, 0)),
        ),
        GalleryEntry(
            name="images/uploaded/flat.jpg",
            status=JobState.FAILED,
            error="quality gate: mesh is not watertight",
        ),
        GalleryEntry(
            name="images/uploaded/broken.jpg",
            status=JobState.SUCCEEDED,
            asset=assets / "broken.glb",
        ),
    ]
    return out, entries


def test_page_shows_every_job_with_local_files_only(site: tuple[Path, list[GalleryEntry]]) -> None:
    out, entries = site
    index = write_gallery(out, entries, title="run 42")
    assert index == out / "index.html"
    text = index.read_text()
    page = parse(text)

    # model-viewer ships beside the page: same bytes as the npm bundle, loaded from there.
    assert (out / MODEL_VIEWER_JS).read_bytes() == model_viewer_js().read_bytes()
    assert {"type": "module", "src": MODEL_VIEWER_JS} in page.all("script")

    viewers = page.all("model-viewer")
    # STL cannot be previewed and failed jobs have nothing to preview.
    assert [v["data-entry"] for v in viewers] == ["entry-0", "entry-1", "entry-5"]
    assert viewers[0]["src"] == "3d_assets/uploaded/box.glb"
    assert viewers[0]["poster"] == "3d_assets/uploaded/box.thumb.png"
    assert viewers[1]["src"] == "files/0001-ball.glb"  # copied in from outside

    links = [a for a in page.all("a") if "download" in a]
    hrefs = [a["href"] for a in links]
    assert hrefs == [
        "3d_assets/uploaded/box.glb",
        "files/0001-ball.glb",
        "3d_assets/uploaded/can.stl",
        "3d_assets/uploaded/broken.glb",
    ]
    referenced = [v["src"] for v in viewers] + [i["src"] for i in page.all("img")] + hrefs
    for url in referenced:
        assert url and "://" not in url, url  # offline: nothing from a CDN
        assert (out / url).is_file(), url
    assert "files/0000-box.jpg" in referenced and "files/0003-bad.jpg" in referenced

    cards = page.all("article")
    assert [c["data-status"] for c in cards] == [
        "SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "REJECTED", "FAILED", "SUCCEEDED",
    ]  # fmt: skip
    body = " ".join(page.text)
    assert "quality gate: mesh is not watertight" in body
    assert "image is 20x20 pixels <script>alert(1)</script>" in body  # shown as text...
    assert "<script>alert(1)" not in text  # ...never as markup
    assert "bad &lt;b&gt;.jpg" in text
    for fact in ("12", "3.2", "watertight", "0.8125", "a" * 32):
        assert fact in body
    assert "6 jobs: 1 failed, 1 rejected, 4 succeeded" in body


def test_missing_files_are_an_error(tmp_path: Path) -> None:
    entry = GalleryEntry("images/uploaded/x.jpg", JobState.SUCCEEDED, asset=tmp_path / "x.glb")
    with pytest.raises(FileNotFoundError, match=r"x\.glb"):
        write_gallery(tmp_path / "out", [entry])


@pytest.fixture
def served(site: tuple[Path, list[GalleryEntry]]) -> Iterator[tuple[str, list[GalleryEntry]]]:
    out, entries = site
    write_gallery(out, entries)
    handler = functools.partial(_QuietHandler, directory=str(out))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html", entries
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def _run_chromium(url: str, screenshot: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Load ``url`` in headless Chromium, dump the DOM and take a screenshot.

    A run takes about 10 s here, but once, in a full `make test`, headless Chromium with a virtual
    time budget never exited. A hang (not a wrong page) is retried with a fresh profile, after
    killing the whole process group: Chromium's renderer and GPU processes outlive the parent.
    """
    for attempt in range(3):
        command = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / f'chromium-{attempt}'}",
            "--window-size=1280,1000",
            "--virtual-time-budget=3000",
            f"--screenshot={screenshot}",
            "--dump-dom",
            url,
        ]
        with subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                continue
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    pytest.fail("headless Chromium hung three times in a row")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_page_works_in_headless_chromium(
    served: tuple[str, list[GalleryEntry]], tmp_path: Path
) -> None:
    url, _ = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "gallery.png"
    screenshot.unlink(missing_ok=True)
    done = _run_chromium(url, screenshot, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    body = parse(done.stdout).all("body")[0]

    assert body["data-model-viewer"] == "defined", body
    loaded = set((body.get("data-loaded") or "").split())
    failed = set((body.get("data-failed") or "").split())
    assert loaded == {"entry-0", "entry-1"}, body
    # The corrupt GLB fails visibly: the page's load check is not a rubber stamp.
    assert failed == {"entry-5"}, body

    with Image.open(screenshot) as shot:
        assert shot.size == (1280, 1000)
        colors = shot.convert("RGB").getcolors(maxcolors=1 << 16)
    # A rendered page (text, shaded meshes), not a blank or single-colour frame.
    assert colors is None or len(colors) > 200


def test_gallery_command_downloads_what_the_stack_finished(stack: Stack, tmp_path: Path) -> None:  # noqa: F811
    key = "images/uploaded/kitchen/mug.jpg"
    old = stack.put_photo(key, (90, 10, 10))
    stack.record(old, key, JobState.FAILED, at="2026-01-01T00:00:00.000Z", error="old failure")
    photo_version = stack.s3.list_object_versions(Bucket=stack.bucket, Prefix=key)["Versions"]
    new = stack.put_photo(key, (10, 90, 10))
    version = stack.s3.head_object(Bucket=stack.bucket, Key=key)["VersionId"]
    stack.record(
        new,
        key,
        JobState.SUCCEEDED,
        at="2026-01-02T00:00:00.000Z",
        source_version=version,
        thumbnail_key="3d_assets/uploaded/kitchen/mug.thumb.png",
        faces=80,
        vertices=42,
    )
    mesh = glb("sphere")
    stack.put_asset(new, key, mesh)
    bad = stack.put_photo("images/uploaded/tiny.png", (0, 0, 0))
    stack.record(bad, "images/uploaded/tiny.png", JobState.REJECTED, error="image too small")
    running = stack.put_photo("images/uploaded/later.jpg", (1, 1, 1))
    stack.record(running, "images/uploaded/later.jpg", JobState.RUNNING)

    out = tmp_path / "gallery"
    result = CliRunner().invoke(app, ["gallery", "-o", str(out), *stack.flags])
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()) == out / "index.html"
    page = parse((out / "index.html").read_text())

    # Newest finished job per key, most recent first; unfinished jobs are not on the page.
    cards = page.all("article")
    assert [c["data-status"] for c in cards] == ["REJECTED", "SUCCEEDED"]
    viewer = page.all("model-viewer")[0]
    assert viewer["src"] == "3d_assets/uploaded/kitchen/mug.glb"
    assert (out / viewer["src"]).read_bytes() == mesh
    assert trimesh.load(out / viewer["src"], force="mesh").is_watertight
    assert (out / viewer["poster"]).is_file()
    # The photo shown is the version the job ran on, not whatever the key holds now.
    photo = out / "images/uploaded/kitchen/mug.jpg"
    with Image.open(photo) as shown:
        assert shown.getpixel((24, 24))[1] > 60
    assert photo_version and "image too small" in " ".join(page.text)
    assert "old failure" not in " ".join(page.text)
