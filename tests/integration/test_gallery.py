"""The gallery page: its structure, and that it really works in a headless Chromium.

The browser tests open the page as users do, from disk (a ``file://`` URL, Chromium's default
security: no --allow-file-access-from-files), and also served on 127.0.0.1. They read back,
through ``--dump-dom``, the DOM attributes the page's own script sets when model-viewer is
defined and each model fires ``load`` and is drawn (``model-visibility``), or fails
(``error``). A deliberately corrupt GLB proves the check can fail.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import trimesh
from PIL import Image
from typer.testing import CliRunner

from meshdrop.cli.remote import app
from meshdrop.gallery import MODEL_VIEWER_JS, GalleryEntry, model_viewer_js, write_gallery
from meshdrop.gallery.embed import ENV_EMBED_MB, embed_limit_bytes
from meshdrop.gallery.serve import GalleryServer
from meshdrop_contract import JobState
from tests.integration.test_remote_cli import (  # noqa: F401 - fixtures
    Stack,
    glb,
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

    # model-viewer's UMD build ships beside the page, loaded by a classic script: module
    # scripts are CORS-fetched, which browsers refuse for pages opened from disk.
    assert (out / MODEL_VIEWER_JS).read_bytes() == model_viewer_js().read_bytes()
    assert MODEL_VIEWER_JS == "model-viewer-umd.min.js"
    scripts = page.all("script")
    assert {"src": MODEL_VIEWER_JS} in scripts
    assert not [t for t in scripts if t.get("type") == "module"]

    viewers = page.all("model-viewer")
    # STL cannot be previewed and failed jobs have nothing to preview.
    assert [v["data-entry"] for v in viewers] == ["entry-0", "entry-1", "entry-5"]
    assert viewers[0]["data-src"] == "3d_assets/uploaded/box.glb"
    assert viewers[0]["poster"] == "3d_assets/uploaded/box.thumb.png"
    assert viewers[1]["data-src"] == "files/0001-ball.glb"  # copied in from outside
    # Each GLB also sits in a classic script, for opening the page from disk.
    for viewer in viewers:
        assert "src" not in viewer  # set by the page's script: a URL, or a blob: from disk
        assert (
            _embedded_bytes(out / str(viewer["data-embed"]))
            == (out / str(viewer["data-src"])).read_bytes()
        )

    links = [a for a in page.all("a") if "download" in a]
    hrefs = [a["href"] for a in links]
    assert hrefs == [
        "3d_assets/uploaded/box.glb",
        "files/0001-ball.glb",
        "3d_assets/uploaded/can.stl",
        "3d_assets/uploaded/broken.glb",
    ]
    referenced = [v["data-src"] for v in viewers] + [v["data-embed"] for v in viewers]
    referenced += [i["src"] for i in page.all("img")] + hrefs
    for url in referenced:
        assert url and "://" not in url, url  # offline: nothing from a CDN
        assert (out / url).is_file(), url
    assert "files/0000-box.jpg" in referenced and "files/0003-bad.jpg" in referenced


def test_page_shows_each_job_s_status_and_reason_as_text(
    site: tuple[Path, list[GalleryEntry]],
) -> None:
    out, entries = site
    text = write_gallery(out, entries, title="run 42").read_text()
    page = parse(text)
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
    # Jobs without an asset are listed above the cards with their reasons.
    problems = text[text.index('<section class="problems"') : text.index("</section>")]
    assert "2 without an asset" in problems
    assert "rejected</b>: <span" in problems and "image is 20x20 pixels" in problems
    assert "failed</b>: <span" in problems and "mesh is not watertight" in problems
    # Everything fit the default embedding limit: the page never asks to be served.
    assert '<p class="note" id="serve-note" hidden></p>' in text


def _embedded_bytes(script: Path) -> bytes:
    """The asset bytes a gallery-data script hands the page (base64 chunks in a JSON array)."""
    match = re.search(r"^meshdropGallery\.embedded\((.*)\);$", script.read_text(), re.M)
    assert match, script
    _entry, _type, chunks = json.loads(f"[{match.group(1)}]")
    return b"".join(base64.b64decode(chunk) for chunk in chunks)


def test_embedding_stops_at_the_limit(
    site: tuple[Path, list[GalleryEntry]], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, entries = site
    ball = (out.parent / "elsewhere" / "ball.glb").stat().st_size
    box = (out / "3d_assets/uploaded/box.glb").stat().st_size
    # Room for the box but not the ball after it; the tiny broken GLB after that still goes in.
    monkeypatch.setenv(ENV_EMBED_MB, str((box + 100) / 1e6))
    assert ball > box + 100
    page = parse(write_gallery(out, entries).read_text())
    embeds = {v["data-entry"]: v.get("data-embed") for v in page.all("model-viewer")}
    assert embeds == {
        "entry-0": "gallery-data/0.js",
        "entry-1": None,
        "entry-5": "gallery-data/1.js",
    }
    note = " ".join(page.text)
    assert "1 3D asset(s)" in note and "--serve" in note and ENV_EMBED_MB in note

    # Written again with no room at all: nothing embedded, and no stale data left behind.
    page = parse(write_gallery(out, entries, embed_mb=0).read_text())
    assert not [v for v in page.all("model-viewer") if "data-embed" in v]
    assert not (out / "gallery-data").exists()
    assert "3 3D asset(s)" in " ".join(page.text)


@pytest.mark.parametrize("value", ["lots", "-1", "nan"])
def test_a_bad_embedding_limit_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_EMBED_MB, value)
    with pytest.raises(ValueError, match=ENV_EMBED_MB):
        embed_limit_bytes()
    monkeypatch.delenv(ENV_EMBED_MB)
    assert embed_limit_bytes() == 50_000_000
    assert embed_limit_bytes(1.5) == 1_500_000


def test_missing_files_are_an_error(tmp_path: Path) -> None:
    entry = GalleryEntry("images/uploaded/x.jpg", JobState.SUCCEEDED, asset=tmp_path / "x.glb")
    with pytest.raises(FileNotFoundError, match=r"x\.glb"):
        write_gallery(tmp_path / "out", [entry])


@pytest.fixture
def served(site: tuple[Path, list[GalleryEntry]]) -> Iterator[str]:
    """The gallery served by ``meshdrop ... --serve``'s server, on a free port."""
    out, entries = site
    write_gallery(out, entries)
    with GalleryServer(out, port=0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.url
        finally:
            server.shutdown()


def _run_chromium(
    url: str, screenshot: Path, tmp_path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
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
            *extra,
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


def browse(
    url: str, tmp_path: Path, shot: str, *extra: str, defined: bool = True
) -> tuple[dict[str, str | None], str]:
    """The page's ``<body>`` attributes and DOM once headless Chromium has run its scripts."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / shot
    screenshot.unlink(missing_ok=True)
    done = _run_chromium(url, screenshot, tmp_path, *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    body = parse(done.stdout).all("body")[0]
    if defined:
        assert body["data-model-viewer"] == "defined", body
    with Image.open(screenshot) as image:
        assert image.size == (1280, 1000)
        colors = image.convert("RGB").getcolors(maxcolors=1 << 16)
    # A rendered page (text, shaded meshes), not a blank or single-colour frame.
    assert colors is None or len(colors) > 200
    return body, done.stdout


def _ids(body: dict[str, str | None], attribute: str) -> set[str]:
    return set((body.get(attribute) or "").split())


def _card_html(dom: str, entry: str) -> str:
    start = dom.index(f'<article class="card" id="{entry}"')
    return dom[start : dom.index("</article>", start)]


def _assert_models_shown(body: dict[str, str | None], dom: str) -> None:
    """Both good GLBs loaded and drawn; the corrupt one says so instead of staying blank."""
    assert body["data-webgl"] == "yes", body
    assert _ids(body, "data-loaded") == {"entry-0", "entry-1"}, body
    assert _ids(body, "data-shown") == {"entry-0", "entry-1"}, body
    # The corrupt GLB fails visibly: the page's load check is not a rubber stamp.
    assert _ids(body, "data-failed") == {"entry-5"}, body
    broken = _card_html(dom, "entry-5")
    assert 'data-model="error"' in broken
    assert '<p class="viewer-note" role="status">Could not load this asset' in broken
    for entry in ("entry-0", "entry-1"):
        assert '<p class="viewer-note" role="status" hidden="">' in _card_html(dom, entry)
    # Failed and rejected jobs are on the page with their reasons.
    assert "rejected: image is 20x20 pixels" in _card_html(dom, "entry-3")
    assert "failed: quality gate: mesh is not watertight" in _card_html(dom, "entry-4")
    assert '<p class="note" id="serve-note" hidden="">' in dom


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (`make browser`)"
)


@needs_chromium
def test_page_opened_from_disk_shows_every_model(
    site: tuple[Path, list[GalleryEntry]], tmp_path: Path
) -> None:
    """As users open it: a file:// URL, default security (no --allow-file-access-from-files)."""
    out, entries = site
    index = write_gallery(out, entries)
    body, dom = browse(index.as_uri(), tmp_path, "gallery-from-disk.png")
    assert body["data-origin"] == "file"
    _assert_models_shown(body, dom)


@needs_chromium
def test_page_served_shows_every_model(served: str, tmp_path: Path) -> None:
    body, dom = browse(served, tmp_path, "gallery-served.png")
    assert body["data-origin"] == "http"
    _assert_models_shown(body, dom)


@needs_chromium
def test_page_over_the_limit_says_to_serve_it(
    site: tuple[Path, list[GalleryEntry]], tmp_path: Path
) -> None:
    out, entries = site
    index = write_gallery(out, entries, embed_mb=0)
    body, dom = browse(index.as_uri(), tmp_path, "gallery-over-the-limit.png")
    assert _ids(body, "data-loaded") == set() and _ids(body, "data-failed") == set()
    # No empty grey boxes: the page says why, and how to see them.
    note = dom[dom.index('<p class="note" id="serve-note"') :]
    assert note.startswith('<p class="note" id="serve-note">3 3D asset(s)'), note[:200]
    assert "--serve" in note[:1000] and "http.server" in note[:1000]
    for entry in ("entry-0", "entry-1", "entry-5"):
        card = _card_html(dom, entry)
        assert 'data-model="too-large"' in card
        assert '<p class="viewer-note" role="status">Too large to show' in card


@needs_chromium
def test_page_without_webgl_says_so(site: tuple[Path, list[GalleryEntry]], tmp_path: Path) -> None:
    out, entries = site
    index = write_gallery(out, entries)
    body, dom = browse(index.as_uri(), tmp_path, "gallery-no-webgl.png", "--disable-webgl")
    assert body["data-webgl"] == "no" and _ids(body, "data-loaded") == set()
    assert '<p class="note" id="webgl-note">WebGL is unavailable' in dom
    for entry in ("entry-0", "entry-1", "entry-5"):
        card = _card_html(dom, entry)
        assert 'data-model="no-webgl"' in card
        assert '<p class="viewer-note" role="status">No WebGL in this browser' in card


@needs_chromium
def test_page_without_its_viewer_script_says_so(
    site: tuple[Path, list[GalleryEntry]], tmp_path: Path
) -> None:
    out, entries = site
    index = write_gallery(out, entries)
    (out / MODEL_VIEWER_JS).unlink()  # moved away, say
    body, dom = browse(index.as_uri(), tmp_path, "gallery-no-viewer.png", defined=False)
    assert body["data-model-viewer"] == "missing", body
    assert '<p class="note" id="viewer-missing-note">The 3D viewer' in dom


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
    assert viewer["data-src"] == "3d_assets/uploaded/kitchen/mug.glb"
    assert (out / viewer["data-src"]).read_bytes() == mesh
    assert _embedded_bytes(out / str(viewer["data-embed"])) == mesh
    assert trimesh.load(out / viewer["data-src"], force="mesh").is_watertight
    assert (out / viewer["poster"]).is_file()
    # The photo shown is the version the job ran on, not whatever the key holds now.
    photo = out / "images/uploaded/kitchen/mug.jpg"
    with Image.open(photo) as shown:
        assert shown.getpixel((24, 24))[1] > 60
    assert photo_version and "image too small" in " ".join(page.text)
    assert "old failure" not in " ".join(page.text)


def test_a_superseded_job_is_shown_as_such_not_as_a_problem(tmp_path: Path) -> None:
    reason = "a newer upload of images/uploaded/mug.jpg replaced this version"
    entries = [
        GalleryEntry(name="images/uploaded/mug.jpg", status=JobState.SUPERSEDED, error=reason)
    ]
    text = write_gallery(tmp_path, entries, title="run").read_text()
    page = parse(text)
    assert [c["data-status"] for c in page.all("article")] == ["SUPERSEDED"]
    assert f"superseded: {reason}" in " ".join(page.text)
    assert 'class="nopreview problem"' not in text  # neutral, not the failure style
    assert '<section class="problems"' not in text  # nothing went wrong
