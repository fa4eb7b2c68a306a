//! The MATPOWER case parser: `mpc.baseMVA` and the bus, gen and branch blocks; every error
//! names `file:line:column`.

use super::*;

/// The most bytes a case file may hold (case2869pegase is 1.3 MB).
pub const MAX_GRID_BYTES: u64 = 64 << 20;

impl Grid {
    /// Reads and parses a case file (a regular file of at most [`MAX_GRID_BYTES`]).
    pub fn load(path: &std::path::Path) -> Result<Grid, GridError> {
        let file = path.display().to_string();
        let text =
            crate::base::input::read_text(path, MAX_GRID_BYTES).map_err(|message| GridError {
                file: file.clone(),
                line: 0,
                column: 0,
                message,
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
}

/// Minimum columns per row: MATPOWER version 2 widths (PGLib `gen` rows have 10).
pub(super) const BUS_COLUMNS: usize = 13;

pub(super) const GEN_COLUMNS: usize = 10;

pub(super) const BRANCH_COLUMNS: usize = 13;

#[derive(Clone, Copy)]
pub(super) struct Cell {
    value: f64,
    line: usize,
    column: usize,
}

pub(super) struct Row {
    cells: Vec<Cell>,
    line: usize,
    column: usize,
}

pub(super) struct Block {
    rows: Vec<Row>,
    line: usize,
}

pub(super) struct Parser<'a> {
    file: &'a str,
}

pub(super) type Lines<'t> = std::iter::Peekable<std::iter::Enumerate<std::str::Lines<'t>>>;

/// What [`read_blocks`] finds.
pub(super) struct Blocks {
    base_mva: Option<f64>,
    blocks: HashMap<&'static str, Block>,
    /// The last line read.
    end: usize,
}

/// The buses, their index by number, and the slack bus's index.
pub(super) struct Buses {
    buses: Vec<Bus>,
    index: HashMap<u32, usize>,
    slack: usize,
}

/// The file's `mpc.baseMVA` and its `bus`, `gen` and `branch` blocks (other blocks are read and
/// skipped), with the last line read.
pub(super) fn read_blocks(p: &Parser<'_>, text: &str) -> Result<Blocks, GridError> {
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
pub(super) fn read_block(
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
pub(super) fn read_buses(p: &Parser<'_>, bus_block: &Block) -> Result<Buses, GridError> {
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
        if kind == 3 {
            if let Some(first) = slack {
                let c = row.cells[1];
                let first_number = buses.get(first).map_or(0, |b: &Bus| b.number);
                return Err(p.err(
                    c.line,
                    c.column,
                    format!(
                        "bus {number} is a second reference bus (type 3) after bus \
                         {first_number}: the DC model has one slack"
                    ),
                ));
            }
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
pub(super) fn read_branches(
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
pub(super) fn branch_bus(
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
pub(super) fn read_generators(
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

pub(super) fn strip_comment(line: &str) -> &str {
    match line.find('%') {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Scans one line's worth of matrix content. Returns true when `]` closed the block.
pub(super) fn scan_segment(
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

pub(super) fn parse_number(
    p: &Parser<'_>,
    token: &str,
    line: usize,
    column: usize,
) -> Result<f64, GridError> {
    match token.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(p.err(line, column, format!("{token:?} is not a finite number"))),
        Err(_) => Err(p.err(line, column, format!("{token:?} is not a number"))),
    }
}

pub(super) fn check_width(
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

pub(super) fn integer(
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
