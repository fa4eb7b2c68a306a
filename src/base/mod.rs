//! The floor every other folder stands on: exact amounts, the domain's names, seeded random
//! streams, and the one error shape of readers of outside files.

pub mod amount;
pub mod domain;
pub mod input;
pub mod rng;

/// An error and its sources, joined by ": " (what `anyhow`'s `{:#}` prints), for callers that
/// keep errors as text.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
