//! The streaming writer: members, then chunks of at most `CHUNK_RECORDS` records each with
//! its checksum, then the trailer; a temporary name, fsync, rename; the file's SHA-256.

use super::*;

pub(super) fn encode_member(m: &Member, out: &mut Vec<u8>) {
    out.extend_from_slice(&m.address.0.to_le_bytes());
    out.push(role_code(m.role));
    out.extend_from_slice(&m.bus.unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&m.public_key);
    out.extend_from_slice(&m.limit.raw().to_le_bytes());
}

pub(super) fn encode_record(tx: &SignedContract, truth: Truth, r: &Reading, out: &mut Vec<u8>) {
    let signed = tx.encode();
    // At most SIGNED_LEN_MAX (a few hundred bytes).
    out.extend_from_slice(
        &u16::try_from(signed.len())
            .unwrap_or(u16::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(&signed);
    out.push(truth_code(truth));
    out.extend_from_slice(&r.delivered.raw().to_le_bytes());
    out.extend_from_slice(&r.received.raw().to_le_bytes());
    out.push(u8::from(r.carried));
}

/// Streams a binary dataset to `path`: written to `path.partial`, renamed into place by
/// [`Writer::finish`] after a flush and fsync, so a failed or interrupted write never leaves a
/// file under the final name.
pub struct Writer {
    path: PathBuf,
    partial: PathBuf,
    /// `None` once [`Writer::finish`] has taken it; a writer dropped before that removes its
    /// partial file.
    out: Option<BufWriter<std::fs::File>>,
    header: Header,
    /// SHA-256 of every byte written: the file's identity, returned by [`Writer::finish`].
    sha256: Sha256,
    /// The header's, the members' and every chunk's checksum so far, for the trailer's.
    checksums: Vec<u8>,
    /// The chunk being filled: its head's 8 bytes (written at flush), then its records.
    pending: Vec<u8>,
    pending_records: u32,
    written: u64,
}

impl Writer {
    /// Starts a dataset with this header (its `contracts` is what must be written) and members.
    pub fn create(path: &Path, header: Header, members: &[Member]) -> Result<Self, DatasetError> {
        let name = path.display().to_string();
        if path.is_dir() {
            return Err(DatasetError::at(
                &name,
                0,
                "-",
                "is a directory; name the dataset file to write",
            ));
        }
        let partial = path.with_extension("partial");
        let file = std::fs::File::create(&partial).map_err(|e| DatasetError::io(&name, &e))?;
        let params = serde_json::to_vec(&header.params)
            .map_err(|e| DatasetError::at(&name, 0, "params", format!("cannot serialize: {e}")))?;
        let mut head = Vec::with_capacity(64 + params.len());
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&header.format.to_le_bytes());
        head.extend_from_slice(&header.generator.to_le_bytes());
        head.extend_from_slice(&header.seed.to_le_bytes());
        head.extend_from_slice(&header.members.to_le_bytes());
        head.extend_from_slice(&header.contracts.to_le_bytes());
        head.extend_from_slice(&header.chunk_records.to_le_bytes());
        head.extend_from_slice(
            &u32::try_from(params.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        head.extend_from_slice(&params);
        let head_sum = checksum(&head).to_le_bytes();
        head.extend_from_slice(&head_sum);
        let mut body = Vec::with_capacity(members.len() * MEMBER_LEN);
        for m in members {
            encode_member(m, &mut body);
        }
        let members_sum = checksum(&body).to_le_bytes();
        body.extend_from_slice(&members_sum);
        let mut w = Self {
            path: path.to_owned(),
            partial,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            header,
            sha256: Sha256::new(),
            checksums: [head_sum, members_sum].concat(),
            pending: vec![0; CHUNK_HEAD],
            pending_records: 0,
            written: 0,
        };
        w.put(&head)?;
        w.put(&body)?;
        Ok(w)
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// Writes `bytes` and adds them to the file's SHA-256.
    fn put(&mut self, bytes: &[u8]) -> Result<(), DatasetError> {
        self.sha256.update(bytes);
        let name = self.name();
        let Some(out) = self.out.as_mut() else {
            return Err(DatasetError::at(
                &name,
                0,
                "-",
                "the writer was already finished",
            ));
        };
        out.write_all(bytes)
            .map_err(|e| DatasetError::io(&name, &e))
    }

    /// Appends a batch of transactions (with truth and readings), encoding in parallel.
    pub fn write(&mut self, w: &Workload) -> Result<(), DatasetError> {
        let encoded: Vec<Vec<u8>> = (0..w.transactions.len())
            .into_par_iter()
            .with_min_len(256)
            .map(|i| {
                let mut out = Vec::with_capacity(RECORD_MAX);
                encode_record(&w.transactions[i], w.truth[i], &w.readings[i], &mut out);
                out
            })
            .collect();
        for record in encoded {
            self.pending.extend_from_slice(&record);
            self.pending_records += 1;
            if self.pending_records == self.header.chunk_records {
                self.flush_chunk()?;
            }
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), DatasetError> {
        if self.pending_records == 0 {
            return Ok(());
        }
        // The head goes in front of the records already there; the checksum covers both.
        let body_len = u32::try_from(self.pending.len() - CHUNK_HEAD).unwrap_or(u32::MAX);
        self.pending[..4].copy_from_slice(&self.pending_records.to_le_bytes());
        self.pending[4..CHUNK_HEAD].copy_from_slice(&body_len.to_le_bytes());
        let sum = checksum(&self.pending).to_le_bytes();
        self.pending.extend_from_slice(&sum);
        let chunk = std::mem::take(&mut self.pending);
        self.put(&chunk)?;
        self.checksums.extend_from_slice(&sum);
        self.written += u64::from(self.pending_records);
        self.pending = chunk;
        self.pending.truncate(CHUNK_HEAD);
        self.pending_records = 0;
        Ok(())
    }

    /// Writes the last chunk and the trailer, syncs, and renames into place. Returns the SHA-256
    /// of the whole file (what `sha256sum` prints). Fails (leaving nothing: the partial file goes
    /// when the writer drops) if the
    /// count written is not the header's.
    pub fn finish(mut self) -> Result<[u8; 32], DatasetError> {
        self.flush_chunk()?;
        let name = self.name();
        if self.written != self.header.contracts {
            return Err(DatasetError::at(
                &name,
                0,
                "contracts",
                format!(
                    "the header declares {} contracts but {} were written",
                    self.header.contracts, self.written
                ),
            ));
        }
        let mut trailer = TRAILER_MAGIC.to_vec();
        trailer.extend_from_slice(&self.written.to_le_bytes());
        trailer.extend_from_slice(&checksum(&self.checksums).to_le_bytes());
        self.put(&trailer)?;
        let io = |e: std::io::Error| DatasetError::io(&name, &e);
        let sha256: [u8; 32] = self.sha256.clone().finalize().into();
        let Some(out) = self.out.take() else {
            return Err(DatasetError::at(
                &name,
                0,
                "-",
                "the writer was already finished",
            ));
        };
        let file = out
            .into_inner()
            .map_err(|e| DatasetError::io(&name, e.error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.partial, &self.path).map_err(io)?;
        Ok(sha256)
    }
}

impl Drop for Writer {
    /// A writer that did not finish leaves nothing behind: its partial file goes (a finished
    /// one was renamed into place, so there is nothing to remove).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.partial);
    }
}
