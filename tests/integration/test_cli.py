"""The ``meshdrop`` console script, run as a user would run it (a subprocess)."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import trimesh

from meshdrop_contract import ExitCode
from tests.helpers.gltf import assert_valid_gltf
from tests.helpers.photos import make_photo
from tests.integration.test_gallery import CHROMIUM, browse

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from meshdrop.cli import main; main()"]


def _meshdrop(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.slow
def test_local_run_json_reports_every_file(tmp_path: Path) -> None:
    photo = tmp_path / "mug.jpg"
    photo.write_bytes(make_photo("mug", jpeg_quality=90).data)
    bad = tmp_path / "empty.png"
    bad.write_bytes(b"")
    out = tmp_path / "out"

    result = _meshdrop(
        "local", "run", str(photo), str(bad), "--out", str(out), "--json", "--preset", "fast"
    )

    assert result.returncode == 1, result.stderr[-3000:]  # one file did not succeed
    report = json.loads(result.stdout)  # stdout holds the JSON report and nothing else
    # Packed as deployed (pack_size 10): the empty file never became a job, the mug is a pack.
    assert list(report) == ["jobs", "batch_jobs", "packs"]
    assert (report["batch_jobs"], report["packs"]) == (1, 1)
    jobs = {Path(j["key"]).name: j for j in report["jobs"]}
    assert set(jobs) == {"mug.jpg", "empty.png"}
    for job in jobs.values():
        assert {"key", "status", "asset_key", "error", "seconds"} <= set(job)
    ok = jobs["mug.jpg"]
    assert ok["status"] == "SUCCEEDED" and ok["error"] is None
    assert ok["asset_key"] == "3d_assets/uploaded/mug.glb"
    asset = out / ok["asset_key"]
    assert_valid_gltf(asset)
    assert len(trimesh.load(asset, force="mesh").faces) > 100
    assert jobs["empty.png"]["status"] in {"REJECTED", "FAILED"}
    assert jobs["empty.png"]["error"]
    # The run's gallery sits beside the assets and points at them by relative paths.
    page = (out / "index.html").read_text(encoding="utf-8")
    assert 'data-src="3d_assets/uploaded/mug.glb"' in page
    assert html.escape(jobs["empty.png"]["error"]) in page
    assert (out / "model-viewer-umd.min.js").is_file()
    # ...and carries the asset in a classic script too, so it works opened from disk.
    assert 'data-embed="gallery-data/0.js"' in page
    assert (out / "gallery-data" / "0.js").stat().st_size > asset.stat().st_size
    if CHROMIUM:  # opened as users open it, from disk: the generator's real GLB is drawn
        body, _ = browse((out / "index.html").as_uri(), tmp_path, "local-run-from-disk.png")
        assert body["data-origin"] == "file" and body["data-shown"] == "entry-0", body


@pytest.mark.slow
def test_local_run_serve_serves_the_gallery_until_ctrl_c(tmp_path: Path) -> None:
    photo = tmp_path / "mug.jpg"
    photo.write_bytes(make_photo("mug", jpeg_quality=90).data)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    command = [*CLI, "local", "run", str(photo), "--out", str(out), "--preset", "fast", "--serve"]
    with subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        watchdog = threading.Timer(300, process.kill)  # a hung run fails instead of blocking
        watchdog.start()
        try:
            assert process.stderr is not None
            for line in process.stderr:
                if found := re.search(
                    r"serving the gallery at (http://127\.0\.0\.1:\d+/\S+)", line
                ):
                    break
            else:
                pytest.fail("the gallery was never served")
            with urllib.request.urlopen(found.group(1), timeout=10) as response:
                served = response.read()
            process.send_signal(signal.SIGINT)  # Ctrl-C
            stdout, stderr = process.communicate(timeout=60)
        finally:
            watchdog.cancel()
    assert process.returncode == 0, stderr[-3000:]
    assert served == (out / "index.html").read_bytes()
    assert "stopped serving the gallery" in stderr
    assert "1/1 succeeded" in stdout


def test_generate_writes_an_asset_and_reports_numbers(tmp_path: Path) -> None:
    photo = tmp_path / "box.png"
    photo.write_bytes(make_photo("box").data)
    out = tmp_path / "box.obj"

    result = _meshdrop("generate", str(photo), "-o", str(out), "--preset", "fast", "--json")

    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["format"] == "obj"
    mesh = trimesh.load(out, force="mesh")
    assert summary["faces"] == len(mesh.faces) > 100
    assert summary["vertices"] >= 4 and summary["seconds"] > 0
    assert summary["metrics"]


def test_generate_refuses_bad_input_and_bad_arguments(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (120, 90), (240, 240, 240)).save(blank)
    result = _meshdrop("generate", str(blank), "-o", str(tmp_path / "x.glb"))
    assert result.returncode == ExitCode.BAD_INPUT
    assert "bad input" in result.stderr
    assert not (tmp_path / "x.glb").exists()

    result = _meshdrop("generate", str(blank), "-o", str(tmp_path / "x.fbx"))
    assert result.returncode == 2 and "cannot tell the format" in result.stderr
    # A missing path is a REJECTED row of the run (issue 10, item 11), not a usage error.
    result = _meshdrop(
        "local", "run", str(tmp_path / "missing.jpg"), "--json", "--out", str(tmp_path / "out")
    )
    assert result.returncode == 1, result.stderr[-3000:]
    (row,) = json.loads(result.stdout)["jobs"]
    assert row["status"] == "REJECTED" and row["error"] == "no such file"
