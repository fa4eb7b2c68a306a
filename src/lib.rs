//! ipow: an energy-market transaction engine after Liu et al. (2020), "An Integrated Energy
//! Service Transaction Model Based on Energy Blockchain", with its Improved Proof of Work (IPOW)
//! consensus measured against plain proof of work.
//!
//! The library holds all logic; `src/main.rs` only parses arguments and renders. See
//! `ARCHITECTURE.md` for the code map and the invariants.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod admission;
pub mod amount;
pub mod audit;
pub mod block;
pub mod chain;
pub mod compare;
pub mod congestion;
pub mod consensus;
pub mod contract;
pub mod crypto;
pub mod dataset;
pub mod domain;
pub mod fuzz;
pub mod grid;
pub mod input;
pub mod merkle;
pub mod paper;
pub mod plot;
pub mod readings;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod settle;
pub mod settlement;
pub mod sha_lanes;
pub mod simulate;
pub mod store;
pub mod stress;
pub mod validate;
pub mod workload;
