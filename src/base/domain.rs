//! The market's nouns: participants with a role and an end, addresses, business categories.
//!
//! Nothing here signs, hashes or moves money; `contract` builds on these types.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A participant's address on the market: a 32-bit account number, shown in hex as the paper
/// shows its addresses (`0x20`, `0x25`, `0x28`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Address(pub u32);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:02x}", self.0)
    }
}

/// An address string that is not `0x` followed by 1 to 8 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address {0:?}: expected 0x followed by 1 to 8 hex digits")]
pub struct AddressError(pub String);

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(text: &str) -> Result<Self, AddressError> {
        let digits = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .ok_or_else(|| AddressError(text.to_owned()))?;
        if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AddressError(text.to_owned()));
        }
        u32::from_str_radix(digits, 16)
            .map(Address)
            .map_err(|_| AddressError(text.to_owned()))
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;
    fn try_from(text: String) -> Result<Self, AddressError> {
        text.parse()
    }
}

impl From<Address> for String {
    fn from(address: Address) -> String {
        address.to_string()
    }
}

/// The four ends of the paper's "source-network-sales-load" chain (Figures 2 and 3); each has
/// its own master chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// Generation (master chain BCE).
    Source,
    /// Transmission and grid operation (BCN).
    Network,
    /// Electricity sales companies (BCS).
    Sales,
    /// Consumers (BCL).
    Load,
}

/// What a participant does in the market.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An electricity sales company: the seller of a bilateral contract.
    Seller,
    /// A load-end user buying energy.
    Purchaser,
    /// Carries the energy and charges the transmission cost; the third signer of a contract.
    TransmissionCompany,
    /// Operates the grid and provides auxiliary services.
    GridOperator,
    /// A generator at the source end.
    Source,
    /// An integrated energy service company, broadcasting service offers.
    IntegratedEnergyServiceCompany,
    /// The government supervisor that audits across the master chains.
    GovernmentSupervisor,
}

impl Role {
    /// The role's name as files spell it (`seller`, `transmission_company`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Seller => "seller",
            Role::Purchaser => "purchaser",
            Role::TransmissionCompany => "transmission_company",
            Role::GridOperator => "grid_operator",
            Role::Source => "source",
            Role::IntegratedEnergyServiceCompany => "integrated_energy_service_company",
            Role::GovernmentSupervisor => "government_supervisor",
        }
    }

    /// The role's name in text for people (`transmission company`): files and JSON keys spell
    /// it as [`Role::name`] does.
    pub fn label(self) -> String {
        self.name().replace('_', " ")
    }

    /// The end a role belongs to in the paper's network framework. The supervisor sits above
    /// the ends and belongs to none.
    pub fn end(self) -> Option<End> {
        match self {
            Role::Source => Some(End::Source),
            Role::TransmissionCompany | Role::GridOperator => Some(End::Network),
            Role::Seller | Role::IntegratedEnergyServiceCompany => Some(End::Sales),
            Role::Purchaser => Some(End::Load),
            Role::GovernmentSupervisor => None,
        }
    }
}

/// A market participant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Its address.
    pub address: Address,
    /// A human label ("seller 1").
    pub name: String,
    /// What it does.
    pub role: Role,
}

/// The three business categories the main chain sorts service requests into (Section 3.2 (2)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum BusinessCategory {
    /// A user buys directly from a seller.
    DirectPurchase = 1,
    /// Common supply: electricity bought from the grid or a sales company.
    CommonSupply = 2,
    /// An auxiliary (ancillary) service such as frequency regulation or reserve.
    AuxiliaryService = 3,
}

impl BusinessCategory {
    /// The byte used in the canonical encoding.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The category with this canonical code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::DirectPurchase),
            2 => Some(Self::CommonSupply),
            3 => Some(Self::AuxiliaryService),
            _ => None,
        }
    }
}

/// The kind of an auxiliary service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum AuxServiceKind {
    /// Frequency regulation.
    FrequencyRegulation = 1,
    /// Spinning or standing reserve.
    Reserve = 2,
    /// Peak shaving.
    PeakShaving = 3,
    /// Reactive power and voltage support.
    VoltageSupport = 4,
}

impl AuxServiceKind {
    /// The byte used in the canonical encoding.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind with this canonical code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::FrequencyRegulation),
            2 => Some(Self::Reserve),
            3 => Some(Self::PeakShaving),
            4 => Some(Self::VoltageSupport),
            _ => None,
        }
    }
}

/// Minutes since the start of the market's day 0; shown as `HH:MM` (with `day N` past day 0).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct DeliveryTime(pub u32);

/// Minutes in a day.
const MINUTES_PER_DAY: u32 = 24 * 60;

impl fmt::Display for DeliveryTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (day, minute) = (self.0 / MINUTES_PER_DAY, self.0 % MINUTES_PER_DAY);
        if day > 0 {
            write!(f, "day {day} ")?;
        }
        write!(f, "{:02}:{:02}", minute / 60, minute % 60)
    }
}

/// A time that is not `HH:MM` or `day N HH:MM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid delivery time {0:?}: expected HH:MM or \"day N HH:MM\"")]
pub struct DeliveryTimeError(pub String);

impl std::str::FromStr for DeliveryTime {
    type Err = DeliveryTimeError;
    fn from_str(text: &str) -> Result<Self, DeliveryTimeError> {
        let bad = || DeliveryTimeError(text.to_owned());
        let (day, clock) = match text.strip_prefix("day ") {
            Some(rest) => {
                let (day, clock) = rest.split_once(' ').ok_or_else(bad)?;
                (day.parse::<u32>().map_err(|_| bad())?, clock)
            }
            None => (0, text),
        };
        let (hh, mm) = clock.split_once(':').ok_or_else(bad)?;
        if hh.len() != 2 || mm.len() != 2 {
            return Err(bad());
        }
        let hour: u32 = hh.parse().map_err(|_| bad())?;
        let minute: u32 = mm.parse().map_err(|_| bad())?;
        if hour > 23 || minute > 59 {
            return Err(bad());
        }
        day.checked_mul(MINUTES_PER_DAY)
            .and_then(|m| m.checked_add(hour * 60 + minute))
            .map(DeliveryTime)
            .ok_or_else(bad)
    }
}

impl TryFrom<String> for DeliveryTime {
    type Error = DeliveryTimeError;
    fn try_from(text: String) -> Result<Self, DeliveryTimeError> {
        text.parse()
    }
}

impl From<DeliveryTime> for String {
    fn from(time: DeliveryTime) -> String {
        time.to_string()
    }
}

/// The paper's delivery slot: one hour. A market may use shorter slots (`slot_minutes`).
pub const HOUR_SLOT: u32 = 60;

/// Refuses a slot length that is not a divisor of 60 minutes: a contract's power over its slot
/// is then its energy times 60 / minutes, an exact integer (longer blocks would need a rounding
/// of power, and are deliberately absent).
pub fn check_slot_minutes(minutes: u32) -> Result<(), String> {
    if minutes == 0 || 60 % minutes != 0 {
        return Err(format!(
            "{minutes} minutes is not a delivery slot length: use a divisor of 60 (1, 2, 3, 4, 5, \
             6, 10, 12, 15, 20, 30 or 60)"
        ));
    }
    Ok(())
}

/// A contract's power over a slot of `minutes` per unit of its energy: 60 / minutes (0.001 MWh
/// over the slot is this many 0.001 MW). A length outside 1..=60 counts as the nearest valid
/// one, so the factor is never 0.
pub fn power_per_energy(minutes: u32) -> i64 {
    i64::from(60 / minutes.clamp(1, 60))
}

impl DeliveryTime {
    /// The delivery slot this time falls in, for slots of `minutes` (slot k covers minutes
    /// k x minutes to (k + 1) x minutes of the market's time).
    pub fn slot(self, minutes: u32) -> u32 {
        self.0 / minutes.max(1)
    }
}

// The address layout of generated markets (role codes by range).

/// First seller address; sellers are numbered up from here.
pub const SELLER_BASE: u32 = 0x1000;

/// First purchaser address.
pub const PURCHASER_BASE: u32 = 0x10_0000;

/// First transmission company address.
pub const TRANSMISSION_BASE: u32 = 0x100;

/// Most transmission companies (their addresses end where sellers' begin).
pub const TRANSMISSION_MAX: u32 = SELLER_BASE - TRANSMISSION_BASE;

/// First grid operator address.
pub const OPERATOR_BASE: u32 = 0x4000_0000;

/// First source (generator) address.
pub const SOURCE_BASE: u32 = 0x5000_0000;

/// The government supervisor's address.
pub const SUPERVISOR: Address = Address(0x01);

/// Where a market's sellers and purchasers start in the address space: seller i is at
/// `seller + i`, purchaser j at `purchaser + j`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressBases {
    /// The first seller's address.
    pub seller: u32,
    /// The first purchaser's address.
    pub purchaser: u32,
}
