"""Per-upload options, carried as S3 user metadata (``x-amz-meta-<name>``).

Uploaders set them with, for example,
``aws s3 cp mug.jpg s3://bucket/images/uploaded/ --metadata preset=quality,texture=off``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, TypeVar


class AssetFormat(StrEnum):
    GLB = "glb"
    OBJ = "obj"
    STL = "stl"
    PLY = "ply"


class Preset(StrEnum):
    FAST = "fast"
    BALANCED = "balanced"
    QUALITY = "quality"


class Backend(StrEnum):
    """Which reconstruction the generator runs.

    ``auto``: TripoSR when its weights and a CUDA device are present, else the priors;
    ``triposr`` forces the learned model (on CPU too, slowly); ``priors``: the weight-free
    shape priors.
    """

    AUTO = "auto"
    TRIPOSR = "triposr"
    PRIORS = "priors"


@dataclass(frozen=True, slots=True)
class PresetSpec:
    """What a quality preset means to the generator."""

    grid: int  # marching-cubes grid resolution per axis
    max_faces: int  # face budget after decimation
    image_size: int  # square working resolution of the segmented photo


PRESETS: dict[Preset, PresetSpec] = {
    Preset.FAST: PresetSpec(grid=128, max_faces=20_000, image_size=256),
    Preset.BALANCED: PresetSpec(grid=256, max_faces=60_000, image_size=384),
    Preset.QUALITY: PresetSpec(grid=384, max_faces=150_000, image_size=512),
}

#: Metadata names (S3 lower-cases user metadata names).
META_TEXTURE = "texture"
META_FORMAT = "format"
META_PRESET = "preset"
META_BACKEND = "backend"
METADATA_NAMES = (META_TEXTURE, META_FORMAT, META_PRESET, META_BACKEND)

_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}


class InvalidOptionsError(ValueError):
    """An option in the object metadata has a value we do not accept; ``str(err)`` says which."""


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Options of one job, with the defaults a plain upload gets."""

    texture: bool = True
    format: AssetFormat = AssetFormat.GLB
    preset: Preset = Preset.BALANCED
    backend: Backend = Backend.AUTO

    @property
    def preset_spec(self) -> PresetSpec:
        return PRESETS[self.preset]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = self.format.value
        data["preset"] = self.preset.value
        # Only a non-default backend is written: a plain upload's options, digest (asset
        # reuse) and events stay exactly what they were before the option existed.
        if self.backend is Backend.AUTO:
            del data["backend"]
        else:
            data["backend"] = self.backend.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobOptions:
        return cls(
            texture=bool(data.get("texture", True)),
            format=AssetFormat(data.get("format", AssetFormat.GLB)),
            preset=Preset(data.get("preset", Preset.BALANCED)),
            backend=Backend(data.get("backend", Backend.AUTO)),
        )

    def to_metadata(self) -> dict[str, str]:
        """The S3 user metadata an uploader sets to ask for these options."""
        meta = {
            META_TEXTURE: "on" if self.texture else "off",
            META_FORMAT: self.format.value,
            META_PRESET: self.preset.value,
        }
        if self.backend is not Backend.AUTO:
            meta[META_BACKEND] = self.backend.value
        return meta

    def digest(self) -> str:
        """Stable short digest; with the content hash it identifies an asset for reuse."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


E = TypeVar("E", bound=StrEnum)


def _enum_value(kind: type[E], name: str, raw: str) -> E:
    try:
        return kind(raw.strip().lower())
    except ValueError:
        allowed = "|".join(m.value for m in kind)
        raise InvalidOptionsError(f"metadata {name}={raw!r} is not one of {allowed}") from None


def parse_options(metadata: Mapping[str, str] | None) -> JobOptions:
    """Read job options from S3 user metadata (names without ``x-amz-meta-``).

    Unknown metadata names are ignored; a known name with a bad value is an error, because
    silently ignoring ``preset=qualty`` would give the uploader something they did not ask for.

    Raises
    ------
    InvalidOptionsError
        Naming the option and the values it accepts.
    """
    meta = {k.lower().removeprefix("x-amz-meta-"): v for k, v in (metadata or {}).items()}
    texture = True
    if (raw := meta.get(META_TEXTURE)) is not None:
        value = raw.strip().lower()
        if value in _TRUE:
            texture = True
        elif value in _FALSE:
            texture = False
        else:
            raise InvalidOptionsError(f"metadata {META_TEXTURE}={raw!r} is not one of on|off")
    fmt = AssetFormat.GLB
    if (raw := meta.get(META_FORMAT)) is not None:
        fmt = _enum_value(AssetFormat, META_FORMAT, raw)
    preset = Preset.BALANCED
    if (raw := meta.get(META_PRESET)) is not None:
        preset = _enum_value(Preset, META_PRESET, raw)
    backend = Backend.AUTO
    if (raw := meta.get(META_BACKEND)) is not None:
        backend = _enum_value(Backend, META_BACKEND, raw)
    return JobOptions(texture=texture, format=fmt, preset=preset, backend=backend)
