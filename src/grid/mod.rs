//! Real grids: the MATPOWER case format and the DC power flow of bilateral trades.
//!
//! The parser reads `mpc.baseMVA`, `mpc.bus`, `mpc.gen` and `mpc.branch` of a MATPOWER
//! version-2 case (comments after `%`, rows ended by `;` or a line end, scientific notation);
//! every other block (`gencost`, `bus_name`, ...) is skipped. Every error names the file, the
//! line and the column. Bus numbers are the file's own; branches are their 0-based row in
//! `mpc.branch`.
//!
//! The DC model of a trade set: a trade injects `mw` at the seller's bus and withdraws it at the
//! buyer's bus; branch susceptance b = status / (x * tap) (tap 0 means 1); flow on branch k is
//! b_k (theta_from - theta_to) in MW at the from end. Phase shifts, shunts and the case's own
//! loads and generators are not part of a trade's flow. The reduced susceptance matrix (slack
//! row and column removed) is factorized once per grid by faer: sparse Cholesky when every
//! in-service susceptance is positive, sparse LU with partial pivoting otherwise (a series
//! capacitor, as on row 178 of case300, makes a susceptance negative and the matrix need not be
//! positive definite). Every solve reuses the factor.

mod dc;
mod matpower;
pub mod placement;
mod trades;

pub use dc::{BranchFlow, DcModel, FlowReport};
pub use matpower::MAX_GRID_BYTES;
pub use trades::{MAX_TRADES_BYTES, Trade, parse_trades, read_trades};

use std::collections::HashMap;
use std::fmt;

use faer::linalg::solvers::Solve;
use faer::sparse::linalg::solvers::{Llt, Lu};
use faer::sparse::{SparseColMat, Triplet};
use faer::{ColMut, MatMut};
use rayon::prelude::*;
use serde::Serialize;

/// A located error in a grid file, or in what was asked of a grid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct GridError {
    /// The file (or `<trades>` / `<grid>` for requests about a loaded grid).
    pub file: String,
    /// 1-based line, 0 when not about a place in the file.
    pub line: usize,
    /// 1-based column, 0 when not about a place in the file.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for GridError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// A bus of the case.
#[derive(Clone, Debug, Serialize)]
pub struct Bus {
    /// The file's bus number.
    pub number: u32,
    /// MATPOWER bus type: 1 PQ, 2 PV, 3 reference, 4 isolated.
    pub kind: u8,
    /// The case's own real load (MW); not part of a trade's flow, used to place purchasers.
    pub pd: f64,
}

/// A generator of the case (used to place sellers).
#[derive(Clone, Debug, Serialize)]
pub struct Generator {
    /// The bus number it sits at.
    pub bus: u32,
    /// Its maximum real output (MW).
    pub pmax: f64,
    /// Status column not 0.
    pub in_service: bool,
}

/// A branch (line or transformer): one row of `mpc.branch`.
#[derive(Clone, Debug, Serialize)]
pub struct Branch {
    /// From bus number.
    pub from_bus: u32,
    /// To bus number.
    pub to_bus: u32,
    /// From bus index (into [`Grid::buses`]).
    pub from: usize,
    /// To bus index.
    pub to: usize,
    /// Series reactance (p.u.).
    pub x: f64,
    /// Off-nominal tap ratio as written (0 means 1).
    pub ratio: f64,
    /// Long-term rating (MVA); 0 means unlimited.
    pub rate_a: f64,
    /// Status column not 0.
    pub in_service: bool,
    /// Susceptance status / (x * tap), 0 out of service.
    pub b: f64,
}

impl Branch {
    /// True when the branch has a limit (rateA > 0) and carries flow.
    pub fn is_limited(&self) -> bool {
        self.in_service && self.rate_a > 0.0
    }
}

/// A parsed case.
#[derive(Clone, Debug)]
pub struct Grid {
    /// Where it came from.
    pub source: String,
    /// `mpc.baseMVA`.
    pub base_mva: f64,
    /// Buses in file order.
    pub buses: Vec<Bus>,
    /// Generators in file order.
    pub generators: Vec<Generator>,
    /// Branches in file order (index = row in `mpc.branch`).
    pub branches: Vec<Branch>,
    /// Index of the slack bus (the first bus of type 3).
    pub slack: usize,
    index: HashMap<u32, usize>,
}

impl Grid {
    /// The index of bus `number`, if the case has it.
    pub fn bus_index(&self, number: u32) -> Option<usize> {
        self.index.get(&number).copied()
    }

    /// Each bus's number in the file, by index: what users see for a bus index.
    pub fn bus_numbers(&self) -> Vec<u32> {
        self.buses.iter().map(|b| b.number).collect()
    }

    /// The same grid with another slack bus (flows of balanced trades do not change).
    pub fn with_slack(&self, number: u32) -> Result<Grid, GridError> {
        let i = self.bus_index(number).ok_or_else(|| GridError {
            file: self.source.clone(),
            line: 0,
            column: 0,
            message: format!("bus {number} is not in the case"),
        })?;
        let mut g = self.clone();
        g.slack = i;
        Ok(g)
    }

    /// SHA-256 over what a trade's flows depend on, in file order: `baseMVA`, the slack bus,
    /// each bus's number, and each branch's end bus numbers, reactance, tap ratio, rating and
    /// status (floats as their IEEE-754 bits, big-endian). A store records it, so a committed
    /// base is never read onto another grid.
    pub fn fingerprint(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.base_mva.to_bits().to_be_bytes());
        h.update((self.slack as u64).to_be_bytes());
        h.update((self.buses.len() as u64).to_be_bytes());
        for b in &self.buses {
            h.update(b.number.to_be_bytes());
        }
        h.update((self.branches.len() as u64).to_be_bytes());
        for b in &self.branches {
            h.update(b.from_bus.to_be_bytes());
            h.update(b.to_bus.to_be_bytes());
            for v in [b.x, b.ratio, b.rate_a] {
                h.update(v.to_bits().to_be_bytes());
            }
            h.update([u8::from(b.in_service)]);
        }
        h.finalize().into()
    }

    /// Summary figures for `ipow grid info`.
    pub fn info(&self) -> GridInfo {
        let limited: Vec<f64> = self
            .branches
            .iter()
            .filter(|b| b.is_limited())
            .map(|b| b.rate_a)
            .collect();
        let mut pairs: HashMap<(usize, usize), u32> = HashMap::new();
        for b in &self.branches {
            *pairs
                .entry((b.from.min(b.to), b.from.max(b.to)))
                .or_default() += 1;
        }
        GridInfo {
            source: self.source.clone(),
            base_mva: self.base_mva,
            buses: self.buses.len(),
            generators: self.generators.len(),
            branches: self.branches.len(),
            in_service_branches: self.branches.iter().filter(|b| b.in_service).count(),
            parallel_branch_rows: pairs
                .values()
                .filter(|&&c| c > 1)
                .map(|&c| c as usize)
                .sum(),
            negative_reactance_rows: self
                .branches
                .iter()
                .enumerate()
                .filter(|(_, b)| b.in_service && b.b < 0.0)
                .map(|(i, _)| i)
                .collect(),
            slack_bus: self.buses[self.slack].number,
            load_buses: self.buses.iter().filter(|b| b.pd > 0.0).count(),
            total_load_mw: self.buses.iter().map(|b| b.pd).sum(),
            limited_branches: limited.len(),
            unlimited_branches: self.branches.len() - limited.len(),
            rate_a_min: limited.iter().copied().fold(f64::INFINITY, f64::min),
            rate_a_max: limited.iter().copied().fold(0.0, f64::max),
        }
    }
}

/// What `ipow grid info` prints.
#[derive(Clone, Debug, Serialize)]
pub struct GridInfo {
    /// The file.
    pub source: String,
    /// `mpc.baseMVA`.
    pub base_mva: f64,
    /// Bus count.
    pub buses: usize,
    /// Generator rows.
    pub generators: usize,
    /// Branch rows.
    pub branches: usize,
    /// Branches with status not 0.
    pub in_service_branches: usize,
    /// Rows that share their bus pair with another row.
    pub parallel_branch_rows: usize,
    /// Rows with negative susceptance (series capacitors).
    pub negative_reactance_rows: Vec<usize>,
    /// The slack bus number.
    pub slack_bus: u32,
    /// Buses with Pd > 0.
    pub load_buses: usize,
    /// Sum of Pd (MW).
    pub total_load_mw: f64,
    /// Branches with rateA > 0 (in service).
    pub limited_branches: usize,
    /// Branches with rateA = 0 or out of service.
    pub unlimited_branches: usize,
    /// Smallest positive rateA (MVA).
    pub rate_a_min: f64,
    /// Largest rateA (MVA).
    pub rate_a_max: f64,
}
