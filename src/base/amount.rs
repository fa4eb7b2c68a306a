//! Exact amounts: energy, prices and money as fixed-point integers with declared scales.
//!
//! Three types, each an `i64` count of its smallest unit:
//!
//! | type     | unit of the integer        | scale  | decimals |
//! |----------|----------------------------|--------|----------|
//! | `Energy` | 0.001 MWh (one kWh)        | 1_000  | 3        |
//! | `Price`  | 0.0001 money units per MWh | 10_000 | 4        |
//! | `Money`  | 0.01 money units (a cent)  | 100    | 2        |
//!
//! A `Price` times an `Energy` is exact in 1e-7 money units; it becomes `Money` by one division
//! by 100_000 with **round half to even** ([`Price::mul_energy_round_half_even`]). The one other
//! rounding is the split of an amount between two payers ([`Money::split_round_half_even`]),
//! whose second part is the remainder, so a split never creates or loses a cent. This module is
//! the only place in ipow where an amount is rounded. Everything else is checked integer arithmetic:
//! overflow is an [`AmountError`], never a wrap, and no float touches an amount.
//!
//! The paper's f15 shows the rule: 17.09 x 10.98 = 187.6482, stored as 18765 cents (187.65).
#![deny(clippy::arithmetic_side_effects)]
#![deny(clippy::float_arithmetic)]

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an amount could not be parsed or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The text is empty.
    #[error("empty amount")]
    Empty,
    /// A character that is not a digit or the one decimal point.
    #[error("invalid character {found:?} at byte {position} in {text:?}")]
    InvalidCharacter {
        /// The whole text.
        text: String,
        /// The offending character.
        found: char,
        /// Its byte offset.
        position: usize,
    },
    /// More decimal places than the type's scale holds; ipow never rounds input silently.
    #[error("{text:?} has {found} decimal places; {kind} allows at most {max}")]
    TooManyDecimals {
        /// The whole text.
        text: String,
        /// Decimal places written.
        found: usize,
        /// Decimal places the type holds.
        max: u32,
        /// The amount type.
        kind: &'static str,
    },
    /// A `+` or `-` where the amount must be written without a sign.
    #[error("{text:?}: a sign is not allowed for {kind}")]
    SignNotAllowed {
        /// The whole text.
        text: String,
        /// The amount type.
        kind: &'static str,
    },
    /// A negative value where only non-negative ones are meaningful.
    #[error("{kind} must not be negative, got {value}")]
    Negative {
        /// The amount type.
        kind: &'static str,
        /// The raw integer.
        value: i64,
    },
    /// The value does not fit the type's 64-bit integer.
    #[error("{kind} overflows in {operation}")]
    Overflow {
        /// The amount type.
        kind: &'static str,
        /// What was being computed.
        operation: &'static str,
    },
}

/// Parses a decimal string into an integer count of `10^-decimals` units.
///
/// Accepted: digits with at most one `.`, at most `decimals` digits after it, an optional leading
/// `-` only when `signed`. Rejected with a typed error: empty text, a lone `.`, other characters,
/// exponents, surplus decimals (never rounded), overflow.
fn parse_fixed(
    text: &str,
    decimals: u32,
    signed: bool,
    kind: &'static str,
) -> Result<i64, AmountError> {
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let (negative, body) = match text.as_bytes()[0] {
        b'-' | b'+' if !signed => {
            return Err(AmountError::SignNotAllowed {
                text: text.to_owned(),
                kind,
            });
        }
        b'-' => (true, &text[1..]),
        _ => (false, text),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let frac = frac_part.unwrap_or("");
    if int_part.is_empty() && frac.is_empty() {
        return Err(AmountError::Empty);
    }
    let offset = text.len().saturating_sub(body.len());
    for (position, found) in body.char_indices() {
        if !(found.is_ascii_digit() || found == '.' && Some(position) == body.find('.')) {
            return Err(AmountError::InvalidCharacter {
                text: text.to_owned(),
                found,
                position: position.saturating_add(offset),
            });
        }
    }
    if frac.len() > decimals as usize {
        return Err(AmountError::TooManyDecimals {
            text: text.to_owned(),
            found: frac.len(),
            max: decimals,
            kind,
        });
    }
    let overflow = AmountError::Overflow {
        kind,
        operation: "parse",
    };
    let mut value: i64 = 0;
    let digits = int_part
        .bytes()
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(
            b'0',
            (decimals as usize).saturating_sub(frac.len()),
        ));
    for digit in digits {
        let d = i64::from(digit.saturating_sub(b'0'));
        value = value
            .checked_mul(10)
            .and_then(|v| {
                if negative {
                    v.checked_sub(d)
                } else {
                    v.checked_add(d)
                }
            })
            .ok_or_else(|| overflow.clone())?;
    }
    Ok(value)
}

/// Writes `raw` units of `10^-decimals` as a decimal string with exactly `decimals` places.
fn format_fixed(f: &mut fmt::Formatter<'_>, raw: i64, decimals: u32) -> fmt::Result {
    let scale = 10u64.pow(decimals);
    let magnitude = raw.unsigned_abs();
    let sign = if raw < 0 { "-" } else { "" };
    // `scale` is a power of ten below 2^63 and never zero.
    #[allow(clippy::arithmetic_side_effects)]
    let (whole, frac) = (magnitude / scale, magnitude % scale);
    write!(f, "{sign}{whole}.{frac:0width$}", width = decimals as usize)
}

/// A raw count of `10^-places` units, for `display_places`.
struct FixedDisplay(i64, u32);

impl fmt::Display for FixedDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        format_fixed(f, self.0, self.1)
    }
}

macro_rules! fixed_point {
    ($(#[$doc:meta])* $name:ident, $decimals:expr, $signed:expr, $unit:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(i64);

        impl $name {
            /// Decimal places of the integer unit.
            pub const DECIMALS: u32 = $decimals;
            /// Integer units in one whole unit.
            pub const SCALE: i64 = 10i64.pow($decimals);
            /// Zero.
            pub const ZERO: Self = Self(0);
            /// What one whole unit is, for messages and documentation.
            pub const UNIT: &'static str = $unit;

            /// Wraps a raw count of the smallest unit.
            pub const fn from_raw(raw: i64) -> Self {
                Self(raw)
            }

            /// The raw count of the smallest unit.
            pub const fn raw(self) -> i64 {
                self.0
            }

            /// Parses a decimal string such as "17.09"; never rounds.
            pub fn parse(text: &str) -> Result<Self, AmountError> {
                parse_fixed(text, $decimals, $signed, stringify!($name)).map(Self)
            }

            /// Checked sum.
            pub fn checked_add(self, other: Self) -> Result<Self, AmountError> {
                self.0.checked_add(other.0).map(Self).ok_or(AmountError::Overflow {
                    kind: stringify!($name),
                    operation: "add",
                })
            }

            /// Checked difference.
            pub fn checked_sub(self, other: Self) -> Result<Self, AmountError> {
                self.0.checked_sub(other.0).map(Self).ok_or(AmountError::Overflow {
                    kind: stringify!($name),
                    operation: "sub",
                })
            }

            /// Checked negation.
            pub fn checked_neg(self) -> Result<Self, AmountError> {
                self.0.checked_neg().map(Self).ok_or(AmountError::Overflow {
                    kind: stringify!($name),
                    operation: "neg",
                })
            }

            /// The amount with `places` decimals when that loses no digit, otherwise with all of
            /// the type's decimals: display never rounds.
            pub fn display_places(self, places: u32) -> String {
                let places = places.min(Self::DECIMALS);
                let drop = 10i64.pow(Self::DECIMALS.saturating_sub(places));
                match (self.0.checked_rem(drop), self.0.checked_div(drop)) {
                    (Some(0), Some(shorter)) => FixedDisplay(shorter, places).to_string(),
                    _ => self.to_string(),
                }
            }

            /// Errors when the amount is below zero.
            pub fn non_negative(self) -> Result<Self, AmountError> {
                if self.0 < 0 {
                    Err(AmountError::Negative { kind: stringify!($name), value: self.0 })
                } else {
                    Ok(self)
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                format_fixed(f, self.0, $decimals)
            }
        }

        impl std::str::FromStr for $name {
            type Err = AmountError;
            fn from_str(text: &str) -> Result<Self, AmountError> {
                Self::parse(text)
            }
        }

        // Amounts travel through JSON as decimal strings, never as JSON numbers (floats).
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

fixed_point!(
    /// Energy in thousandths of a MWh (kWh). Contract energies are non-negative; parsing
    /// rejects a sign.
    Energy, 3, false, "MWh"
);
fixed_point!(
    /// A price or a rate per MWh, in ten-thousandths of a money unit. Parsing rejects a sign.
    Price, 4, false, "money/MWh"
);
fixed_point!(
    /// Money in hundredths of a money unit (cents). Balances and transfers may be negative.
    Money, 2, true, "money"
);

/// Price units times energy units give 1e-7 money; this many of them make one cent.
const PRODUCT_UNITS_PER_CENT: i128 = 100_000;

impl Price {
    /// The cost of `energy` at this price, rounded once, half to even, to the cent.
    ///
    /// The exact product is formed in `i128` (it cannot overflow there) and divided by
    /// 100_000; a remainder of exactly one half goes to the even cent. A result outside `i64`
    /// is an overflow error.
    pub fn mul_energy_round_half_even(self, energy: Energy) -> Result<Money, AmountError> {
        let product =
            i128::from(self.0)
                .checked_mul(i128::from(energy.0))
                .ok_or(AmountError::Overflow {
                    kind: "Money",
                    operation: "price x energy",
                })?;
        let cents = div_round_half_even(product, PRODUCT_UNITS_PER_CENT);
        i64::try_from(cents)
            .map(Money)
            .map_err(|_| AmountError::Overflow {
                kind: "Money",
                operation: "price x energy",
            })
    }
}

/// Basis points in a whole (100%).
pub const BASIS_POINTS: u32 = 10_000;

impl Money {
    /// Splits `self` into (`share_bps` / 10,000 of it, the rest), the share rounded once, half to
    /// even, to the cent; the rest is what remains, so the two parts always add up to `self`
    /// exactly. `share_bps` above 10,000 is an error.
    pub fn split_round_half_even(self, share_bps: u32) -> Result<(Money, Money), AmountError> {
        if share_bps > BASIS_POINTS {
            return Err(AmountError::Overflow {
                kind: "Money",
                operation: "split share above 100%",
            });
        }
        let product = i128::from(self.0)
            .checked_mul(i128::from(share_bps))
            .ok_or(AmountError::Overflow {
                kind: "Money",
                operation: "split",
            })?;
        let part = div_round_half_even(product, i128::from(BASIS_POINTS));
        let part = i64::try_from(part)
            .map(Money)
            .map_err(|_| AmountError::Overflow {
                kind: "Money",
                operation: "split",
            })?;
        Ok((part, self.checked_sub(part)?))
    }
}

/// `numerator / denominator` rounded half to even; `denominator` must be positive.
fn div_round_half_even(numerator: i128, denominator: i128) -> i128 {
    debug_assert!(denominator > 0);
    // i128 products of two i64 values are far from i128::MIN, so neither operation overflows.
    #[allow(clippy::arithmetic_side_effects)]
    {
        let quotient = numerator.div_euclid(denominator);
        let remainder = numerator.rem_euclid(denominator);
        let twice = remainder * 2;
        if twice > denominator || (twice == denominator && quotient % 2 != 0) {
            quotient + 1
        } else {
            quotient
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_even_on_both_signs() {
        assert_eq!(div_round_half_even(25, 10), 2);
        assert_eq!(div_round_half_even(35, 10), 4);
        assert_eq!(div_round_half_even(-25, 10), -2);
        assert_eq!(div_round_half_even(-35, 10), -4);
        assert_eq!(div_round_half_even(-26, 10), -3);
        assert_eq!(div_round_half_even(14, 10), 1);
    }
}
