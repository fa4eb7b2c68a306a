//! The error every reader of outside files returns: which file, which record, which field, and
//! what is wrong, so a person can find the bad byte without reading code.

/// Bad input, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {record}: {field}: {message}")]
pub struct InputError {
    /// The file read.
    pub file: String,
    /// The record within it (`participants[3]`, `readings[8]`, `document`).
    pub record: String,
    /// The field within the record (or a line and column for malformed syntax).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl InputError {
    /// An error in `file` at `record`, `field`.
    pub fn new(file: &str, record: &str, field: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            record: record.to_owned(),
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// `text` without a leading UTF-8 byte-order mark, which some editors write and JSON readers may
/// ignore (RFC 8259, section 8.1); every reader of outside text goes through this.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Parses a whole JSON document, a syntax or shape error located by line and column.
pub fn json_document<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<T, InputError> {
    serde_json::from_str(strip_bom(text)).map_err(|e| {
        InputError::new(
            file,
            "document",
            &format!("line {} column {}", e.line(), e.column()),
            e.to_string(),
        )
    })
}

/// Checks a document's `format` tag.
pub fn check_format(file: &str, found: &str, expected: &str) -> Result<(), InputError> {
    if found == expected {
        return Ok(());
    }
    Err(InputError::new(
        file,
        "document",
        "format",
        format!("expected {expected:?}, found {found:?}"),
    ))
}
