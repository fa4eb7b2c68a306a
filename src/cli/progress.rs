//! Progress on long work: a bar on a terminal (indicatif), drawn once the work has taken a
//! second; off a terminal (a log, CI, `nohup`) plain lines on stderr, so that a long step is never
//! silent; nothing with `--json` when asked to be quiet.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Off a terminal, at most one line per this long (and the last one always).
const PLAIN_EVERY: Duration = Duration::from_secs(10);
/// On a terminal, the bar appears once the work has taken this long.
const BAR_AFTER: Duration = Duration::from_secs(1);

/// Progress of one piece of work of `len` steps.
pub(crate) struct Progress {
    bar: indicatif::ProgressBar,
    terminal: bool,
    plain: Option<Mutex<Plain>>,
    started: Instant,
}

struct Plain {
    what: String,
    message: String,
    every_step: bool,
    last: Instant,
    shown: u64,
}

/// Progress of `len` steps of `what`: a bar on a terminal; off one, a line every ten seconds
/// and at the end; nothing when `quiet`.
pub(crate) fn bar(len: u64, what: &str, quiet: bool) -> Progress {
    Progress::new(len, what, quiet, false)
}

/// As [`bar`], but off a terminal one line per finished step (runs of a comparison, seeds).
pub(crate) fn steps(len: u64, what: &str, quiet: bool) -> Progress {
    Progress::new(len, what, quiet, true)
}

impl Progress {
    fn new(len: u64, what: &str, quiet: bool, every_step: bool) -> Self {
        use std::io::IsTerminal as _;
        let terminal = !quiet && std::io::stderr().is_terminal();
        let bar = indicatif::ProgressBar::hidden();
        bar.set_length(len);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {human_pos}/{human_len} {per_sec} eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        let now = Instant::now();
        Self {
            bar,
            terminal,
            plain: (!quiet && !terminal).then(|| {
                Mutex::new(Plain {
                    what: what.to_owned(),
                    message: String::new(),
                    every_step,
                    last: now,
                    shown: 0,
                })
            }),
            started: now,
        }
    }

    /// Steps done so far.
    pub(crate) fn set_position(&self, done: u64) {
        self.bar.set_position(done);
        if self.terminal && self.bar.is_hidden() && self.started.elapsed() >= BAR_AFTER {
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        self.plain_line(done);
    }

    /// One more step done.
    pub(crate) fn inc(&self, steps: u64) {
        self.set_position(self.bar.position() + steps);
    }

    /// What is being done now (a case's label).
    pub(crate) fn set_message(&self, message: String) {
        if let Some(plain) = &self.plain
            && let Ok(mut p) = plain.lock()
        {
            p.message.clone_from(&message);
        }
        self.bar.set_message(message);
    }

    /// Shows the bar in `multi` (several bars at once) on a terminal.
    pub(crate) fn join(mut self, multi: &indicatif::MultiProgress) -> Self {
        if self.terminal {
            self.bar = multi.add(self.bar);
            // The multi draws it: no late switch to stderr.
            self.terminal = false;
        }
        self
    }

    /// Runs `f` (which prints) without the bar drawn over its output.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// The work is over: the bar goes; off a terminal the last line is printed if it was not.
    pub(crate) fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
        let done = self.bar.position();
        if let Some(plain) = &self.plain
            && let Ok(p) = plain.lock()
            && p.shown != done
            && done > 0
        {
            drop(p);
            self.force_line(done);
        }
    }

    fn plain_line(&self, done: u64) {
        let Some(plain) = &self.plain else { return };
        let due = match plain.lock() {
            Ok(p) => {
                p.every_step
                    || done == self.bar.length().unwrap_or(0)
                    || p.last.elapsed() >= PLAIN_EVERY
            }
            Err(_) => false,
        };
        if due && done > 0 {
            self.force_line(done);
        }
    }

    fn force_line(&self, done: u64) {
        let Some(plain) = &self.plain else { return };
        let Ok(mut p) = plain.lock() else { return };
        if p.shown == done {
            return;
        }
        let len = self.bar.length().unwrap_or(0);
        let message = if p.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", p.message)
        };
        eprintln!(
            "{}: {done}/{len}{message} after {:.1} s",
            p.what,
            self.started.elapsed().as_secs_f64()
        );
        p.last = Instant::now();
        p.shown = done;
    }
}
