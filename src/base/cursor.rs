//! A bounded reader of untrusted bytes that names the field it failed on: the store's records
//! and the cluster's wire messages decode through it. Counts are checked against the bytes
//! left before anything is allocated for them.

/// A field of a payload that does not decode: its name, its offset in the payload, the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field} at payload byte {at}: {message}")]
pub struct FieldError {
    /// The field.
    pub field: String,
    /// Offset within the payload.
    pub at: usize,
    /// What is wrong.
    pub message: String,
}

/// A cursor over a payload that names the field it failed on.
pub struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the payload's start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    /// The offset of the next byte.
    pub fn at(&self) -> usize {
        self.at
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], FieldError> {
        if self.remaining() < n {
            return Err(FieldError {
                field: field.to_owned(),
                at: self.at,
                message: format!("needs {n} bytes, {} left", self.remaining()),
            });
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    /// A big-endian u8/u16/u32/u64.
    pub fn uint(&mut self, n: usize, field: &str) -> Result<u64, FieldError> {
        let b = self.take(n, field)?;
        Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// 32 bytes.
    pub fn hash(&mut self, field: &str) -> Result<[u8; 32], FieldError> {
        let mut h = [0u8; 32];
        h.copy_from_slice(self.take(32, field)?);
        Ok(h)
    }

    /// A count of items of at least `min_item` bytes each, checked against the bytes left
    /// before anything is allocated for it.
    #[allow(clippy::cast_possible_truncation)] // at most the bytes left
    pub fn count(&mut self, n: usize, min_item: usize, field: &str) -> Result<usize, FieldError> {
        let at = self.at;
        let c = self.uint(n, field)?;
        let most = self.remaining() / min_item.max(1);
        if c > most as u64 {
            return Err(FieldError {
                field: field.to_owned(),
                at,
                message: format!(
                    "declares {c} items, the {} bytes left hold at most {most}",
                    self.remaining()
                ),
            });
        }
        Ok(c as usize)
    }

    /// An error unless every byte was read.
    pub fn finish(&self, what: &str) -> Result<(), FieldError> {
        if self.remaining() != 0 {
            return Err(FieldError {
                field: what.to_owned(),
                at: self.at,
                message: format!("{} bytes after the last field", self.remaining()),
            });
        }
        Ok(())
    }
}
