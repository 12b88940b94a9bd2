"""The meshdrop contract: key layout, job states, options, events and limits.

Imported by the infrastructure, the Lambda functions and the generator container alike; it
imports nothing of the project and nothing outside the standard library.
"""

from .events import (
    BATCH_DETAIL_TYPE,
    BATCH_SOURCE,
    EVENT_SOURCE,
    SCHEMA_VERSION,
    DetailType,
    ErrorKind,
    Stage,
    base_detail,
    batch_job_name,
    job_id_from_batch_job_name,
    put_events_entry,
    schema,
)
from .jobs import JobSpec, content_pk, job_id_for, job_pk
from .keys import (
    ASSET_PREFIX,
    IMAGE_EXTENSIONS,
    SOURCE_PREFIX,
    Category,
    InvalidKeyError,
    SourceKey,
    decode_event_key,
    is_asset_key,
    parse_source_key,
    source_key_for,
)
from .limits import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE
from .options import (
    PRESETS,
    AssetFormat,
    Backend,
    InvalidOptionsError,
    JobOptions,
    Preset,
    PresetSpec,
    parse_options,
)
from .provenance import Provenance
from .states import ALLOWED_PREDECESSORS, TERMINAL_STATES, ExitCode, JobState, can_transition
from .wiring import batch_job_state_pattern, meshdrop_job_events_pattern

__all__ = [
    "ALLOWED_PREDECESSORS",
    "ASSET_PREFIX",
    "BATCH_DETAIL_TYPE",
    "BATCH_SOURCE",
    "EVENT_SOURCE",
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MIN_IMAGE_SIDE",
    "PRESETS",
    "SCHEMA_VERSION",
    "SOURCE_PREFIX",
    "TERMINAL_STATES",
    "AssetFormat",
    "Backend",
    "Category",
    "DetailType",
    "ErrorKind",
    "ExitCode",
    "InvalidKeyError",
    "InvalidOptionsError",
    "JobOptions",
    "JobSpec",
    "JobState",
    "Preset",
    "PresetSpec",
    "Provenance",
    "SourceKey",
    "Stage",
    "base_detail",
    "batch_job_name",
    "batch_job_state_pattern",
    "can_transition",
    "content_pk",
    "decode_event_key",
    "is_asset_key",
    "job_id_for",
    "job_id_from_batch_job_name",
    "job_pk",
    "meshdrop_job_events_pattern",
    "parse_options",
    "parse_source_key",
    "put_events_entry",
    "schema",
    "source_key_for",
]
