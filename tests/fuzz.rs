//! The fuzz targets on stable: every committed corpus file in `fuzz/corpus/<target>/` replayed,
//! then `IPOW_FUZZ_RUNS` (default 5,000) seeded mutations of the corpus per target. Each input
//! must satisfy its target's properties and allocate at most `ALLOC_BASE + ALLOC_PER_BYTE` times
//! its length at the peak: no target may allocate what a length field merely declares.
//!
//! Its own test binary, because measuring allocation needs its own global allocator (counting
//! every thread's allocations, so that the one test here runs alone in its process).
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicIsize, Ordering};

use ipow::base::rng::Rng;
use ipow::fuzz::{TARGETS, mutate};

/// The tests here measure the whole process's allocations, so they take turns.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting live bytes and their peak.
struct Counting;

fn note(delta: isize) {
    let live = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds GlobalAlloc's contract;
// the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout contract is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for alloc.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for dealloc, with the caller's new size.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Fixed cost a target may allocate whatever its input: the readers' 1 MiB buffers, a grid's
/// factorization workspace, rayon's first use.
const ALLOC_BASE: isize = 16 << 20;
/// Bytes a target may allocate per input byte (decoded structures are larger than their bytes).
const ALLOC_PER_BYTE: isize = 256;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("fuzz/corpus/{target}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// Runs one input; on a failure, saves it under target/fuzz-findings/ and says where.
fn check(name: &str, f: fn(&[u8]) -> Result<bool, String>, input: &[u8], what: &str) -> bool {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let outcome = std::panic::catch_unwind(|| f(input));
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let limit = ALLOC_BASE + ALLOC_PER_BYTE * input.len() as isize;
    let problem = match &outcome {
        Err(_) => Some("panicked".to_owned()),
        Ok(Err(finding)) => Some(finding.clone()),
        Ok(Ok(_)) if peak > limit => Some(format!(
            "allocated {peak} bytes at the peak for {} input bytes (limit {limit})",
            input.len()
        )),
        Ok(Ok(_)) => None,
    };
    if let Some(problem) = problem {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-findings");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{name}-{}", {
            use sha2::Digest as _;
            hex::encode(&sha2::Sha256::digest(input)[..8])
        }));
        std::fs::write(&file, input).unwrap();
        panic!(
            "fuzz target {name}, {what}: {problem}\n  input saved to {} \
             (add it to fuzz/corpus/{name}/ once fixed)",
            file.display()
        );
    }
    matches!(outcome, Ok(Ok(true)))
}

#[test]
fn every_corpus_replays_and_seeded_mutations_keep_every_property() {
    let _alone = ALONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let runs: u64 = std::env::var("IPOW_FUZZ_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let seed: u64 = std::env::var("IPOW_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // Every directory of the corpus belongs to a target, and every target has seeds.
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")).unwrap()
    {
        let dir = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            ipow::fuzz::target(&dir).is_some(),
            "fuzz/corpus/{dir} names no target"
        );
    }
    let mut summary = Vec::new();
    for (name, f) in TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} is empty");
        let mut good = 0;
        for (file, bytes) in &seeds {
            good += u64::from(check(name, f, bytes, &format!("corpus file {file}")));
        }
        // Round trips are only exercised from inputs the target accepts.
        assert!(good > 0, "fuzz/corpus/{name}: no file is accepted");
        let mut accepted = 0u64;
        let started = std::time::Instant::now();
        for k in 0..runs {
            let mut rng = Rng::stream(seed, &[k, name.len() as u64, u64::from(name.as_bytes()[0])]);
            let a = &seeds[rng.index(seeds.len())].1;
            let b = &seeds[rng.index(seeds.len())].1;
            let input = mutate(&mut rng, a, b);
            accepted += u64::from(check(
                name,
                f,
                &input,
                &format!("mutation {k} of seed {seed} (IPOW_FUZZ_SEED={seed}, run {k})"),
            ));
        }
        summary.push(format!(
            "{name}: {} corpus files ({good} accepted), {runs} mutations ({accepted} accepted) in {:.2} s",
            seeds.len(),
            started.elapsed().as_secs_f64()
        ));
    }
    println!("{}", summary.join("\n"));
}

/// The allocation check can fail: a function that allocates what a length field declares is
/// caught.
#[test]
fn the_allocation_limit_catches_an_allocation_by_declared_length() {
    let _alone = ALONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    fn trusting(data: &[u8]) -> Result<bool, String> {
        let n = data.first().map_or(0, |&b| usize::from(b)) << 20;
        let v = vec![1u8; n];
        std::hint::black_box(&v);
        Ok(true)
    }
    let caught = std::panic::catch_unwind(|| check("trusting", trusting, &[200], "test"));
    assert!(caught.is_err());
    check("trusting", trusting, &[1], "test");
}

/// The readers of outside text bound what they read while reading: a 4 GiB file (sparse, so
/// nothing is written) under a 1 MiB limit is refused after at most the limit plus one byte in
/// memory, and `/dev/zero` is refused before it is opened, allocating only its error.
#[test]
fn a_reader_of_outside_text_allocates_at_most_its_limit() {
    let _alone = ALONE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = std::env::temp_dir().join(format!("ipow-fuzz-bound-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let limit: u64 = 1 << 20;
    for (path, what) in [(big.as_path(), "limit"), (Path::new("/dev/zero"), "device")] {
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let result = ipow::base::input::read_text(path, limit);
        let peak = PEAK.load(Ordering::Relaxed) - before;
        let message = result.expect_err("refused");
        assert!(message.contains(what), "{path:?}: {message}");
        // The buffer is sized to what the file says, up to the limit plus one byte.
        assert!(
            peak <= isize::try_from(limit).unwrap() + (64 << 10),
            "{path:?}: peak {peak} bytes for a {limit}-byte limit"
        );
        eprintln!("{path:?}: refused after a peak of {peak} bytes ({message})");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
