//! The terminal's renderings of what the commands return: a run, an audit, a simulation, a
//! comparison's rows and ratios, a grid's summary and flows, a dataset's settlement. Plain text,
//! testable without the binary.

use crate::pipeline::{RunReport, VariantConfig};
use crate::report::duration_us;

/// Basis points as the decimal fraction `--share` takes ("0.5" for 5000).
fn share_fraction(bps: u32) -> String {
    let text = format!("{}.{:04}", bps / 10_000, bps % 10_000);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `ipow settle --dataset`: what settled, what was excluded and why, and the statements.
pub fn render_dataset_settlement(r: &crate::pipeline::settle::DatasetSettlement) -> String {
    const SHOWN: usize = 40;
    let mut out = format!(
        "settlement of {} (readings: {}), every account opening at {}, purchaser's share of \
         transmission {} ({} basis points)\n",
        r.dataset,
        r.readings,
        r.opening_balance,
        share_fraction(r.purchaser_share_bps),
        r.purchaser_share_bps
    );
    let funds = r
        .excluded
        .iter()
        .filter(|e| e.reason == "insufficient_funds")
        .count();
    out += &format!(
        "contracts     {} in the file, {} pass the checks, {} settled, {} failed for lack of \
         funds, {} rejected by the checks\n\n",
        r.contracts,
        r.accepted,
        r.settled,
        funds,
        r.excluded.len() - funds
    );
    out += &crate::ledger::render_statements(&r.statements, "role", SHOWN);
    out += &format!(
        "\nbalance changes sum to zero: {}\n",
        if r.conserved { "yes" } else { "NO" }
    );
    out
}

/// One audit finding with its place: chain, period, height, log byte, contract, position, field,
/// and the Merkle path that differs.
fn render_finding(f: &crate::chain::audit::Finding) -> String {
    let mut out = String::new();
    out += &format!("FINDING {}", f.chain);
    if let Some(p) = f.period {
        out += &format!(" period {p}");
    }
    if let Some(h) = f.height {
        out += &format!(" height {h}");
    }
    if let Some(o) = f.offset {
        out += &format!(" (log byte {o})");
    }
    if let Some(c) = &f.contract {
        out += &format!(" contract {c}");
    }
    if let Some(p) = f.position {
        out += &format!(" at position {p}");
    }
    if let Some(field) = &f.field {
        out += &format!(" field {field}");
    }
    out += &format!(": {}\n", f.message);
    for n in &f.path {
        out += &format!(
            "    node level {} index {} leaves [{}, {}): expected {} stored {}\n",
            n.level,
            n.index,
            n.leaves.0,
            n.leaves.1,
            &n.expected[..16],
            &n.stored[..16]
        );
    }
    out
}

/// What the audit was pinned to, or how to pin the next one.
fn pin_line(r: &crate::chain::audit::AuditReport) -> String {
    let genesis = r.genesis_hash.as_deref().unwrap_or("(none)");
    match (&r.pinned_head, r.pinned_head_period) {
        (Some(_), Some(p)) => format!(
            "pinned        the --head given is period {p}'s consortium head: no rollback past it and \
             no rewrite before it\n"
        ),
        (Some(_), None) => String::new(), // a finding says so
        (None, _) => format!(
            "pinned        nothing: a rollback to an earlier head cannot be excluded; keep \
             --head {} --genesis {genesis} for the next audit\n",
            r.head.as_deref().unwrap_or("(none)")
        ),
    }
}

/// The audit's line of blocks read, each count with its noun in the right number.
fn blocks_read(r: &crate::chain::audit::AuditReport) -> String {
    let blocks = |n: u64| plural(n, "block", "blocks");
    format!(
        "read          {} slave {} ({} opened), {} master {}, {} consortium {}\n",
        r.slave_blocks,
        blocks(r.slave_blocks),
        r.slave_blocks_opened,
        r.master_blocks,
        blocks(r.master_blocks),
        r.consortium_blocks,
        blocks(r.consortium_blocks)
    )
}

/// `ipow audit`: what was checked, the head verified, and every finding with its place.
pub fn render_audit(r: &crate::chain::audit::AuditReport) -> String {
    let mut out = format!(
        "audit of {} as {}: {} complete {}; head {}\n",
        r.store,
        r.viewer,
        r.periods,
        plural(r.periods, "period", "periods"),
        r.head.as_deref().unwrap_or("(none)")
    );
    out += &blocks_read(r);
    out += &format!(
        "checked       {} committed contracts, {} copies, {} signature sets, {} certificate \
         entries, {} proof tags\n",
        r.contracts_committed,
        r.contract_copies_checked,
        r.contracts_signature_checked,
        r.certificate_entries_checked,
        r.tags_checked
    );
    let (rate, seconds) = (r.contracts_per_s, r.seconds);
    out += &signature_line(&r.signatures);
    out += &format!(
        "blocks        {} master and consortium block signatures checked against the genesis's \
         node keys ({} batch{})\n",
        r.block_signatures_checked,
        r.block_signatures.batches,
        if r.block_signatures.batches == 1 {
            ""
        } else {
            "es"
        }
    );
    out += &format!("proof tags    {}\n", r.tag_check.describe());
    out += &format!("rate          {rate:.0} contracts/s over {seconds:.3} s\n");
    if let Some(b) = &r.baseline {
        out += &format!(
            "baseline      in memory {:.0} contracts/s over {:.3} s: the audit runs at {:.2}x\n",
            b.contracts_per_s, b.seconds, b.audit_ratio
        );
    }
    if r.torn_tail_bytes > 0 {
        out += &format!(
            "torn tail     {} bytes after the last complete period (a crash during a write), \
             ignored\n",
            r.torn_tail_bytes
        );
    }
    out += &pin_line(r);
    if r.clean {
        out += &format!(
            "clean: every link, root, block signature, contract signature and quorum \
             certificate verifies ({})\n",
            if r.tag_check == crate::chain::audit::TagCheck::Checked {
                "proof tags included"
            } else {
                "proof tags not checked"
            }
        );
    }
    for f in &r.findings {
        out += &render_finding(f);
    }
    out
}

/// `ipow simulate`: seeds run, what they drew and every violation found.
pub fn render_simulation(s: &crate::lab::simulate::Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "seeds {}..{} (git {}): {} passed, {} failed, in {:.1} s",
        s.first_seed,
        s.first_seed + s.seeds,
        s.revision,
        s.passed,
        s.failures.len(),
        s.seconds
    );
    let _ = writeln!(
        out,
        "{} periods, {} transactions through validate, seal, settle and store",
        s.periods, s.transactions
    );
    let _ = writeln!(
        out,
        "within the safety bound: {} seeds, {} wrong decisions",
        s.seeds_within_bound, s.wrong_within_bound
    );
    let t = &s.tail_above_bound;
    let _ = writeln!(
        out,
        "above it: {} wrong of {} decided in their first period, {:.1} expected (z = {:.2})",
        t.wrong, t.decided, t.expected, s.tail_z
    );
    let _ = writeln!(out, "faults injected:");
    for (k, v) in &s.faults {
        let _ = writeln!(out, "  {k:<28} {v}");
    }
    for f in &s.failures {
        let _ = writeln!(out, "FAILED {f}");
    }
    out
}

/// How the run's signatures were verified: batches, bisection, single checks, batch sizes, the
/// rule and the curve backend.
fn signature_line(b: &crate::crypto::verify::BatchStats) -> String {
    let sizes: Vec<String> = b
        .sizes
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| format!("{}: {n}", crate::crypto::verify::BatchStats::size_label(i)))
        .collect();
    format!(
        "signatures    {} verified in {} batches ({} refused before any equation, {} bisection tests, {} single checks); batch sizes {}\n              rule: {}; curve backend {}\n",
        b.signatures,
        b.batches,
        b.refused_early,
        b.bisection_tests,
        b.single_checks,
        if sizes.is_empty() {
            "none".to_string()
        } else {
            sizes.join(", ")
        },
        crate::crypto::verify::RULE,
        crate::crypto::verify::backend()
    )
}

/// The report's run columns a terminal leaves out (they are in `report.md`).
const TERMINAL_HIDES: [&str; 6] = [
    "p95",
    "max",
    "validations",
    "signature batches (bisections, singles)",
    "PoW nonces",
    "wrong rejects (rate; expected ± sd)",
];

/// The per-run results table for a terminal: the report's columns and cells
/// ([`crate::report::RUN_COLUMNS`], [`crate::report::run_cells`]) but those it hides, aligned.
pub fn render_rows(cmp: &crate::lab::compare::Comparison) -> String {
    use crate::report::{RUN_COLUMNS, run_cells};
    let pick: Vec<usize> = (0..RUN_COLUMNS.len())
        .filter(|&k| !TERMINAL_HIDES.contains(&RUN_COLUMNS[k]))
        .collect();
    let columns: Vec<&str> = pick.iter().map(|&k| RUN_COLUMNS[k]).collect();
    let rows: Vec<Vec<String>> = cmp
        .rows()
        .iter()
        .map(|r| {
            let cells = run_cells(r);
            pick.iter().map(|&k| cells[k].clone()).collect()
        })
        .collect();
    text_table(&columns, &rows)
}

/// Columns padded to their widest cell: the first left-aligned, the others right-aligned.
pub fn text_table(columns: &[&str], rows: &[Vec<String>]) -> String {
    let width = |k: usize| {
        rows.iter()
            .map(|r| r.get(k).map_or(0, |c| c.chars().count()))
            .chain([columns[k].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..columns.len()).map(width).collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (k, c) in cells.enumerate() {
            let pad = widths[k].saturating_sub(c.chars().count());
            if k == 0 {
                out += c;
                out += &" ".repeat(pad);
            } else {
                out += "  ";
                out += &" ".repeat(pad);
                out += c;
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&mut columns.iter().copied());
    for r in rows {
        out += &line(&mut r.iter().map(String::as_str));
    }
    out
}

/// The ratio table for a terminal.
pub fn render_ratios(cmp: &crate::lab::compare::Comparison) -> String {
    let mut out = format!(
        "against {} (median [min, max] over repetitions):\n{:<26} {:>26} {:>26} {:>26}\n",
        cmp.setup.baseline, "case", "throughput ratio", "p99 ratio", "CPU/tx ratio"
    );
    let s =
        |x: &crate::lab::compare::Spread| format!("{:.3} [{:.3}, {:.3}]", x.median, x.min, x.max);
    for c in cmp.summaries() {
        out += &format!(
            "{:<26} {:>26} {:>26} {:>26}\n",
            c.label,
            s(&c.throughput_ratio),
            s(&c.latency_p99_ratio),
            s(&c.cpu_ratio)
        );
    }
    out
}

/// `ipow grid info`: buses, branches, slack bus and limits.
pub fn render_grid_info(i: &crate::grid::GridInfo) -> String {
    let mut out = format!("grid          {}\n", i.source);
    out += &format!(
        "buses         {} ({} with load, {:.1} MW in all); slack bus {}\n",
        i.buses, i.load_buses, i.total_load_mw, i.slack_bus
    );
    out += &format!(
        "branches      {} rows, {} in service, {} rows in parallel groups, negative reactance on rows {:?}\n",
        i.branches, i.in_service_branches, i.parallel_branch_rows, i.negative_reactance_rows
    );
    out += &format!(
        "limits        rateA on {} branches, {:.1} to {:.1} MVA; {} unlimited (rateA 0) or out of service\n",
        i.limited_branches, i.rate_a_min, i.rate_a_max, i.unlimited_branches
    );
    out += &format!("generators    {}; baseMVA {}\n", i.generators, i.base_mva);
    out
}

/// `ipow grid flows`: each branch's flow against its rating, overloaded branches marked.
pub fn render_flows(
    r: &crate::grid::FlowReport,
    trades: usize,
    base: Option<(usize, &[f64])>,
) -> String {
    let mut out = match base {
        Some((n, _)) => format!(
            "{trades} trades on a committed base of {n}; {} branches; {} overloaded\n",
            r.flows.len(),
            r.overloaded.len()
        ),
        None => format!(
            "{} trades; {} branches; {} overloaded\n",
            trades,
            r.flows.len(),
            r.overloaded.len()
        ),
    };
    out += "branch   from     to     flow MW     rateA  loading";
    out += if base.is_some() {
        "    base MW\n"
    } else {
        "\n"
    };
    let mut shown: Vec<&crate::grid::BranchFlow> = r.overloaded.iter().collect();
    if shown.is_empty() {
        // Nothing overloaded: the ten most loaded.
        let mut all: Vec<&crate::grid::BranchFlow> = r.flows.iter().collect();
        all.sort_by(|a, b| b.mw.abs().total_cmp(&a.mw.abs()));
        shown = all.into_iter().take(10).collect();
        out += "(no branch overloaded; the ten largest flows)\n";
    }
    for f in shown {
        let loading = if f.rate_a > 0.0 {
            format!("{:.3}", f.mw.abs() / f.rate_a)
        } else {
            "-".to_owned()
        };
        out += &format!(
            "{:>6} {:>6} {:>6} {:>11.3} {:>9.1} {:>8}",
            f.branch_index,
            f.from_bus,
            f.to_bus,
            thousandths(f.mw),
            f.rate_a,
            loading
        );
        out += &match base {
            Some((_, b)) => format!(
                " {:>10.3}\n",
                thousandths(b.get(f.branch_index).copied().unwrap_or(0.0))
            ),
            None => "\n".to_owned(),
        };
    }
    out
}

/// `x` rounded to 0.001 (a flow in the file's own resolution), never a negative zero.
fn thousandths(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0 + 0.0
}

/// The variant's parameters in one phrase.
fn variant_params(variant: &VariantConfig) -> String {
    match variant {
        VariantConfig::Ipow(p) => format!(
            "validators {} quorum {} extra {} byzantine {:.3} ({} {:?}), signature batches of {}",
            p.validators,
            p.quorum,
            p.extra_max,
            p.byzantine_fraction,
            p.byzantine_count(),
            p.behaviour,
            p.signature_batch
        ),
        VariantConfig::Pow(p) => format!(
            "difficulty {} bits, signature batches of {}",
            p.difficulty_bits, p.signature_batch
        ),
    }
}

/// The settlement lines of a run that settled (nothing otherwise).
fn settlement_lines(r: &RunReport) -> String {
    let Some(st) = &r.settlement else {
        return String::new();
    };
    let mut out = String::new();
    out += &format!(
        "settlement    {} contracts settled in {} periods ({} failed for lack of funds), {} transfers, {:.3} s; {} accounts opening at {}\n",
        st.settled,
        st.periods,
        st.failed_funds,
        st.transfers,
        r.stages_seconds.settle,
        st.accounts,
        st.opening_balance
    );
    out += &format!(
        "              purchases {}  transmission {}  damages {}  loss compensation {}; money conserved after every period: {}\n",
        st.purchase_paid,
        st.transmission_paid,
        st.penalties_paid,
        st.loss_compensation_paid,
        if st.conserved { "yes" } else { "NO" }
    );
    out
}

/// An open-loop run's pace line (nothing for a closed loop).
fn pace_line(r: &RunReport) -> String {
    let Some(p) = &r.pace else {
        return String::new();
    };
    format!(
        "pace          offered {:.1} tx/s, decided {:.1} tx/s; the last transaction was due at \
         {:.3} s and the last decision came at {:.3} s{}\n",
        p.offered_per_s,
        p.decided_per_s,
        p.last_due_s,
        p.last_decided_s,
        if p.fell_behind {
            ": the run FELL BEHIND its offered load (decisions under 95% of it)"
        } else {
            ""
        }
    )
}

/// Microseconds with a unit that fits.
pub fn render_run(r: &RunReport) -> String {
    let mut out = String::new();
    let params = variant_params(&r.config.variant);
    let load = r.config.load.describe();
    out += &format!(
        "ipow run: {} ({params}), {load}, seed {}, {} threads\n",
        r.variant, r.seed, r.threads
    );
    out += &format!(
        "transactions  submitted {}  accepted {}  rejected {}  undecided {}\n",
        r.submitted, r.accepted, r.rejected, r.undecided
    );
    out += &format!(
        "safety        planted invalid {}  wrong accepts {} (expected {:.2})  wrong rejects {} (expected {:.2}); P(dishonest majority in a quorum) = {:.3e}\n",
        r.planted_invalid,
        r.wrong_accepts,
        r.expected.wrong_accepts,
        r.wrong_rejects,
        r.expected.wrong_rejects,
        r.expected.dishonest_majority_probability
    );
    out += &format!(
        "throughput    {:.0} committed tx/s, {:.0} validations/s over {:.3} s\n",
        r.committed_per_s, r.validations_per_s, r.wall_seconds
    );
    out += &pace_line(r);
    let l = &r.latency_commit;
    out += &format!(
        "latency       submission to commit: p50 {}  p95 {}  p99 {}  max {}\n",
        duration_us(l.p50_us),
        duration_us(l.p95_us),
        duration_us(l.p99_us),
        duration_us(l.max_us)
    );
    let s = &r.stages_seconds;
    out += &format!(
        "stages        assign {:.3} s  validate {:.3} s  tally {:.3} s  seal {:.3} s\n",
        s.assign, s.validate, s.tally, s.seal
    );
    out += &format!(
        "work          {} validations, {} timeouts, {} hashes; {:.2} CPU-s in all, {:.1} CPU-us / committed\n",
        r.work.validations,
        r.work.timeouts,
        r.work.hashes,
        r.cpu_seconds,
        r.cpu_seconds_per_committed * 1e6
    );
    out += &signature_line(&r.work.signatures);
    out += &congestion_lines(r, s.congestion);
    out += &settlement_lines(r);
    out += &format!("blocks        {} sealed\n", r.blocks.len());
    for b in r.blocks.iter().take(8) {
        out += &format!(
            "  height {:>3}  {:>6} tx  root {}  hash {}{}\n",
            b.height,
            b.transactions,
            &b.merkle_root[..16],
            &b.hash[..16],
            if r.variant == "pow" {
                format!("  nonce {}", b.nonce)
            } else {
                String::new()
            }
        );
    }
    if r.blocks.len() > 8 {
        out += &format!("  ... {} more in --json\n", r.blocks.len() - 8);
    }
    if r.variant == "pow" {
        let v = &r.variant_report;
        out += &format!(
            "mining        {:.2} M hashes/s; per block expected {:.3} s, measured {:.3} s\n",
            v["hash_rate_per_s"].as_f64().unwrap_or(0.0) / 1e6,
            v["expected_seconds_per_block"].as_f64().unwrap_or(0.0),
            v["measured_seconds_per_block"].as_f64().unwrap_or(0.0)
        );
    } else {
        let v = &r.variant_report["validations_per_validator"];
        out += &format!(
            "incentives    validations per validator: min {} median {} max {}; each validator's priority is in --json\n",
            v["min"], v["median"], v["max"]
        );
    }
    out
}

/// The congestion stage and, on a grid, what the rule did over the run.
fn congestion_lines(r: &RunReport, o1_seconds: f64) -> String {
    let mut out = String::new();
    out += &format!("congestion    {}\n", r.congestion_stage);
    if let Some(c) = &r.congestion {
        out += &format!(
            "              {} of {} periods overloaded (max loading {:.2}, {} branches); {} of {} scheme trades curtailed in {} cuts; {} rejected by consensus for congestion; O1 context {:.3} s\n",
            c.periods_overloaded,
            r.blocks.len(),
            c.max_loading_before,
            c.branches_overloaded.len(),
            c.curtailed_trades,
            c.scheme_trades,
            c.cuts,
            r.curtailed,
            o1_seconds
        );
        out += &slot_lines(c);
    }
    out
}

/// The congestion summary's delivery slots: how many were touched, the busiest by curtailment,
/// the residual branches and the committed base's share of overloaded branches' flows.
fn slot_lines(c: &crate::pipeline::CongestionSummary) -> String {
    let mut out = format!(
        "              {} delivery {} over {} period-slot schemes; curtailed per slot: {}\n",
        c.slots.len(),
        plural(c.slots.len() as u64, "slot", "slots"),
        c.slots_touched,
        c.most_curtailed(4)
    );
    out += &format!(
        "              residual {} ({} overloaded by committed trades alone); committed base: {:.0}% of an overloaded branch's flow on average, {:.0}% at most\n",
        c.residual_overloads,
        c.branches_overloaded_by_base.len(),
        c.base_share_mean * 100.0,
        c.base_share_max * 100.0
    );
    out
}

/// `one` for a count of 1, `many` otherwise.
pub fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_echoed_as_the_fraction_given() {
        for (bps, text) in [
            (5000, "0.5"),
            (0, "0"),
            (10_000, "1"),
            (3333, "0.3333"),
            (1, "0.0001"),
        ] {
            assert_eq!(share_fraction(bps), text);
        }
    }

    #[test]
    fn a_text_table_aligns_columns_to_their_widest_cell() {
        let rows = vec![
            vec!["ipow q=3".to_owned(), "12".to_owned()],
            vec!["pow".to_owned(), "3456".to_owned()],
        ];
        let t = text_table(&["case", "tx/s"], &rows);
        assert_eq!(t, "case      tx/s\nipow q=3    12\npow       3456\n");
    }

    #[test]
    fn every_column_the_terminal_hides_is_a_report_column() {
        for c in TERMINAL_HIDES {
            assert!(crate::report::RUN_COLUMNS.contains(&c), "{c}");
        }
    }
}
