"""``meshdrop get|gallery``: assets out of the bucket, one file or a whole page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import Connection, err, remote_command


@remote_command
def get_cmd(
    conn: Connection,
    ref: Annotated[str, typer.Argument(help="Job id, source or asset key, s3:// or https:// URL.")],
    out_dir: Annotated[Path, typer.Option("-o", "--out", help="Folder to write into.")] = Path(),
    version: Annotated[
        str | None, typer.Option(help="Asset version id, or the job id that wrote it.")
    ] = None,
) -> None:
    """Download an asset (through a presigned URL)."""
    from meshdrop.remote.assets import download, resolve_asset

    remote = conn.connect()
    target = resolve_asset(remote, ref, version)
    path = download(remote, target, out_dir)
    typer.echo(str(path))


@remote_command
def gallery_cmd(
    conn: Connection,
    out_dir: Annotated[Path, typer.Option("-o", "--out", help="Folder for index.html.")],
    limit: Annotated[int, typer.Option(min=1, help="At most this many jobs per state.")] = 100,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then serve it on localhost (Ctrl-C stops).")
    ] = False,
) -> None:
    """Write an offline gallery page of the finished jobs (assets, thumbnails, photos).

    Open index.html from disk, or pass --serve for galleries over the embedding limit.
    """
    from meshdrop.gallery.remote import gallery_from_stack

    remote = conn.connect()
    with err.status("downloading assets, thumbnails and photos"):
        page = gallery_from_stack(remote, out_dir, limit=limit)
    typer.echo(str(page))
    if serve:
        from meshdrop.gallery.serve import serve as serve_gallery

        serve_gallery(page.parent)
