//! The reader: every declared length checked against its bound and the bytes left before
//! allocating, member keys admitted as one list at open, chunks read by position into per-thread
//! buffers and decoded in place in parallel.

use super::*;

/// Where a reader's bytes come from. Reads are by position, so chunks are read in parallel,
/// each by the thread that decodes it.
pub(super) trait Source: Send + Sync {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl Source for std::fs::File {
    #[cfg(unix)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.seek_read(buf, offset) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A dataset held in memory.
pub(super) struct InMemory(Vec<u8>);

impl Source for InMemory {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| self.0.get(start..start.checked_add(buf.len())?))
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// A chunk located by its head: where it starts, its record count and its body length.
#[derive(Clone, Copy, Debug)]
pub(super) struct Loc {
    offset: u64,
    records: u32,
    body_len: u32,
}

impl Loc {
    /// Its bytes: head, body and checksum.
    fn span(&self) -> usize {
        CHUNK_HEAD + self.body_len as usize + CHECKSUM_LEN
    }
}

/// One chunk's share of a batch: where it is, and the slots of its records.
pub(super) struct ChunkJob<'a> {
    loc: Loc,
    transactions: &'a mut [SignedContract],
    truth: &'a mut [Truth],
    readings: &'a mut [Reading],
}

impl ChunkJob<'_> {
    /// Reads the chunk into this thread's buffer (its length was bounded by
    /// [`Reader::next_chunk`]), checks its checksum, and decodes its records into their slots.
    /// Returns the stored checksum and how many of its records carry each truth.
    fn read_and_scan(self, source: &dyn Source, name: &str) -> Result<ChunkRead, DatasetError> {
        let span = self.loc.span();
        CHUNK_BUF.with_borrow_mut(|buf| {
            if buf.len() < span {
                buf.resize(span, 0);
            }
            self.check_and_decode(&mut buf[..span], source, name)
        })
    }

    fn check_and_decode(
        self,
        bytes: &mut [u8],
        source: &dyn Source,
        name: &str,
    ) -> Result<ChunkRead, DatasetError> {
        let loc = self.loc;
        source
            .read_exact_at(bytes, loc.offset)
            .map_err(|e| DatasetError::at(name, loc.offset, "chunk", e.to_string()))?;
        // The head was read once to locate the chunk; the file must not have changed since.
        let mut head = [0u8; CHUNK_HEAD];
        head[..4].copy_from_slice(&loc.records.to_le_bytes());
        head[4..].copy_from_slice(&loc.body_len.to_le_bytes());
        if bytes[..CHUNK_HEAD] != head {
            return Err(DatasetError::at(
                name,
                loc.offset,
                "chunk.records",
                "the file changed while it was read",
            ));
        }
        let body_end = CHUNK_HEAD + loc.body_len as usize;
        let mut stored = [0u8; CHECKSUM_LEN];
        stored.copy_from_slice(&bytes[body_end..]);
        if checksum(&bytes[..body_end]).to_le_bytes() != stored {
            return Err(DatasetError::at(
                name,
                loc.offset + body_end as u64,
                "chunk.checksum",
                format!(
                    "the chunk at offset {} does not match its checksum",
                    loc.offset
                ),
            ));
        }
        let base = loc.offset + CHUNK_HEAD as u64;
        let b = &bytes[CHUNK_HEAD..body_end];
        let mut at = 0usize;
        let mut truths = [0u64; TRUTHS];
        for k in 0..loc.records as usize {
            let err = |o: usize, field: &str, m: String| {
                DatasetError::at(
                    name,
                    base + o as u64,
                    &format!("record {k} of chunk: {field}"),
                    m,
                )
            };
            let need = |o: usize, n: usize, field: &str| {
                if b.len() < o + n {
                    Err(err(
                        o,
                        field,
                        format!(
                            "{n} bytes needed, {} left in the chunk",
                            b.len().saturating_sub(o)
                        ),
                    ))
                } else {
                    Ok(())
                }
            };
            need(at, 2, "signed_len")?;
            let len = usize::from(u16::from_le_bytes([b[at], b[at + 1]]));
            need(at + 2, len + RECORD_FIXED - 2, "signed")?;
            self.transactions[k]
                .decode_into(&b[at + 2..at + 2 + len])
                .map_err(|e| err(at + 2, "signed", e.to_string()))?;
            let p = at + 2 + len;
            self.truth[k] =
                truth_of(b[p]).ok_or_else(|| err(p, "truth", format!("unknown code {}", b[p])))?;
            // Counted here, in parallel, rather than by the caller between batches.
            if let Some(n) = truths.get_mut(usize::from(b[p])) {
                *n += 1;
            }
            let i64_at = |o: usize| {
                let mut x = [0u8; 8];
                x.copy_from_slice(&b[o..o + 8]);
                i64::from_le_bytes(x)
            };
            let (delivered, received) = (i64_at(p + 1), i64_at(p + 9));
            for (v, o, f) in [
                (delivered, p + 1, "delivered"),
                (received, p + 9, "received"),
            ] {
                if v < 0 {
                    return Err(err(o, f, format!("negative energy {v}")));
                }
            }
            let carried = match b[p + 17] {
                0 => false,
                1 => true,
                x => return Err(err(p + 17, "carried", format!("{x} is not 0 or 1"))),
            };
            self.readings[k] = Reading {
                delivered: Energy::from_raw(delivered),
                received: Energy::from_raw(received),
                carried,
            };
            at = p + 18;
        }
        if at != b.len() {
            return Err(DatasetError::at(
                name,
                base + at as u64,
                "chunk.body",
                format!("{} bytes after the last record", b.len() - at),
            ));
        }
        Ok(ChunkRead {
            checksum: stored,
            truths,
        })
    }
}

/// What reading one chunk gives besides its records.
pub(super) struct ChunkRead {
    checksum: [u8; CHECKSUM_LEN],
    /// Its records per truth, indexed as [`tally`] indexes them.
    truths: [u64; TRUTHS],
}

/// Streams a binary dataset: the header and members at open, then batches of contracts.
pub struct Reader {
    name: String,
    source: Box<dyn Source>,
    /// The next byte to read in file order (the header, then each chunk's head).
    offset: u64,
    size: u64,
    header: Header,
    members: Vec<Member>,
    rules: Arc<MarketRules>,
    /// Contracts located so far.
    read: u64,
    /// The header's, the members' and every checked chunk's checksum, for the trailer's.
    checksums: Vec<u8>,
    /// Each chunk's checksum and offset: a chunk whose bytes repeat an earlier chunk's holds
    /// the same contracts twice (a chunk written twice, its trailer resealed, passed every
    /// checksum). 16 bytes per 2,048 contracts.
    chunk_offsets: std::collections::HashMap<[u8; 8], u64>,
    /// Records read so far per truth, indexed as [`tally`] indexes them.
    truths: [u64; TRUTHS],
    done: bool,
    /// While the header is read: every byte read, for its checksum.
    header_bytes: Option<Vec<u8>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("file", &self.name)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Opens `path` and reads and checks its header and members.
    pub fn open(path: &Path) -> Result<Self, DatasetError> {
        let name = path.display().to_string();
        let file = crate::base::input::open_regular(path).map_err(|message| DatasetError {
            file: name.clone(),
            at: "file".into(),
            field: "-".into(),
            message,
        })?;
        let size = file
            .metadata()
            .map_err(|e| DatasetError::io(&name, &e))?
            .len();
        Self::start(name, Box::new(file), size)
    }

    /// Reads a dataset held in memory (`name` names it in errors): the fuzz targets' way in.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, DatasetError> {
        let size = bytes.len() as u64;
        Self::start(name.to_owned(), Box::new(InMemory(bytes)), size)
    }

    fn start(name: String, source: Box<dyn Source>, size: u64) -> Result<Self, DatasetError> {
        let mut r = Self {
            name,
            source,
            offset: 0,
            size,
            header: Header {
                format: 0,
                generator: 0,
                seed: 0,
                members: 0,
                contracts: 0,
                chunk_records: 0,
                params: Params {
                    market: WorkloadParams::scaled_paper(0, 0),
                    grid: None,
                    bounds: Bounds::of(&MarketRules::empty()),
                },
            },
            members: Vec::new(),
            rules: Arc::new(MarketRules::empty()),
            read: 0,
            checksums: Vec::new(),
            chunk_offsets: std::collections::HashMap::new(),
            truths: [0; TRUTHS],
            done: false,
            header_bytes: None,
        };
        r.read_header()?;
        Ok(r)
    }

    fn err(&self, offset: u64, field: &str, message: impl Into<String>) -> DatasetError {
        DatasetError::at(&self.name, offset, field, message)
    }

    /// Checks that the file has `n` more bytes.
    fn has(&self, n: u64, field: &str) -> Result<(), DatasetError> {
        let left = self.size.saturating_sub(self.offset);
        if n > left {
            return Err(self.err(
                self.offset,
                field,
                format!("truncated: {n} bytes needed, {left} left in the file"),
            ));
        }
        Ok(())
    }

    /// Reads exactly `n` bytes (after checking that the file has them).
    fn bytes(&mut self, n: usize, field: &str) -> Result<Vec<u8>, DatasetError> {
        self.has(n as u64, field)?;
        let at = self.offset;
        let mut buf = vec![0u8; n];
        self.source
            .read_exact_at(&mut buf, at)
            .map_err(|e| self.err(at, field, e.to_string()))?;
        self.offset += n as u64;
        if let Some(h) = &mut self.header_bytes {
            h.extend_from_slice(&buf);
        }
        Ok(buf)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], DatasetError> {
        let b = self.bytes(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&b);
        Ok(out)
    }

    fn u16(&mut self, field: &str) -> Result<u16, DatasetError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    fn u32(&mut self, field: &str) -> Result<u32, DatasetError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    fn u64(&mut self, field: &str) -> Result<u64, DatasetError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn read_header(&mut self) -> Result<(), DatasetError> {
        self.header_bytes = Some(Vec::new());
        let magic: [u8; 8] = self.array("magic")?;
        if magic != MAGIC {
            return Err(self.err(
                0,
                "magic",
                format!(
                    "not an ipow dataset (first bytes {:?}, expected {:?})",
                    String::from_utf8_lossy(&magic),
                    String::from_utf8_lossy(&MAGIC)
                ),
            ));
        }
        let at = self.offset;
        let format = self.u16("format")?;
        version("format", format, FORMAT_VERSION).map_err(|m| self.err(at, "format", m))?;
        let at = self.offset;
        let generator = self.u16("generator")?;
        version("generator", generator, GENERATOR_VERSION)
            .map_err(|m| self.err(at, "generator", m))?;
        let seed = self.u64("seed")?;
        let at_members = self.offset;
        let members = self.u64("members")?;
        let at_contracts = self.offset;
        let contracts = self.u64("contracts")?;
        let at = self.offset;
        let chunk_records = self.u32("chunk_records")?;
        if chunk_records == 0 || chunk_records > CHUNK_RECORDS {
            return Err(self.err(
                at,
                "chunk_records",
                format!("{chunk_records} is outside 1..={CHUNK_RECORDS}"),
            ));
        }
        let at = self.offset;
        let params_len = self.u32("params_len")?;
        if params_len > MAX_PARAMS_LEN {
            return Err(self.err(
                at,
                "params_len",
                format!("{params_len} bytes declared; the limit is {MAX_PARAMS_LEN}"),
            ));
        }
        let at_params = self.offset;
        let params_bytes = self.bytes(params_len as usize, "params")?;
        let head_end = self.offset;
        let head = self.header_bytes.take().unwrap_or_default();
        let stored: [u8; 8] = self.array("header_checksum")?;
        let head_sum = checksum(&head).to_le_bytes();
        if head_sum != stored {
            return Err(self.err(
                head_end,
                "header_checksum",
                "the header does not match its checksum",
            ));
        }
        let params: Params = serde_json::from_slice(&params_bytes)
            .map_err(|e| self.err(at_params, "params", e.to_string()))?;
        counts_agree(&params.market, seed, members, contracts)
            .map_err(|(field, message)| self.err(at_params, field, message))?;
        // Members: bounded by what is left of the file before allocating.
        let left = self.size.saturating_sub(self.offset);
        if members > left / MEMBER_LEN as u64 {
            return Err(self.err(
                at_members,
                "members",
                format!(
                    "{members} declared; the file has room for at most {}",
                    left / MEMBER_LEN as u64
                ),
            ));
        }
        let min_contract_bytes = contracts.saturating_mul(RECORD_MIN as u64);
        if min_contract_bytes > left {
            return Err(self.err(
                at_contracts,
                "contracts",
                format!(
                    "{contracts} declared; the file has room for at most {}",
                    left / RECORD_MIN as u64
                ),
            ));
        }
        let at_body = self.offset;
        // Bounded by the file size just above.
        let member_bytes = usize::try_from(members)
            .unwrap_or(usize::MAX)
            .saturating_mul(MEMBER_LEN);
        let body = self.bytes(member_bytes, "members")?;
        let stored: [u8; 8] = self.array("members_checksum")?;
        let members_sum = checksum(&body).to_le_bytes();
        if members_sum != stored {
            return Err(self.err(
                at_body,
                "members_checksum",
                "the member records do not match their checksum",
            ));
        }
        let mut list = Vec::with_capacity(body.len() / MEMBER_LEN);
        for (i, rec) in body.chunks_exact(MEMBER_LEN).enumerate() {
            let at = at_body + (i * MEMBER_LEN) as u64;
            let u32_at =
                |o: usize| u32::from_le_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]]);
            let role = role_of(rec[4]).ok_or_else(|| {
                self.err(
                    at + 4,
                    &format!("members[{i}].role"),
                    format!("unknown role code {}", rec[4]),
                )
            })?;
            let bus = match u32_at(5) {
                u32::MAX => None,
                b => Some(b),
            };
            let mut public_key = [0u8; 32];
            public_key.copy_from_slice(&rec[9..41]);
            let mut limit = [0u8; 8];
            limit.copy_from_slice(&rec[41..49]);
            list.push(Member {
                address: Address(u32_at(0)),
                role,
                bus,
                public_key,
                limit: Energy::from_raw(i64::from_le_bytes(limit)),
            });
        }
        self.rules = Arc::new(rules_of(&self.name, &list, &params.bounds)?);
        self.members = list;
        self.checksums.extend_from_slice(&head_sum);
        self.checksums.extend_from_slice(&members_sum);
        self.header = Header {
            format,
            generator,
            seed,
            members,
            contracts,
            chunk_records,
            params,
        };
        Ok(())
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// How many of the records read so far carry each truth, indexed as [`tally`] indexes them
    /// (counted while each chunk is decoded).
    pub fn truths_read(&self) -> &[u64; TRUTHS] {
        &self.truths
    }

    /// The participants.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The validators' rules.
    pub fn rules(&self) -> Arc<MarketRules> {
        Arc::clone(&self.rules)
    }

    /// The file's name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Locates the next chunk from its head (checking its counts against their bounds and its
    /// bytes against the file), or None when every declared contract was located.
    fn next_chunk(&mut self) -> Result<Option<Loc>, DatasetError> {
        if self.read == self.header.contracts {
            return Ok(None);
        }
        let offset = self.offset;
        let records = self.u32("chunk.records")?;
        let left = self.header.contracts - self.read;
        if records == 0 || records > self.header.chunk_records || u64::from(records) > left {
            return Err(self.err(
                offset,
                "chunk.records",
                format!(
                    "{records} records declared; expected 1 to {} ({left} contracts left)",
                    self.header.chunk_records
                ),
            ));
        }
        let at = self.offset;
        let body_len = self.u32("chunk.body_len")?;
        let bounds =
            u64::from(records) * RECORD_MIN as u64..=u64::from(records) * RECORD_MAX as u64;
        if !bounds.contains(&u64::from(body_len)) {
            return Err(self.err(
                at,
                "chunk.body_len",
                format!("{body_len} bytes for {records} records; expected {bounds:?}"),
            ));
        }
        self.has(u64::from(body_len), "chunk.body")?;
        self.offset += u64::from(body_len);
        self.has(CHECKSUM_LEN as u64, "chunk.checksum")?;
        self.offset += CHECKSUM_LEN as u64;
        self.read += u64::from(records);
        Ok(Some(Loc {
            offset,
            records,
            body_len,
        }))
    }

    /// Adds a checked chunk's checksum for the trailer's; a checksum (and so, but for a 2^-64
    /// chance, the bytes) an earlier chunk had is the same contracts stored twice.
    fn add_chunk(&mut self, sum: &[u8; CHECKSUM_LEN], offset: u64) -> Result<(), DatasetError> {
        if let Some(first) = self.chunk_offsets.insert(*sum, offset) {
            return Err(self.err(
                offset,
                "chunk",
                format!(
                    "the same bytes as the chunk at byte {first}: its contracts are stored twice"
                ),
            ));
        }
        self.checksums.extend_from_slice(sum);
        Ok(())
    }

    fn trailer(&mut self) -> Result<(), DatasetError> {
        let at = self.offset;
        let magic: [u8; 8] = self.array("trailer.magic")?;
        if magic != TRAILER_MAGIC {
            return Err(self.err(
                at,
                "trailer.magic",
                "expected the trailer after the last chunk",
            ));
        }
        let at = self.offset;
        let count = self.u64("trailer.contracts")?;
        if count != self.header.contracts {
            return Err(self.err(
                at,
                "trailer.contracts",
                format!("{count}; the header declares {}", self.header.contracts),
            ));
        }
        let at = self.offset;
        let stored: [u8; 8] = self.array("trailer.checksum")?;
        if checksum(&self.checksums).to_le_bytes() != stored {
            return Err(self.err(
                at,
                "trailer.checksum",
                "the file checksum does not match the chunks read",
            ));
        }
        if self.offset != self.size {
            return Err(self.err(
                self.offset,
                "trailer",
                format!("{} bytes after the trailer", self.size - self.offset),
            ));
        }
        Ok(())
    }

    /// Reads up to `max` contracts (whole chunks; at least one chunk): every chunk's checksum is
    /// checked and every record decoded, in parallel. None once every contract was read and the
    /// trailer checked.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<Workload>, DatasetError> {
        let mut w = self.empty_batch();
        Ok(self.next_batch_into(max, &mut w)?.then_some(w))
    }

    /// A batch of this dataset holding no contracts: what [`Reader::next_batch_into`] fills.
    pub fn empty_batch(&self) -> Workload {
        Workload {
            params: self.header.params.market.clone(),
            rules: Arc::clone(&self.rules),
            transactions: Vec::new(),
            truth: Vec::new(),
            readings: Vec::new(),
        }
    }

    /// [`Reader::next_batch`] into `into`, replacing its contents and reusing its vectors'
    /// memory: a loop that consumes one batch before reading the next touches fresh memory only
    /// for the first. Returns false (and leaves `into` empty) once every contract was read and
    /// the trailer checked; on an error `into` is left empty too.
    pub fn next_batch_into(
        &mut self,
        max: usize,
        into: &mut Workload,
    ) -> Result<bool, DatasetError> {
        let read = self.read_batch(max, into);
        if !matches!(read, Ok(true)) {
            into.transactions.clear();
            into.truth.clear();
            into.readings.clear();
        }
        read
    }

    fn read_batch(&mut self, max: usize, into: &mut Workload) -> Result<bool, DatasetError> {
        let mut locs = Vec::new();
        let mut count = 0usize;
        while count < max.max(1) {
            match self.next_chunk()? {
                Some(loc) => {
                    count += loc.records as usize;
                    locs.push(loc);
                }
                None => break,
            }
        }
        if locs.is_empty() {
            if !self.done {
                self.trailer()?;
                self.done = true;
            }
            return Ok(false);
        }
        // Slots are overwritten in place: resizing drops the slots past this batch's count, and
        // writes new ones only when this batch is larger than the vector already is.
        into.transactions.resize(count, SignedContract::blank());
        into.truth.resize(count, Truth::Valid);
        into.readings.resize(
            count,
            Reading {
                delivered: Energy::ZERO,
                received: Energy::ZERO,
                carried: false,
            },
        );
        // Each chunk gets its own disjoint part of the record slots.
        let mut jobs = Vec::with_capacity(locs.len());
        let mut txs = &mut into.transactions[..];
        let (mut truths, mut reads) = (&mut into.truth[..], &mut into.readings[..]);
        for &loc in &locs {
            let n = loc.records as usize;
            let (x, rest) = std::mem::take(&mut txs).split_at_mut(n);
            txs = rest;
            let (t, rest) = std::mem::take(&mut truths).split_at_mut(n);
            truths = rest;
            let (r, rest) = std::mem::take(&mut reads).split_at_mut(n);
            reads = rest;
            jobs.push(ChunkJob {
                loc,
                transactions: x,
                truth: t,
                readings: r,
            });
        }
        let (name, source) = (&self.name, &*self.source);
        let reads: Vec<Result<ChunkRead, DatasetError>> = jobs
            .into_par_iter()
            .map(|job| job.read_and_scan(source, name))
            .collect();
        // The first failing chunk in file order names the error.
        for (read, loc) in reads.into_iter().zip(&locs) {
            let read = read?;
            self.add_chunk(&read.checksum, loc.offset)?;
            for (total, n) in self.truths.iter_mut().zip(read.truths) {
                *total += n;
            }
        }
        if self.read == self.header.contracts && !self.done {
            self.trailer()?;
            self.done = true;
        }
        into.params.clone_from(&self.header.params.market);
        into.rules = Arc::clone(&self.rules);
        Ok(true)
    }
}
