//! The market: its ground types and rules, transaction priority, the seeded generator, meter
//! readings, dataset files and the paper's example market.

pub mod dataset;
pub mod generator;
pub mod paper;
pub mod priority;
pub mod readings;
pub mod rules;
