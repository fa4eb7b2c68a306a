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

pub mod placement;

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

/// Minimum columns per row: MATPOWER version 2 widths (PGLib `gen` rows have 10).
const BUS_COLUMNS: usize = 13;
const GEN_COLUMNS: usize = 10;
const BRANCH_COLUMNS: usize = 13;

#[derive(Clone, Copy)]
struct Cell {
    value: f64,
    line: usize,
    column: usize,
}

struct Row {
    cells: Vec<Cell>,
    line: usize,
    column: usize,
}

struct Block {
    rows: Vec<Row>,
    line: usize,
}

struct Parser<'a> {
    file: &'a str,
}

type Lines<'t> = std::iter::Peekable<std::iter::Enumerate<std::str::Lines<'t>>>;

/// What [`read_blocks`] finds.
struct Blocks {
    base_mva: Option<f64>,
    blocks: HashMap<&'static str, Block>,
    /// The last line read.
    end: usize,
}

/// The buses, their index by number, and the slack bus's index.
struct Buses {
    buses: Vec<Bus>,
    index: HashMap<u32, usize>,
    slack: usize,
}

/// The file's `mpc.baseMVA` and its `bus`, `gen` and `branch` blocks (other blocks are read and
/// skipped), with the last line read.
fn read_blocks(p: &Parser<'_>, text: &str) -> Result<Blocks, GridError> {
    let mut base_mva: Option<f64> = None;
    let mut blocks: HashMap<&'static str, Block> = HashMap::new();
    let mut lines = text.lines().enumerate().peekable();
    let mut last_line = 0usize;
    while let Some((i, raw)) = lines.next() {
        let line_no = i + 1;
        last_line = line_no;
        let line = strip_comment(raw);
        let trimmed = line.trim_start();
        let Some(rest) = trimmed.strip_prefix("mpc.") else {
            continue;
        };
        let start_col = line.len() - trimmed.len() + 1;
        let Some(eq) = rest.find('=') else {
            continue;
        };
        let name = rest[..eq].trim();
        let value = rest[eq + 1..].trim_start();
        let value_col = line.len() - value.len() + 1;
        if let Some(after) = value.strip_prefix('[') {
            let wanted = match name {
                "bus" => Some("bus"),
                "gen" => Some("gen"),
                "branch" => Some("branch"),
                _ => None,
            };
            let opened = (line_no, after.to_owned(), value_col + 1);
            let block = read_block(
                p,
                name,
                wanted.is_some(),
                opened,
                &mut lines,
                &mut last_line,
            )?;
            if let Some(w) = wanted
                && blocks.insert(w, block).is_some()
            {
                return Err(p.err(line_no, start_col, format!("mpc.{name} given twice")));
            }
        } else if name == "baseMVA" {
            let token = value.trim_end().trim_end_matches(';').trim();
            let v = parse_number(p, token, line_no, value_col)?;
            if v <= 0.0 {
                return Err(p.err(line_no, value_col, "mpc.baseMVA must be positive"));
            }
            base_mva = Some(v);
        }
    }
    Ok(Blocks {
        base_mva,
        blocks,
        end: last_line.max(1),
    })
}

/// One `[ ... ]` block from the content after its `[` (line, text, column) to its `]`; rows end
/// at `;` or a line end. `keep` false reads the block only to find its end.
fn read_block(
    p: &Parser<'_>,
    name: &str,
    keep: bool,
    opened: (usize, String, usize),
    lines: &mut Lines<'_>,
    last_line: &mut usize,
) -> Result<Block, GridError> {
    let line_no = opened.0;
    let mut block = Block {
        rows: Vec::new(),
        line: line_no,
    };
    let mut row: Option<Row> = None;
    let mut closed = false;
    // The first line's content after `[`, then following lines until `]`.
    let mut segment = opened;
    loop {
        let (ln, content, col0) = segment;
        if scan_segment(p, ln, &content, col0, keep, &mut row, &mut block.rows)? {
            closed = true;
            break;
        }
        // A line end ends a row.
        if let Some(r) = row.take() {
            block.rows.push(r);
        }
        match lines.next() {
            Some((j, next)) => {
                *last_line = j + 1;
                segment = (j + 1, strip_comment(next).to_owned(), 1);
            }
            None => break,
        }
    }
    if !closed {
        return Err(p.err(
            (*last_line).max(line_no),
            1,
            format!(
                "mpc.{name}: the file ends before the `]` closing the block opened at line {line_no}"
            ),
        ));
    }
    Ok(block)
}

/// The buses, their index by number, and the first reference bus (the slack).
fn read_buses(p: &Parser<'_>, bus_block: &Block) -> Result<Buses, GridError> {
    let mut buses = Vec::with_capacity(bus_block.rows.len());
    let mut index = HashMap::with_capacity(bus_block.rows.len());
    let mut slack = None;
    for (r, row) in bus_block.rows.iter().enumerate() {
        check_width(p, "bus", r, row, BUS_COLUMNS)?;
        let number = integer(p, "bus", r, "bus_i", row.cells[0], 1, u32::MAX.into())?;
        let kind = integer(p, "bus", r, "type", row.cells[1], 1, 4)?;
        let number = u32::try_from(number).unwrap_or(u32::MAX);
        if index.insert(number, buses.len()).is_some() {
            let c = row.cells[0];
            return Err(p.err(c.line, c.column, format!("bus {number} appears twice")));
        }
        if kind == 3 && slack.is_none() {
            slack = Some(buses.len());
        }
        buses.push(Bus {
            number,
            kind: u8::try_from(kind).unwrap_or(4),
            pd: row.cells[2].value,
        });
    }
    if buses.is_empty() {
        return Err(p.err(bus_block.line, 1, "mpc.bus has no rows"));
    }
    let slack = slack.ok_or_else(|| {
        p.err(
            bus_block.line,
            1,
            "no reference bus (type 3) in mpc.bus: the DC model needs a slack",
        )
    })?;
    Ok(Buses {
        buses,
        index,
        slack,
    })
}

/// The branches, their buses looked up in `index`, each in-service branch's susceptance.
fn read_branches(
    p: &Parser<'_>,
    branch_block: &Block,
    index: &HashMap<u32, usize>,
) -> Result<Vec<Branch>, GridError> {
    let bus_at = |r: usize, field: &str, c: Cell| branch_bus(p, index, r, field, c);
    let mut branches = Vec::with_capacity(branch_block.rows.len());
    for (r, row) in branch_block.rows.iter().enumerate() {
        check_width(p, "branch", r, row, BRANCH_COLUMNS)?;
        let (from_bus, from) = bus_at(r, "fbus", row.cells[0])?;
        let (to_bus, to) = bus_at(r, "tbus", row.cells[1])?;
        let x = row.cells[3].value;
        let rate_a = row.cells[5].value;
        let ratio = row.cells[8].value;
        let status = row.cells[10].value;
        let in_service = status != 0.0;
        if rate_a < 0.0 {
            let c = row.cells[5];
            return Err(p.err(
                c.line,
                c.column,
                format!("mpc.branch row {r} (rateA): {rate_a} is negative"),
            ));
        }
        let tap = if ratio == 0.0 { 1.0 } else { ratio };
        if in_service && from == to {
            let c = row.cells[1];
            return Err(p.err(
                c.line,
                c.column,
                format!("mpc.branch row {r}: from and to bus are both {from_bus}"),
            ));
        }
        if in_service && x * tap == 0.0 {
            let c = row.cells[3];
            return Err(p.err(
                c.line,
                c.column,
                format!(
                    "mpc.branch row {r} (x): zero reactance on an in-service branch; its DC susceptance is infinite"
                ),
            ));
        }
        let b = if in_service { 1.0 / (x * tap) } else { 0.0 };
        if !b.is_finite() {
            let c = row.cells[3];
            return Err(p.err(
                c.line,
                c.column,
                format!("mpc.branch row {r} (x): susceptance 1/(x*tap) is not finite"),
            ));
        }
        branches.push(Branch {
            from_bus,
            to_bus,
            from,
            to,
            x,
            ratio,
            rate_a,
            in_service,
            b,
        });
    }
    Ok(branches)
}

/// The bus number in a branch row's `field` and its index, or an error naming the row.
fn branch_bus(
    p: &Parser<'_>,
    index: &HashMap<u32, usize>,
    r: usize,
    field: &str,
    c: Cell,
) -> Result<(u32, usize), GridError> {
    let n = integer(p, "branch", r, field, c, 1, u32::MAX.into())?;
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    match index.get(&n) {
        Some(&i) => Ok((n, i)),
        None => Err(p.err(
            c.line,
            c.column,
            format!("mpc.branch row {r} ({field}): bus {n} is not in mpc.bus"),
        )),
    }
}

/// The generators, each at a bus of `index`.
fn read_generators(
    p: &Parser<'_>,
    gb: &Block,
    index: &HashMap<u32, usize>,
) -> Result<Vec<Generator>, GridError> {
    let mut generators = Vec::new();
    for (r, row) in gb.rows.iter().enumerate() {
        check_width(p, "gen", r, row, GEN_COLUMNS)?;
        let c = row.cells[0];
        let n = integer(p, "gen", r, "bus", c, 1, u32::MAX.into())?;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if !index.contains_key(&n) {
            return Err(p.err(
                c.line,
                c.column,
                format!("mpc.gen row {r} (bus): bus {n} is not in mpc.bus"),
            ));
        }
        generators.push(Generator {
            bus: n,
            pmax: row.cells[8].value,
            in_service: row.cells[7].value > 0.0,
        });
    }
    Ok(generators)
}

impl Parser<'_> {
    fn err(&self, line: usize, column: usize, message: impl Into<String>) -> GridError {
        GridError {
            file: self.file.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }
}

impl Grid {
    /// Reads and parses a case file.
    pub fn load(path: &std::path::Path) -> Result<Grid, GridError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| GridError {
            file: file.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        })?;
        Grid::parse(&file, &text)
    }

    /// Parses the text of a case; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Grid, GridError> {
        let p = Parser { file };
        let Blocks {
            base_mva,
            mut blocks,
            end,
        } = read_blocks(&p, crate::base::input::strip_bom(text))?;
        let base_mva = base_mva.ok_or_else(|| p.err(end, 1, "no mpc.baseMVA in the file"))?;
        let bus_block = blocks
            .remove("bus")
            .ok_or_else(|| p.err(end, 1, "no mpc.bus block in the file"))?;
        let branch_block = blocks
            .remove("branch")
            .ok_or_else(|| p.err(end, 1, "no mpc.branch block in the file"))?;
        let Buses {
            buses,
            index,
            slack,
        } = read_buses(&p, &bus_block)?;
        let branches = read_branches(&p, &branch_block, &index)?;
        let generators = match blocks.remove("gen") {
            Some(gb) => read_generators(&p, &gb, &index)?,
            None => Vec::new(),
        };
        Ok(Grid {
            source: file.to_owned(),
            base_mva,
            buses,
            generators,
            branches,
            slack,
            index,
        })
    }

    /// The index of bus `number`, if the case has it.
    pub fn bus_index(&self, number: u32) -> Option<usize> {
        self.index.get(&number).copied()
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

fn strip_comment(line: &str) -> &str {
    match line.find('%') {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Scans one line's worth of matrix content. Returns true when `]` closed the block.
fn scan_segment(
    p: &Parser<'_>,
    line: usize,
    content: &str,
    col0: usize,
    keep: bool,
    row: &mut Option<Row>,
    rows: &mut Vec<Row>,
) -> Result<bool, GridError> {
    let bytes = content.as_bytes();
    let mut i = 0usize;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' | b',' => i += 1,
            b';' => {
                if let Some(r) = row.take() {
                    rows.push(r);
                }
                i += 1;
            }
            b']' => {
                if let Some(r) = row.take() {
                    rows.push(r);
                }
                return Ok(true);
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !matches!(bytes[i], b' ' | b'\t' | b'\r' | b',' | b';' | b']')
                {
                    i += 1;
                }
                let column = col0 + start;
                if keep {
                    let token = &content[start..i];
                    let value = parse_number(p, token, line, column)?;
                    let r = row.get_or_insert_with(|| Row {
                        cells: Vec::new(),
                        line,
                        column,
                    });
                    r.cells.push(Cell {
                        value,
                        line,
                        column,
                    });
                }
            }
        }
    }
    Ok(false)
}

fn parse_number(p: &Parser<'_>, token: &str, line: usize, column: usize) -> Result<f64, GridError> {
    match token.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(p.err(line, column, format!("{token:?} is not a finite number"))),
        Err(_) => Err(p.err(line, column, format!("{token:?} is not a number"))),
    }
}

fn check_width(
    p: &Parser<'_>,
    block: &str,
    r: usize,
    row: &Row,
    want: usize,
) -> Result<(), GridError> {
    if row.cells.len() < want {
        let at = row
            .cells
            .last()
            .map_or((row.line, row.column), |c| (c.line, c.column));
        return Err(p.err(
            at.0,
            at.1,
            format!(
                "mpc.{block} row {r} has {} columns; the format has {want}",
                row.cells.len()
            ),
        ));
    }
    Ok(())
}

fn integer(
    p: &Parser<'_>,
    block: &str,
    r: usize,
    field: &str,
    c: Cell,
    min: i64,
    max: i64,
) -> Result<i64, GridError> {
    let v = c.value;
    #[allow(clippy::cast_possible_truncation)]
    let i = v as i64;
    #[allow(clippy::cast_precision_loss)]
    if v.fract() != 0.0 || i < min || i > max || i as f64 != v {
        return Err(p.err(
            c.line,
            c.column,
            format!("mpc.{block} row {r} ({field}): {v} is not an integer in {min}..={max}"),
        ));
    }
    Ok(i)
}

/// A trade as the CLI reads it: bus numbers and MW.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, Serialize)]
pub struct Trade {
    /// Where the seller injects.
    pub seller_bus: u32,
    /// Where the buyer withdraws.
    pub buyer_bus: u32,
    /// Power (MW).
    pub mw: f64,
}

/// The factorized DC model of one grid.
pub struct DcModel {
    grid: Grid,
    /// Reduced index of each bus; `usize::MAX` for the slack.
    reduced: Vec<usize>,
    /// Size of the reduced matrix (buses - 1).
    dim: usize,
    factor: Factor,
}

/// The factorization of the reduced susceptance matrix: Cholesky when it is positive definite
/// (every in-service susceptance positive, the usual case), LU with partial pivoting otherwise
/// (a series capacitor makes a susceptance negative).
enum Factor {
    Cholesky(Llt<usize, f64>),
    Lu(Box<Lu<usize, f64>>),
}

impl Factor {
    fn solve_in_place(&self, rhs: MatMut<'_, f64>) {
        match self {
            Factor::Cholesky(f) => f.solve_in_place(rhs),
            Factor::Lu(f) => f.solve_in_place(rhs),
        }
    }
}

impl fmt::Debug for DcModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DcModel")
            .field("grid", &self.grid.source)
            .field("buses", &self.grid.buses.len())
            .finish_non_exhaustive()
    }
}

impl DcModel {
    /// Checks connectivity and factorizes the reduced susceptance matrix once.
    pub fn new(grid: Grid) -> Result<DcModel, GridError> {
        let n = grid.buses.len();
        let source = grid.source.clone();
        let err = |message: String| GridError {
            file: source.clone(),
            line: 0,
            column: 0,
            message,
        };
        // Connectivity of the in-service network (isolated buses, type 4, are left out).
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for b in grid.branches.iter().filter(|b| b.in_service) {
            let (a, c) = (find(&mut parent, b.from), find(&mut parent, b.to));
            if a != c {
                parent[a] = c;
            }
        }
        let root = find(&mut parent, grid.slack);
        let cut_off: Vec<u32> = (0..n)
            .filter(|&i| grid.buses[i].kind != 4 && find(&mut parent, i) != root)
            .map(|i| grid.buses[i].number)
            .collect();
        if !cut_off.is_empty() {
            let shown: Vec<String> = cut_off.iter().take(10).map(u32::to_string).collect();
            return Err(err(format!(
                "the grid is not connected: {} bus(es) have no in-service path to the slack bus {} (e.g. {})",
                cut_off.len(),
                grid.buses[grid.slack].number,
                shown.join(", ")
            )));
        }
        let mut reduced = vec![usize::MAX; n];
        let mut next = 0usize;
        for (i, r) in reduced.iter_mut().enumerate() {
            if i != grid.slack {
                *r = next;
                next += 1;
            }
        }
        let m = next;
        let mut triplets = Vec::with_capacity(4 * grid.branches.len() + m);
        for br in grid.branches.iter().filter(|b| b.in_service) {
            let (f, t) = (reduced[br.from], reduced[br.to]);
            if f != usize::MAX {
                triplets.push(Triplet::new(f, f, br.b));
            }
            if t != usize::MAX {
                triplets.push(Triplet::new(t, t, br.b));
            }
            if f != usize::MAX && t != usize::MAX {
                triplets.push(Triplet::new(f, t, -br.b));
                triplets.push(Triplet::new(t, f, -br.b));
            }
        }
        // Isolated buses (type 4) with no branch: a unit diagonal keeps the matrix regular;
        // trades at them are refused in `bus`.
        for (i, bus) in grid.buses.iter().enumerate() {
            if bus.kind == 4 && i != grid.slack {
                triplets.push(Triplet::new(reduced[i], reduced[i], 1.0));
            }
        }
        if m == 0 {
            return Err(err(
                "the grid has a single bus: no branch can carry flow".into()
            ));
        }
        let mat = SparseColMat::<usize, f64>::try_new_from_triplets(m, m, &triplets)
            .map_err(|e| err(format!("cannot build the susceptance matrix: {e:?}")))?;
        let positive = grid.branches.iter().all(|b| !b.in_service || b.b > 0.0);
        let cholesky = if positive {
            mat.sp_cholesky(faer::Side::Lower).ok()
        } else {
            None
        };
        let factor = match cholesky {
            Some(f) => Factor::Cholesky(f),
            None => {
                let lu = mat.sp_lu().map_err(|e| {
                    err(format!("the reduced susceptance matrix is singular: {e:?}"))
                })?;
                Factor::Lu(Box::new(lu))
            }
        };
        let model = DcModel {
            grid,
            reduced,
            dim: m,
            factor,
        };
        // A numerically singular matrix shows as non-finite angles.
        let mut probe = vec![1.0; model.grid.buses.len()];
        probe[model.grid.slack] = 0.0;
        if model.angles(&probe).iter().any(|a| !a.is_finite()) {
            return Err(err(
                "the reduced susceptance matrix is numerically singular".into(),
            ));
        }
        Ok(model)
    }

    /// The grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The index of bus `number`, or an error naming it (isolated buses take no trades).
    pub fn bus(&self, number: u32) -> Result<usize, String> {
        match self.grid.bus_index(number) {
            Some(i) if self.grid.buses[i].kind == 4 => {
                Err(format!("bus {number} is isolated (type 4)"))
            }
            Some(i) => Ok(i),
            None => Err(format!("bus {number} is not in the case")),
        }
    }

    /// Voltage angles (in MW per unit susceptance, so that b * difference is MW) for net
    /// injections per bus (MW, index order). The slack's angle is 0 and its injection is
    /// whatever balances the rest.
    pub fn angles(&self, injections: &[f64]) -> Vec<f64> {
        let m = self.dim;
        let mut rhs = vec![0.0; m];
        for (i, &r) in self.reduced.iter().enumerate() {
            if r != usize::MAX {
                rhs[r] = injections[i];
            }
        }
        self.factor
            .solve_in_place(ColMut::from_slice_mut(&mut rhs).as_mat_mut());
        self.reduced
            .iter()
            .map(|&r| if r == usize::MAX { 0.0 } else { rhs[r] })
            .collect()
    }

    /// Flow on every branch row (MW at the from end) for net injections per bus.
    pub fn flows(&self, injections: &[f64]) -> Vec<f64> {
        let theta = self.angles(injections);
        self.grid
            .branches
            .iter()
            .map(|b| b.b * (theta[b.from] - theta[b.to]))
            .collect()
    }

    /// Net injection per bus of a trade set, with bus numbers checked.
    pub fn injections(&self, trades: &[Trade]) -> Result<Vec<f64>, GridError> {
        let mut inj = vec![0.0; self.grid.buses.len()];
        for (k, t) in trades.iter().enumerate() {
            let where_ = |field: &str, e: String| GridError {
                file: "<trades>".into(),
                line: 0,
                column: 0,
                message: format!("trades[{k}]: {field}: {e}"),
            };
            let s = self
                .bus(t.seller_bus)
                .map_err(|e| where_("seller_bus", e))?;
            let b = self.bus(t.buyer_bus).map_err(|e| where_("buyer_bus", e))?;
            if !t.mw.is_finite() {
                return Err(where_("mw", format!("{} is not a finite number", t.mw)));
            }
            inj[s] += t.mw;
            inj[b] -= t.mw;
        }
        Ok(inj)
    }

    /// Row `k` of the PTDF: the flow on branch `k` per MW injected at each bus and withdrawn at
    /// the slack. One solve (B is symmetric, so the row is B^-1 times the branch's incidence).
    pub fn ptdf_row(&self, k: usize) -> Vec<f64> {
        let br = &self.grid.branches[k];
        let n = self.grid.buses.len();
        if !br.in_service {
            return vec![0.0; n];
        }
        let mut a = vec![0.0; n];
        a[br.from] += br.b;
        a[br.to] -= br.b;
        self.angles(&a)
    }

    /// B^-1 of the reduced matrix, column-major (symmetric, so also row-major): solves on
    /// identity columns, in parallel column blocks.
    fn reduced_inverse(&self) -> Vec<f64> {
        let m = self.dim;
        let mut inv = vec![0.0; m * m];
        let chunk_cols = m.div_ceil(rayon::current_num_threads().max(1) * 4).max(1);
        inv.par_chunks_mut(chunk_cols * m)
            .enumerate()
            .for_each(|(c, block)| {
                let cols = block.len() / m;
                for j in 0..cols {
                    block[j * m + c * chunk_cols + j] = 1.0;
                }
                self.factor
                    .solve_in_place(MatMut::from_column_major_slice_mut(block, m, cols));
            });
        inv
    }

    /// PTDF factors of the branch rows `branches`, bus-major: entry `j * branches.len() + i` is
    /// the flow on branch `branches[i]` per MW injected at bus `j` (withdrawn at the slack),
    /// times `scale[i]`. A trade's column pair is then contiguous, which is what a validator
    /// reads to check one trade against every limit.
    pub fn ptdf_by_bus(&self, branches: &[usize], scale: &[f64]) -> Vec<f64> {
        let m = self.dim;
        let n = self.grid.buses.len();
        let w = branches.len();
        let inv = self.reduced_inverse();
        let mut out = vec![0.0; n * w];
        if w == 0 {
            return out;
        }
        out.par_chunks_mut(w).enumerate().for_each(|(j, row)| {
            let r = self.reduced[j];
            if r == usize::MAX {
                return; // the slack: every factor 0
            }
            // B^-1 is symmetric: row r of it is column r.
            let x = &inv[r * m..(r + 1) * m];
            let at = |bus: usize| match self.reduced[bus] {
                usize::MAX => 0.0,
                q => x[q],
            };
            for ((o, &k), &sc) in row.iter_mut().zip(branches).zip(scale) {
                let br = &self.grid.branches[k];
                if br.in_service {
                    *o = sc * br.b * (at(br.from) - at(br.to));
                }
            }
        });
        out
    }

    /// The full PTDF, every branch row by every bus, row-major. Computed as
    /// B_f B^-1: the inverse of the reduced matrix by solves on identity columns, in parallel
    /// column blocks, then one difference of two inverse columns per branch (B^-1 is symmetric).
    pub fn ptdf_full(&self) -> Vec<f64> {
        let m = self.dim;
        let n = self.grid.buses.len();
        let inv = self.reduced_inverse();
        let zeros = vec![0.0; m];
        let mut out = vec![0.0; self.grid.branches.len() * n];
        out.par_chunks_mut(n)
            .zip(self.grid.branches.par_iter())
            .for_each(|(row, br)| {
                if !br.in_service {
                    return;
                }
                // Reduced index r is bus index r below the slack and r + 1 above it, so a row
                // is two contiguous runs: b (X[.., f] - X[.., t]) with the slack's entry 0.
                let col = |r: usize| {
                    if r == usize::MAX {
                        &zeros[..]
                    } else {
                        &inv[r * m..(r + 1) * m]
                    }
                };
                let (cf, ct) = (col(self.reduced[br.from]), col(self.reduced[br.to]));
                let s = self.grid.slack;
                let (below, above) = row.split_at_mut(s);
                for ((o, a), c) in below.iter_mut().zip(&cf[..s]).zip(&ct[..s]) {
                    *o = br.b * (a - c);
                }
                for ((o, a), c) in above[1..].iter_mut().zip(&cf[s..]).zip(&ct[s..]) {
                    *o = br.b * (a - c);
                }
            });
        out
    }
}

/// One branch's flow for `ipow grid flows`.
#[derive(Clone, Debug, Serialize)]
pub struct BranchFlow {
    /// Row in `mpc.branch`.
    pub branch_index: usize,
    /// From bus number.
    pub from_bus: u32,
    /// To bus number.
    pub to_bus: u32,
    /// Flow at the from end (MW).
    pub mw: f64,
    /// rateA (MVA); 0 means unlimited.
    pub rate_a: f64,
    /// |mw| / rate_a, for overloaded branches only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loading: Option<f64>,
}

/// What `ipow grid flows --json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct FlowReport {
    /// Every branch row.
    pub flows: Vec<BranchFlow>,
    /// The rows with |mw| > rate_a (rate_a > 0).
    pub overloaded: Vec<BranchFlow>,
}

impl DcModel {
    /// Flows of a trade set, and the overloaded branches.
    pub fn flow_report(&self, trades: &[Trade]) -> Result<FlowReport, GridError> {
        let inj = self.injections(trades)?;
        let flows = self.flows(&inj);
        let rows: Vec<BranchFlow> = self
            .grid
            .branches
            .iter()
            .zip(&flows)
            .enumerate()
            .map(|(k, (b, &mw))| BranchFlow {
                branch_index: k,
                from_bus: b.from_bus,
                to_bus: b.to_bus,
                mw,
                rate_a: b.rate_a,
                loading: None,
            })
            .collect();
        let overloaded = rows
            .iter()
            .filter(|f| {
                let b = &self.grid.branches[f.branch_index];
                b.is_limited() && f.mw.abs() > b.rate_a
            })
            .map(|f| BranchFlow {
                loading: Some(f.mw.abs() / f.rate_a),
                ..f.clone()
            })
            .collect();
        Ok(FlowReport {
            flows: rows,
            overloaded,
        })
    }
}

/// Reads a trades file: a JSON object with a `trades` list of
/// `{"seller_bus": int, "buyer_bus": int, "mw": number}` (other keys ignored).
pub fn read_trades(path: &std::path::Path) -> Result<Vec<Trade>, crate::base::input::InputError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        crate::base::input::InputError::new(&file, "document", "-", format!("cannot read: {e}"))
    })?;
    parse_trades(&file, &text)
}

/// Parses the text of a trades file; `file` names it in errors.
pub fn parse_trades(file: &str, text: &str) -> Result<Vec<Trade>, crate::base::input::InputError> {
    use crate::base::input::InputError;
    let doc: serde_json::Value = serde_json::from_str(crate::base::input::strip_bom(text))
        .map_err(|e| {
            InputError::new(
                file,
                "document",
                &format!("line {} column {}", e.line(), e.column()),
                format!("not valid JSON: {e}"),
            )
        })?;
    let list = doc
        .get("trades")
        .ok_or_else(|| InputError::new(file, "document", "trades", "missing"))?
        .as_array()
        .ok_or_else(|| InputError::new(file, "document", "trades", "not a list"))?;
    let mut out = Vec::with_capacity(list.len());
    for (k, rec) in list.iter().enumerate() {
        let record = format!("trades[{k}]");
        let bus = |field: &str| -> Result<u32, InputError> {
            let v = rec
                .get(field)
                .ok_or_else(|| InputError::new(file, &record, field, "missing"))?;
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    InputError::new(
                        file,
                        &record,
                        field,
                        format!("{v} is not a bus number (a non-negative integer)"),
                    )
                })
        };
        let seller_bus = bus("seller_bus")?;
        let buyer_bus = bus("buyer_bus")?;
        let mw = rec
            .get("mw")
            .ok_or_else(|| InputError::new(file, &record, "mw", "missing"))?;
        let mw = mw
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| InputError::new(file, &record, "mw", format!("{mw} is not a number")))?;
        out.push(Trade {
            seller_bus,
            buyer_bus,
            mw,
        });
    }
    Ok(out)
}
