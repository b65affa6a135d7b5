//! The report as versioned JSON (see [`super::SCHEMA_VERSION`]): every field of
//! [`Report`], for tools and the before/after comparisons.

use super::{RenderError, Report};

impl Report {
    pub fn to_json(&self) -> Result<String, RenderError> {
        serde_json::to_string_pretty(self).map_err(|e| RenderError {
            format: "json",
            message: e.to_string(),
        })
    }
}
