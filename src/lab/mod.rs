//! Experiments over the pipeline: scenario files, comparisons of consensus variants, stress
//! runs over growing markets, and the seeded fault simulator.

pub mod compare;
pub mod scenario;
pub mod simulate;
pub mod stress;
