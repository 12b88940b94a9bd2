"""``meshdrop local run`` never aborts on one file: every path gets its own row (issue 10, 11)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from meshdrop.local.pipeline import local_file_problem, run_local
from meshdrop_contract import JobOptions, Preset
from tests.helpers.photos import make_photo

pytestmark = pytest.mark.slow

#: A regular file that no one can read, root included (reading it answers EIO).
UNREADABLE = Path("/proc/self/mem")


def _gif(path: Path) -> Path:
    frames = [Image.new("RGB", (64, 64), (i * 40, 0, 0)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def test_bad_paths_get_rejected_rows_and_the_good_photo_still_runs(tmp_path: Path) -> None:
    mug = tmp_path / "mug.jpg"
    mug.write_bytes(make_photo("mug", jpeg_quality=90).data)
    heic = tmp_path / "IMG_0001.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    folder = tmp_path / "album"
    folder.mkdir()
    paths = [
        _gif(tmp_path / "party.gif"),
        folder,
        tmp_path / "missing.jpg",
        mug,
        heic,
        UNREADABLE,
    ]

    summary = run_local(
        paths, tmp_path / "out", options=JobOptions(preset=Preset.FAST), timeout_s=300
    )

    rows = summary.reports
    assert [r.file for r in rows] == [str(p) for p in paths]  # one row per path, in order
    status = {Path(r.file).name: (r.status, r.error or "") for r in rows}
    assert status["mug.jpg"][0] == "SUCCEEDED", rows
    assert status["party.gif"][0] == "REJECTED" and "'.gif'" in status["party.gif"][1]
    assert status["album"] == ("REJECTED", "is a directory, not a photo")
    assert status["missing.jpg"] == ("REJECTED", "no such file")
    assert status["IMG_0001.HEIC"][0] == "REJECTED" and "HEIC" in status["IMG_0001.HEIC"][1]
    assert status["mem"][0] == "REJECTED" and "cannot read" in status["mem"][1]
    # Nothing that could not be a job reached the bucket or the gallery as a photo.
    assert summary.gallery is not None and "party.gif" in summary.gallery.read_text()


def test_local_file_problem_names_the_reason(tmp_path: Path) -> None:
    good = tmp_path / "a.jpg"
    good.write_bytes(b"x")
    assert local_file_problem(good) is None
    assert local_file_problem(tmp_path) == "is a directory, not a photo"
    assert local_file_problem(tmp_path / "nope.png") == "no such file"
    assert (local_file_problem(UNREADABLE) or "").startswith("cannot read the file")
