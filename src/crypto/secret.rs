//! The node secret: 32 bytes kept outside the store from which every node key of a run is
//! derived, each under its own label (HMAC-SHA256 keyed by the secret):
//!
//! | key | label |
//! |---|---|
//! | validator v's MAC key (shared with the supervision node) | `ipow/validator-mac/v1` ‖ v (u32 BE) |
//! | the supervision node's Ed25519 seed (signs consortium blocks) | `ipow/supervisor/v1` |
//! | the master node of end e's Ed25519 seed (signs its master blocks) | `ipow/master/v1` ‖ e (u8) |
//! | the commitment a store's genesis carries | `ipow/mac-commitment/v1` |
//!
//! Nothing in a store derives a key: the genesis holds the five public keys and the commitment
//! (an HMAC output: it tells whether a secret is the store's and says nothing about it). In this one-process simulation one secret seeds every node; the labels
//! keep the keys independent, so each node could hold its own.
//!
//! The same secret gives the same keys, so a run with a given secret file is reproducible to
//! the byte. A run that records nothing uses [`NodeSecret::unrecorded`], a public function of
//! the IPOW seed: there is no store whose history it could forge.
//!
//! The file: one line of 64 hex digits, after any `#` comment lines; owner-readable only.

use ring::hmac;
use sha2::{Digest, Sha256};

/// The most bytes a secret file may hold.
pub const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// The secret every node key of a run comes from. Its bytes are never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeSecret([u8; 32]);

impl std::fmt::Debug for NodeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeSecret(..)")
    }
}

impl NodeSecret {
    /// A secret from these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// 32 bytes from the operating system's random source.
    pub fn generate() -> Result<Self, String> {
        use ring::rand::SecureRandom as _;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| "the operating system's random source failed".to_owned())?;
        Ok(Self(bytes))
    }

    /// The public stand-in of a run that records nothing: SHA-256 of a tag and the seed.
    pub fn unrecorded(seed: u64) -> Self {
        let mut h = Sha256::new();
        h.update(b"ipow/unrecorded-node-secret/v1");
        h.update(seed.to_be_bytes());
        Self(h.finalize().into())
    }

    fn derive(&self, label: &[u8], suffix: &[u8]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(label);
        ctx.update(suffix);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// The MAC key validator `v` shares with the supervision node.
    pub fn validator_mac(&self, v: u32) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.validator_mac_bytes(v))
    }

    /// [`NodeSecret::validator_mac`]'s key bytes, which the supervision node hands to the
    /// process that runs validator `v` (and to no other).
    pub fn validator_mac_bytes(&self, v: u32) -> [u8; 32] {
        self.derive(b"ipow/validator-mac/v1", &v.to_be_bytes())
    }

    /// The supervision node's Ed25519 seed.
    pub fn supervisor_seed(&self) -> [u8; 32] {
        self.derive(b"ipow/supervisor/v1", &[])
    }

    /// The Ed25519 seed of the master node of the end with code `end` (0-3).
    pub fn master_seed(&self, end: u8) -> [u8; 32] {
        self.derive(b"ipow/master/v1", &[end])
    }

    /// What a store's genesis carries to recognise its secret.
    pub fn commitment(&self) -> [u8; 32] {
        self.derive(b"ipow/mac-commitment/v1", &[])
    }

    /// Reads a secret file: a regular file, owner-readable only, at most
    /// [`MAX_SECRET_FILE_BYTES`], one line of 64 hex digits after any `#` comments.
    pub fn read(path: &std::path::Path) -> Result<Self, String> {
        let name = path.display();
        let text = crate::base::input::read_text(path, MAX_SECRET_FILE_BYTES)
            .map_err(|m| format!("{name}: {m}"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path)
                .map_err(|e| format!("{name}: {e}"))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{name}: a node secret readable by others (mode {:o}) is no secret; \
                     chmod 600 it",
                    mode & 0o777
                ));
            }
        }
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(k, l)| (k + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let [(line, hex_text)] = lines[..] else {
            return Err(format!(
                "{name}: expected one line of 64 hex digits (the node secret), found {} lines",
                lines.len()
            ));
        };
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut bytes)
            .map_err(|e| format!("{name}:{line}: node secret: expected 64 hex digits ({e})"))?;
        Ok(Self(bytes))
    }

    /// Writes the secret to a new file (never over an existing one), owner-readable only, and
    /// syncs it.
    pub fn write_new(&self, path: &std::path::Path) -> Result<(), String> {
        use std::io::Write as _;
        let name = path.display();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!(
                    "{name} already exists (an earlier run's node secret?): pass it with \
                     --secret, or move it away"
                )
            } else {
                format!("{name}: cannot write the node secret: {e}")
            }
        })?;
        let text = format!(
            "# ipow node secret: it signs this store's blocks and keys its validators' proofs.\n\
             # Keep it apart from the store; `ipow audit --secret` needs it to check proof tags.\n\
             {}\n",
            hex::encode(self.0)
        );
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("{name}: cannot write the node secret: {e}"))
    }
}
