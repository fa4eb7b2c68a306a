//! ipow: an energy-market transaction engine after Liu et al. (2020), "An Integrated Energy
//! Service Transaction Model Based on Energy Blockchain", with its Improved Proof of Work (IPOW)
//! consensus measured against plain proof of work.
//!
//! The folders spell one period, lowest first; each may use only the folders listed before it
//! (`tests/tidy.rs` enforces the order): `base` → `crypto` → `contract` → `ledger` → `grid` →
//! `market` → `validate` → `consensus` → `cluster` → `chain` → `pipeline` → `lab` → `report`, and `fuzz`
//! above them all. The binary (`src/main.rs`, `src/cli/`) parses arguments and renders. See
//! `ARCHITECTURE.md` for the code map and the invariants.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod base;
pub mod chain;
pub mod cluster;
pub mod consensus;
pub mod contract;
pub mod crypto;
pub mod fuzz;
pub mod grid;
pub mod lab;
pub mod ledger;
pub mod market;
pub mod pipeline;
pub mod report;
pub mod validate;
