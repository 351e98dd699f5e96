//! Timestamps in API bodies: RFC 3339 in UTC with milliseconds, one format everywhere.

use serde::Serialize;
use utoipa::ToSchema;

/// RFC 3339, UTC, milliseconds: `2026-11-23T12:34:56.789Z`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(value_type = String, format = DateTime, example = "2026-11-23T12:34:56.789Z")]
pub(crate) struct Timestamp(String);

impl Timestamp {
    /// The instant `ms` Unix milliseconds.
    pub(crate) fn from_ms(ms: i64) -> Self {
        Self(rfc3339(ms))
    }
}

/// Formats Unix milliseconds as `2026-11-23T12:34:56.789Z`.
pub(crate) use checkgate_core::date::format_rfc3339 as rfc3339;
