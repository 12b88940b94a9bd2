"""Object key layout: where uploads land and where their assets go.

``images/<category>/<sub/path>/<stem>.<ext>`` becomes
``3d_assets/<category>/<sub/path>/<stem>.<format>``: same category, same sub path, same stem;
only the prefix and the extension change.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from urllib.parse import unquote_plus

SOURCE_PREFIX = "images/"
ASSET_PREFIX = "3d_assets/"
THUMBNAIL_SUFFIX = ".thumb.png"
#: Beside the asset, a job that ends REJECTED or FAILED leaves ``<stem>.error.json`` saying why.
ERROR_SUFFIX = ".error.json"

#: S3 allows 1024 bytes of UTF-8 in a key; the asset key may be longer than the source key
#: (``3d_assets/`` vs ``images/``), so keep headroom.
MAX_KEY_BYTES = 1000


class Category(StrEnum):
    UPLOADED = "uploaded"
    GENERATED = "generated"
    TEXT_TO_3D = "text_to_3d"


#: Lower-case extensions accepted for source images (matched case-insensitively).
IMAGE_EXTENSIONS: frozenset[str] = frozenset({"jpg", "jpeg", "png", "bmp", "tiff", "webp"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidKeyError(ValueError):
    """The key is not a source image this pipeline accepts; ``str(err)`` is the reason."""


@dataclass(frozen=True, slots=True)
class SourceKey:
    """A parsed, validated source image key."""

    key: str
    category: Category
    subpath: tuple[str, ...]
    stem: str
    extension: str  # as uploaded, case kept

    def asset_key(self, fmt: str = "glb") -> str:
        """Key of the asset generated from this image, in format ``fmt``."""
        parts = [ASSET_PREFIX.rstrip("/"), self.category.value, *self.subpath, f"{self.stem}.{fmt}"]
        return "/".join(parts)

    def thumbnail_key(self) -> str:
        """Key of the preview image stored beside the asset."""
        parts = [ASSET_PREFIX.rstrip("/"), self.category.value, *self.subpath]
        return "/".join([*parts, f"{self.stem}{THUMBNAIL_SUFFIX}"])

    def error_key(self) -> str:
        """Key of the error file a failed or rejected job leaves beside where its asset would be."""
        parts = [ASSET_PREFIX.rstrip("/"), self.category.value, *self.subpath]
        return "/".join([*parts, f"{self.stem}{ERROR_SUFFIX}"])


def decode_event_key(raw: str) -> str:
    """Decode a key as S3 event notifications deliver it (``+`` for space, ``%xx`` escapes)."""
    return unquote_plus(raw)


def is_folder_placeholder(key: str, size: int | None) -> bool:
    """Whether ``key`` is what the S3 console's "Create folder" writes: 0 bytes, ending in ``/``.

    Such an object is not an upload at all; it is ignored without a record or a notification.
    ``size`` is ``None`` when the event does not say (then the trailing ``/`` alone decides).
    """
    return key.endswith("/") and not size


def is_asset_key(key: str) -> bool:
    """Whether ``key`` lies under the asset prefix (writes there must never start jobs)."""
    return key.startswith(ASSET_PREFIX)


def parse_source_key(key: str) -> SourceKey:
    """Validate a decoded object key and split it into its parts.

    Parameters
    ----------
    key
        The object key, already URL-decoded (see :func:`decode_event_key`).

    Returns
    -------
    SourceKey
        The parts of the key.

    Raises
    ------
    InvalidKeyError
        With a reason a person can act on: wrong prefix, unknown category, path traversal,
        control characters, unsupported extension, key too long.
    """
    if not key:
        raise InvalidKeyError("empty key")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"key longer than {MAX_KEY_BYTES} bytes")
    if _CONTROL.search(key):
        raise InvalidKeyError("key contains control characters")
    if is_asset_key(key):
        raise InvalidKeyError(f"keys under {ASSET_PREFIX} are outputs, not inputs")
    if not key.startswith(SOURCE_PREFIX):
        raise InvalidKeyError(f"key must start with {SOURCE_PREFIX}")
    # NFC so that the same visible name never maps to two asset keys by accident of encoding.
    parts = unicodedata.normalize("NFC", key).split("/")[1:]
    if len(parts) < 2:
        raise InvalidKeyError(f"key must look like {SOURCE_PREFIX}<category>/<name>.<ext>")
    if any(p in {"", ".", ".."} for p in parts):
        raise InvalidKeyError("key has an empty, '.' or '..' path segment")
    if "\\" in key:
        raise InvalidKeyError("key contains a backslash")
    category_name, *subpath, filename = parts
    try:
        category = Category(category_name)
    except ValueError:
        allowed = ", ".join(c.value for c in Category)
        raise InvalidKeyError(f"unknown category {category_name!r} (allowed: {allowed})") from None
    path = PurePosixPath(filename)
    extension = path.suffix[1:]
    if not extension or extension.lower() not in IMAGE_EXTENSIONS:
        allowed = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise InvalidKeyError(f"unsupported file extension {path.suffix!r} (allowed: {allowed})")
    stem = path.stem
    if not stem.strip():
        raise InvalidKeyError("file name has no stem")
    return SourceKey(
        key=key, category=category, subpath=tuple(subpath), stem=stem, extension=extension
    )


def source_key_for(category: Category | str, name: str) -> str:
    """Key an uploader should use for a file ``name`` (may contain sub folders)."""
    key = f"{SOURCE_PREFIX}{Category(category).value}/{name.lstrip('/')}"
    parse_source_key(key)
    return key
