//! The floor every other folder stands on: exact amounts, the domain's names, seeded random
//! streams, and the one error shape of readers of outside files.

pub mod amount;
pub mod cursor;
pub mod domain;
pub mod input;
pub mod rng;

/// The most worker threads a run may ask for. Every stage is CPU-bound, so threads beyond the
/// cores only add scheduling; past a thousand, starting them and splitting work across them
/// stalls a run for longer than the work (10,000 threads took minutes where 300 took 0.3 s).
pub const MAX_THREADS: usize = 1024;

/// Checks a thread count asked for; the message says why there is a bound.
pub fn check_threads(threads: usize) -> Result<(), String> {
    if threads == 0 || threads > MAX_THREADS {
        return Err(format!(
            "{threads} threads is outside 1..={MAX_THREADS} (stages are CPU-bound: threads \
             beyond the cores only add scheduling)"
        ));
    }
    Ok(())
}

/// CPU seconds (user + system) of this process so far, from /proc/self/stat (clock ticks of
/// 1/100 s, Linux's USER_HZ); 0 where that file does not exist.
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    #[allow(clippy::cast_precision_loss)]
    let seconds = (ticks(11) + ticks(12)) as f64 / 100.0;
    seconds
}

/// The peak resident set so far, bytes (VmHWM), or 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

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
