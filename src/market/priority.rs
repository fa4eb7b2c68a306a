//! Transaction priority: the incentive the paper pays validators in (a transaction's priority is
//! what its owner earned validating), which curtailment and block order both read.

/// The incentive mechanism's transaction priority, as published for a period: validator v
/// owns the participants whose address is congruent to v modulo the validator count, and a
/// transaction's priority is the sum of its seller's and purchaser's owners' priorities.
/// Without validators (plain PoW) every priority is 0.
#[derive(Clone, Debug, Default)]
pub struct PriorityRule {
    owners: Vec<u64>,
}

impl PriorityRule {
    /// The rule over these validators' priorities.
    pub fn new(owners: Vec<u64>) -> Self {
        Self { owners }
    }

    /// Each validator's priority, by validator number.
    pub fn owners(&self) -> &[u64] {
        &self.owners
    }

    /// A transaction's priority.
    pub fn of(&self, c: &crate::contract::Contract) -> u64 {
        let n = self.owners.len();
        if n == 0 {
            return 0;
        }
        let owner = |a: u32| self.owners[a as usize % n];
        owner(c.seller.0).saturating_add(owner(c.purchaser.0))
    }
}
