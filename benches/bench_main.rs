//! ipow's criterion suite: one module per topic under `benches/benchmarks/`. Every group puts
//! ipow beside the bare limit it is measured against (and a peer crate where one exists), and
//! every bench asserts its answer after timing. `cargo test --benches` runs each once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_docs
)]

use criterion::{criterion_group, criterion_main};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod benchmarks;

criterion_group!(merkle, benchmarks::merkle::bench);
criterion_group!(signatures, benchmarks::signatures::bench);
criterion_group!(pow, benchmarks::pow::bench);
criterion_group!(ipow_period, benchmarks::ipow_period::bench);
criterion_group!(period, benchmarks::period::bench);
criterion_group!(settlement, benchmarks::settlement::bench);
criterion_group!(grid, benchmarks::grid::bench);
criterion_group!(datasets, benchmarks::datasets::bench);
criterion_group!(store, benchmarks::store::bench);
criterion_main!(
    merkle,
    signatures,
    pow,
    ipow_period,
    settlement,
    grid,
    datasets,
    period,
    store
);
