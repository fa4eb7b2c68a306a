//! The committed base read back from a store: every committed contract's trade, per delivery
//! slot, on the grid the genesis names. What a run keeps in memory as
//! [`crate::validate::congestion::SlotBase`] survives in the store as its contracts (on their
//! sellers' slave chains) plus the genesis's slot length, grid fingerprint and member buses;
//! this rebuilds it.
//!
//! It reads what the store says, up to its last commit record, refusing any record whose check
//! fails; whether to believe the store is `ipow audit`'s question, not this reader's.

use std::collections::HashMap;
use std::path::Path;

use crate::base::domain::{Address, power_per_energy};
use crate::chain::ChainId;
use crate::chain::store::{
    CheckedLog, Genesis, RawRecord, StoreError, decode_slave, kind, log_error,
};
use crate::contract::SignedContract;
use crate::grid::placement::SchemeTrade;
use crate::validate::congestion::SlotBase;

/// A store's committed trades, as read.
#[derive(Debug)]
pub struct CommittedBase {
    /// The store's genesis.
    pub genesis: Genesis,
    /// Committed periods read.
    pub periods: u64,
    /// Committed contracts whose seller and purchaser sit on buses (the grid's trades).
    pub trades: u64,
    /// Every slot's committed base.
    pub base: SlotBase,
}

/// Reads the committed base of the store in `dir`, on `grid` (which must be the grid the
/// store's genesis was recorded on). `keep(slot, slot minutes)` says which slots' trades are
/// also returned one by one (for `ipow grid flows --store`), in commit order.
pub fn read_base(
    dir: &Path,
    grid: &crate::grid::Grid,
    mut keep: impl FnMut(u32, u32) -> bool,
) -> Result<(CommittedBase, Vec<SchemeTrade>), StoreError> {
    let err = log_error(dir);
    let (mut log, genesis) = CheckedLog::open(dir)?;
    let buses = member_buses(&genesis, grid).map_err(|m| err(Some(0), m))?;
    let minutes = u32::from(genesis.market.slot_minutes);
    let nbus = grid.buses.len();
    let mut read = CommittedBase {
        periods: 0,
        trades: 0,
        base: SlotBase::new(),
        genesis,
    };
    let mut kept = Vec::new();
    let mut pending: Vec<SchemeTrade> = Vec::new();
    while let Some(record) = log.next_record()? {
        match record.kind {
            kind::SLAVE => sellers_trades(&record, &buses, minutes, &mut pending)
                .map_err(|m| err(Some(record.payload_offset()), m))?,
            kind::COMMIT => {
                read.periods += 1;
                read.trades += pending.len() as u64;
                read.base.commit(&pending, nbus);
                kept.extend(pending.drain(..).filter(|t| keep(t.slot, minutes)));
            }
            _ => {}
        }
    }
    // A log that breaks before the index's last period is damage, not a torn tail.
    let indexed = crate::chain::store::read_index(dir)?.len() as u64;
    if indexed > read.periods {
        return Err(err(
            Some(log.offset()),
            format!(
                "the log holds {} committed periods, its index {indexed}; run ipow audit",
                read.periods
            ),
        ));
    }
    Ok((read, kept))
}

/// Each placed member's bus, once the genesis is known to be on `grid`.
fn member_buses(
    genesis: &Genesis,
    grid: &crate::grid::Grid,
) -> Result<HashMap<Address, u32>, String> {
    match genesis.market.grid {
        None => return Err("the store's market runs on no grid".into()),
        Some(g) if g != grid.fingerprint() => {
            return Err(format!(
                "the store was recorded on another grid than {} (fingerprint {} in the genesis, \
                 {} for this case)",
                grid.source,
                hex::encode(&g[..8]),
                hex::encode(&grid.fingerprint()[..8])
            ));
        }
        Some(_) => {}
    }
    let nbus = grid.buses.len();
    let mut buses = HashMap::new();
    for m in &genesis.members {
        if let Some(b) = m.bus {
            if b as usize >= nbus {
                return Err(format!(
                    "member {} sits at bus index {b}, past the grid's {nbus}",
                    m.address
                ));
            }
            buses.insert(m.address, b);
        }
    }
    Ok(buses)
}

/// The trades of a slave block's contracts that sit on its seller's chain (each contract once)
/// and whose parties both sit on buses, appended to `out`.
fn sellers_trades(
    record: &RawRecord,
    buses: &HashMap<Address, u32>,
    minutes: u32,
    out: &mut Vec<SchemeTrade>,
) -> Result<(), String> {
    let s = decode_slave(&record.payload).map_err(|e| e.to_string())?;
    for (k, (_, bytes)) in s.contracts.iter().enumerate() {
        let c = SignedContract::decode(bytes).map_err(|e| format!("contract {k}: {e}"))?;
        let c = &c.contract;
        if s.header.chain != ChainId::Slave(c.seller) {
            continue;
        }
        if let (Some(&seller), Some(&buyer)) = (buses.get(&c.seller), buses.get(&c.purchaser)) {
            out.push(SchemeTrade {
                order: 0,
                priority: 0,
                seller,
                buyer,
                milli_mw: c.energy.raw().saturating_mul(power_per_energy(minutes)),
                slot: c.delivery_time.slot(minutes),
            });
        }
    }
    Ok(())
}
