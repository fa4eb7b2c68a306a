//! Keys and signatures, the node secret, key admission, the signature rule and its batch
//! verifier, SHA-256 lanes and Merkle trees.

pub mod admission;
pub mod keys;
pub mod merkle;
pub mod secret;
pub mod sha_lanes;
pub mod verify;
