//! Benchmark modules, one per topic.
pub mod consensus;
pub mod merkle;
pub mod signatures;

/// A named rayon pool of `threads` threads.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("bench-{threads}t-{i}"))
        .build()
        .unwrap()
}

/// Threads on this machine.
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
