"""Provenance: which model made an asset, defined once for S3 metadata and events.

Every asset's object carries these fields as user metadata (``x-amz-meta-meshdrop-...``), and
the "Job Succeeded" event carries them as ``detail.provenance`` (schema_version 1.1 on). Later
work extends this one field set: add a field here, to :meth:`Provenance.to_metadata`, and to
``schemas/job-succeeded.json``'s ``provenance``, and bump the minor ``SCHEMA_VERSION``.

The generator image states what it was built with through environment variables (set in its
Dockerfile next to the baked weights), so nothing needs the network to find out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Model repository the weights came from, e.g. ``stabilityai/TripoSR``.
ENV_MODEL_ID = "MESHDROP_MODEL_ID"
#: Revision (commit) of that repository the weights were taken at.
ENV_MODEL_REVISION = "MESHDROP_MODEL_REVISION"
#: Expected hex SHA-256 of ``model.ckpt``; when set, a checkpoint that differs is refused.
ENV_MODEL_SHA256 = "MESHDROP_MODEL_SHA256"

#: S3 user-metadata names (lower case, as S3 stores them).
ASSET_META_BACKEND = "meshdrop-backend"
ASSET_META_MODEL_ID = "meshdrop-model-id"
ASSET_META_MODEL_REVISION = "meshdrop-model-revision"
ASSET_META_MODEL_SHA256 = "meshdrop-model-sha256"
ASSET_META_DEVICE = "meshdrop-device"
#: Written for a field with no value (the priors have no model id), so every asset has all.
UNKNOWN = "none"


@dataclass(frozen=True, slots=True)
class Provenance:
    """What produced an asset.

    Attributes
    ----------
    backend
        ``triposr`` or ``priors`` (what ran, never ``auto``).
    model_id, revision, sha256
        The weights' repository, its revision and the checkpoint's SHA-256; ``None`` for the
        weight-free priors or where unknown.
    device
        Torch device type the reconstruction ran on (``cuda`` or ``cpu``).
    """

    backend: str
    model_id: str | None = None
    revision: str | None = None
    sha256: str | None = None
    device: str = "cpu"

    def to_dict(self) -> dict[str, str | None]:
        """For the event's ``detail.provenance``."""
        return {
            "backend": self.backend,
            "model_id": self.model_id,
            "revision": self.revision,
            "sha256": self.sha256,
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, str | None]) -> Provenance:
        return cls(
            backend=str(data["backend"]),
            model_id=data.get("model_id"),
            revision=data.get("revision"),
            sha256=data.get("sha256"),
            device=str(data.get("device") or "cpu"),
        )

    def to_metadata(self) -> dict[str, str]:
        """S3 user metadata for the asset object (ASCII, as headers need)."""
        return {
            ASSET_META_BACKEND: self.backend,
            ASSET_META_MODEL_ID: self.model_id or UNKNOWN,
            ASSET_META_MODEL_REVISION: self.revision or UNKNOWN,
            ASSET_META_MODEL_SHA256: self.sha256 or UNKNOWN,
            ASSET_META_DEVICE: self.device,
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> Provenance:
        """Read back what :meth:`to_metadata` wrote (names without ``x-amz-meta-``)."""
        meta = {k.lower().removeprefix("x-amz-meta-"): v for k, v in metadata.items()}

        def value(name: str) -> str | None:
            raw = meta.get(name)
            return None if raw in (None, UNKNOWN) else raw

        return cls(
            backend=meta[ASSET_META_BACKEND],
            model_id=value(ASSET_META_MODEL_ID),
            revision=value(ASSET_META_MODEL_REVISION),
            sha256=value(ASSET_META_MODEL_SHA256),
            device=meta.get(ASSET_META_DEVICE, "cpu"),
        )
