//! The DC model: the reduced susceptance matrix factorized once (sparse Cholesky when
//! positive definite, sparse LU otherwise), flows of injections, PTDF rows, the full PTDF.

use super::*;

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
pub(super) enum Factor {
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

/// Where a singular susceptance matrix comes from: the bus whose in-service branches' net
/// susceptance is smallest against the largest bus's (branches that vanish or cancel), with
/// those branches by row (from 0, as `ipow grid flows` counts them) and their end buses.
fn weakest_bus(grid: &Grid) -> (f64, String) {
    let n = grid.buses.len();
    let mut net = vec![0.0f64; n];
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (k, br) in grid
        .branches
        .iter()
        .enumerate()
        .filter(|(_, b)| b.in_service)
    {
        for end in [br.from, br.to] {
            net[end] += br.b;
            rows[end].push(k);
        }
    }
    let largest = net.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let weakest = (0..n)
        .filter(|&i| i != grid.slack && grid.buses[i].kind != 4)
        .min_by(|&a, &b| net[a].abs().total_cmp(&net[b].abs()));
    let Some(i) = weakest else {
        return (1.0, "no bus besides the slack".into());
    };
    let branches: Vec<String> = rows[i]
        .iter()
        .take(6)
        .map(|&k| {
            let br = &grid.branches[k];
            format!(
                "row {k} (bus {} to bus {}, x = {:.3e} p.u.)",
                br.from_bus, br.to_bus, br.x
            )
        })
        .collect();
    let ratio = if largest > 0.0 {
        net[i].abs() / largest
    } else {
        0.0
    };
    let text = format!(
        "bus {} has a net susceptance of {:.3e} p.u. against the largest bus's {largest:.3e}, \
         through branch {}",
        grid.buses[i].number,
        net[i],
        branches.join(", ")
    );
    (ratio, text)
}

/// Every bus but the isolated ones (type 4) has an in-service path to the slack bus.
fn check_connected(grid: &Grid) -> Result<(), String> {
    let n = grid.buses.len();
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
        return Err(format!(
            "the grid is not connected: {} bus(es) have no in-service path to the slack bus {} (e.g. {})",
            cut_off.len(),
            grid.buses[grid.slack].number,
            shown.join(", ")
        ));
    }
    Ok(())
}

/// A grid whose weakest bus's net susceptance is below [`SINGULAR_RATIO`] of the largest.
fn check_conditioning(grid: &Grid) -> Result<(), String> {
    let (ratio, weakest) = weakest_bus(grid);
    if ratio < SINGULAR_RATIO {
        return Err(format!(
            "the reduced susceptance matrix is numerically singular: {weakest}"
        ));
    }
    Ok(())
}

/// Below this ratio of a bus's net susceptance to the largest bus's, double precision cannot
/// tell the matrix from a singular one (flows would be noise): refused.
const SINGULAR_RATIO: f64 = 1e-12;

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
        check_connected(&grid).map_err(err)?;
        let mut reduced = vec![usize::MAX; n];
        let mut next = 0usize;
        for (i, r) in reduced.iter_mut().enumerate() {
            if i != grid.slack {
                *r = next;
                next += 1;
            }
        }
        let m = next;
        check_conditioning(&grid).map_err(err)?;
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
                    err(format!(
                        "the reduced susceptance matrix is singular ({e:?}): {}",
                        weakest_bus(&grid).1
                    ))
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
            return Err(err(format!(
                "the reduced susceptance matrix is numerically singular: {}",
                weakest_bus(&model.grid).1
            )));
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
