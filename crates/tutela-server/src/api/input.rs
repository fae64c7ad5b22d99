//! Small input rules shared by the routes: references, bounded free text, times.

use crate::error::ApiError;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Times in responses.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A reference is an identifier (ticket, scan, order number), never content: 1 to `max`
/// printable ASCII characters, no spaces or quotes. `None` passes through.
pub(crate) fn reference(
    field: &str,
    raw: Option<&str>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let ok = (1..=max).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if !ok {
        return Err(ApiError::invalid(
            "invalid_reference",
            format!("`{field}` must be 1 to {max} printable ASCII characters without spaces"),
        ));
    }
    Ok(Some(raw.to_owned()))
}

/// Trimmed free text of 1 to `max` characters; `single_line` also refuses control
/// characters (names, short reasons). The error carries `code`.
pub(crate) fn bounded_text(
    field: &str,
    raw: &str,
    max: usize,
    single_line: bool,
    code: &'static str,
) -> Result<String, ApiError> {
    let v = raw.trim();
    let bad_chars = single_line && v.chars().any(char::is_control);
    if v.is_empty() || v.chars().count() > max || bad_chars {
        let rule = if single_line {
            " without control characters"
        } else {
            ""
        };
        return Err(ApiError::invalid(
            code,
            format!("`{field}` must be 1 to {max} characters{rule}"),
        ));
    }
    Ok(v.to_owned())
}
