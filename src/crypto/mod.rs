//! Keys and signatures, key admission, SHA-256 lanes and Merkle trees.

pub mod admission;
pub mod keys;
pub mod merkle;
pub mod sha_lanes;
