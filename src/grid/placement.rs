//! A market placed on a grid: sellers at generator buses, purchasers at load buses, and a
//! contract as a trade between two buses ([`SchemeTrade`]).

use crate::base::domain::AddressBases;
use crate::contract::SignedContract;
use crate::grid::DcModel;

/// A market that cannot be placed on a grid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct PlacementError {
    /// The grid's file.
    pub file: String,
    /// What is missing.
    pub message: String,
}

/// How a market's contracts become trades: where its sellers and purchasers start in the
/// address space, and how long a delivery slot is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TradeTerms {
    /// Where sellers and purchasers start.
    pub bases: AddressBases,
    /// Delivery slot length in minutes (a divisor of 60).
    pub slot_minutes: u32,
}

/// One trade of a period's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemeTrade {
    /// Submission order (later submissions have larger values); unique in the scheme.
    pub order: u32,
    /// Transaction priority from the incentive mechanism.
    pub priority: u64,
    /// Seller's bus index.
    pub seller: u32,
    /// Buyer's bus index.
    pub buyer: u32,
    /// Power in 0.001 MW: energy in 0.001 MWh times 60 / the slot's minutes (over the paper's
    /// one-hour slot, the energy's own number).
    pub milli_mw: i64,
    /// Delivery slot (delivery time / slot length): trades of different slots never share a
    /// line's capacity.
    pub slot: u32,
}

/// Where the market's participants sit on a grid: seller i at the i-th in-service generator's
/// bus (cycling in file order), purchaser j at the j-th bus with a positive load (cycling).
#[derive(Debug)]
pub struct GridMarket {
    model: DcModel,
    seller_bus: Vec<u32>,
    purchaser_bus: Vec<u32>,
    /// Limited in-service branch rows.
    limited: usize,
    /// PTDF factor / rateA of each limited branch, bus-major (`limited` entries per bus).
    sensitivity: Vec<f64>,
    /// Bus index of each in-service generator, in file order.
    generator_buses: Vec<u32>,
}

impl GridMarket {
    /// Places `sellers` and `purchasers` on the model's grid.
    pub fn place(
        model: DcModel,
        sellers: u32,
        purchasers: u32,
    ) -> Result<GridMarket, PlacementError> {
        let grid = model.grid();
        let err = |m: &str| PlacementError {
            file: grid.source.clone(),
            message: m.to_owned(),
        };
        let gens: Vec<u32> = grid
            .generators
            .iter()
            .filter(|g| g.in_service)
            .filter_map(|g| model.bus(g.bus).ok())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        let loads: Vec<u32> = (0..grid.buses.len())
            .filter(|&i| grid.buses[i].pd > 0.0 && grid.buses[i].kind != 4)
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        if gens.is_empty() {
            return Err(err("no in-service generator to place sellers at"));
        }
        if loads.is_empty() {
            return Err(err("no bus with a positive load to place purchasers at"));
        }
        let generator_buses = gens.clone();
        let seller_bus = (0..sellers as usize)
            .map(|i| gens[i % gens.len()])
            .collect();
        let purchaser_bus = (0..purchasers as usize)
            .map(|j| loads[j % loads.len()])
            .collect();
        let limited: Vec<usize> = (0..grid.branches.len())
            .filter(|&k| grid.branches[k].is_limited())
            .collect();
        let scale: Vec<f64> = limited
            .iter()
            .map(|&k| 1.0 / grid.branches[k].rate_a)
            .collect();
        let sensitivity = model.ptdf_by_bus(&limited, &scale);
        Ok(GridMarket {
            model,
            seller_bus,
            purchaser_bus,
            limited: limited.len(),
            sensitivity,
            generator_buses,
        })
    }

    /// Bus index of each in-service generator, in file order (where sources sit).
    pub fn generator_buses(&self) -> Vec<u32> {
        self.generator_buses.clone()
    }

    /// The bus index seller `i` (its address less `SELLER_BASE`) sits at.
    pub fn seller_bus(&self, i: usize) -> Option<u32> {
        self.seller_bus.get(i).copied()
    }

    /// The bus index purchaser `j` sits at.
    pub fn purchaser_bus(&self, j: usize) -> Option<u32> {
        self.purchaser_bus.get(j).copied()
    }

    /// The largest trade from `seller_bus` to `buyer_bus` (bus indices), in 0.001 MW, that
    /// overloads no branch on its own: floor(1000 / w), w = max_k |PTDF_k[s] - PTDF_k[b]| /
    /// rateA_k over the limited branches; `i64::MAX` when no limited branch sees the trade.
    #[allow(clippy::cast_possible_truncation)]
    pub fn transfer_limit_milli(&self, seller_bus: u32, buyer_bus: u32) -> i64 {
        let w = self.limited;
        let col = |bus: u32| {
            let at = bus as usize * w;
            self.sensitivity.get(at..at + w).unwrap_or(&[])
        };
        let (a, b) = (col(seller_bus), col(buyer_bus));
        // Four running maxima so the loop vectorizes; max is exact and order-free.
        let mut worst = [0.0f64; 4];
        let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..4 {
                worst[l] = worst[l].max((x[l] - y[l]).abs());
            }
        }
        for (x, y) in ra.iter().zip(rb) {
            worst[0] = worst[0].max((x - y).abs());
        }
        let worst = worst[0].max(worst[1]).max(worst[2].max(worst[3]));
        if worst <= 0.0 {
            return i64::MAX;
        }
        // `as` saturates: a tiny factor gives i64::MAX.
        (1000.0 / worst).floor() as i64
    }

    /// True when `t` would overload a branch even as the period's only trade.
    pub fn overloads_alone(&self, t: &SchemeTrade) -> bool {
        t.milli_mw > self.transfer_limit_milli(t.seller, t.buyer)
    }

    /// The DC model.
    pub fn model(&self) -> &DcModel {
        &self.model
    }

    /// The scheme trade of a transaction in a market whose addresses start at `terms.bases`
    /// and whose slots last `terms.slot_minutes` (None when a party is not placed). The power
    /// saturates: an absurd energy overloads a line alone.
    pub fn trade(
        &self,
        terms: TradeTerms,
        order: u32,
        priority: u64,
        tx: &SignedContract,
    ) -> Option<SchemeTrade> {
        let c = &tx.contract;
        let s = c.seller.0.checked_sub(terms.bases.seller)?;
        let b = c.purchaser.0.checked_sub(terms.bases.purchaser)?;
        let per_hour = crate::base::domain::power_per_energy(terms.slot_minutes);
        Some(SchemeTrade {
            order,
            priority,
            seller: *self.seller_bus.get(s as usize)?,
            buyer: *self.purchaser_bus.get(b as usize)?,
            milli_mw: c.energy.raw().saturating_mul(per_hour),
            slot: c.delivery_time.slot(terms.slot_minutes),
        })
    }
}
