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

/// Parses a whole JSON document, a syntax or shape error located by line and column and named
/// by the path of the field it is in (`variants[0].quorum`).
pub fn json_document<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<T, InputError> {
    let located = |e: &serde_json::Error, path: &str| {
        let place = format!("line {} column {}", e.line(), e.column());
        let field = if path.is_empty() || path == "." || path == "?" {
            place
        } else {
            format!("{path} ({place})")
        };
        // serde_json's message ends with the place, which the field already gives.
        let message = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = message.strip_suffix(&suffix).unwrap_or(&message);
        InputError::new(file, "document", &field, message)
    };
    let mut de = serde_json::Deserializer::from_str(strip_bom(text));
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        located(e.inner(), &path)
    })?;
    de.end().map_err(|e| located(&e, ""))?;
    Ok(value)
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

/// What kind of thing `meta` describes, for an error that refuses it.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading if it is a regular file (links followed). A device, a FIFO, a
/// socket or a directory is refused before it is opened: opening a FIFO with no writer blocks,
/// and a device has no end. The message names what it is.
pub fn open_regular(path: &std::path::Path) -> Result<std::fs::File, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{}: ipow reads regular files only", kind_of(&meta)));
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    // The path may have been replaced between the check and the open.
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(file),
        Ok(m) => Err(format!("{}: ipow reads regular files only", kind_of(&m))),
        Err(e) => Err(format!("cannot read: {e}")),
    }
}

/// Reads a regular file of at most `limit` bytes as UTF-8 text. The read stops one byte past
/// the limit, so a file longer than it says (or growing while read) is refused with the limit
/// named, and memory stays bounded by the limit; invalid UTF-8 is named by its byte offset.
pub fn read_text(path: &std::path::Path, limit: u64) -> Result<String, String> {
    use std::io::Read as _;
    let file = open_regular(path)?;
    // Room for what the file says it holds, up to the limit plus the one byte that proves a
    // file longer than the limit: an honest file is read without the buffer growing.
    let said = file.metadata().map_or(0, |m| m.len());
    let room = usize::try_from(said.min(limit).saturating_add(1)).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(room);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("over the {limit}-byte limit for this kind of file"));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text: the byte at offset {} is not valid UTF-8",
            e.utf8_error().valid_up_to()
        )
    })
}

/// [`read_text`] with its error as an [`InputError`] on the whole document.
pub fn read_document(path: &std::path::Path, limit: u64) -> Result<String, InputError> {
    read_text(path, limit)
        .map_err(|m| InputError::new(&path.display().to_string(), "document", "-", m))
}
