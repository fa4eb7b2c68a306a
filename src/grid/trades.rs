//! The trades file of `ipow grid flows`: `{"trades": [{"seller_bus", "buyer_bus", "mw"}]}`.

use super::*;

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

/// The largest trade a trades file may hold, MW: a hundred times the load of the largest PGLib
/// case; past it flows lose every digit that matters.
pub const MAX_TRADE_MW: f64 = 1e7;

/// The most bytes a trades file may hold.
pub const MAX_TRADES_BYTES: u64 = 256 << 20;

/// Reads a trades file: a JSON object with a `trades` list of
/// `{"seller_bus": int, "buyer_bus": int, "mw": number}` (other keys ignored).
pub fn read_trades(path: &std::path::Path) -> Result<Vec<Trade>, crate::base::input::InputError> {
    let text = crate::base::input::read_document(path, MAX_TRADES_BYTES)?;
    parse_trades(&path.display().to_string(), &text)
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
        // A trade flows from seller to buyer: a negative one would silently be the reverse
        // trade, and one past any grid's size makes every flow infinite.
        if !(0.0..=MAX_TRADE_MW).contains(&mw) {
            return Err(InputError::new(
                file,
                &record,
                "mw",
                format!(
                    "{mw} is outside 0..={MAX_TRADE_MW} MW (a trade flows from seller to buyer)"
                ),
            ));
        }
        out.push(Trade {
            seller_bus,
            buyer_bus,
            mw,
        });
    }
    Ok(out)
}
