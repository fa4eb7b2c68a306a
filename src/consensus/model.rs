//! What the protocol predicts: the chance that dishonest validators decide a transaction, as a
//! binomial tail and as the exact probability of IPOW's assignment.

/// Probability that more than half of `q` independent draws are dishonest when each is with
/// probability `f`.
pub fn dishonest_majority_probability(q: u32, f: f64) -> f64 {
    let mut total = 0.0;
    for k in (q / 2 + 1)..=q {
        total += binomial(q, k) * f.powi(k as i32) * (1.0 - f).powi((q - k) as i32);
    }
    total
}

/// Probability that IPOW decides a transaction the dishonest way: `n` validators of which `bad`
/// are dishonest (and all answer), drawn without replacement; decided once at least `q` have
/// answered with a strict majority; otherwise one more is asked, up to `bound` in all.
pub fn protocol_wrong_probability(n: u32, bad: u32, q: u32, bound: u32) -> f64 {
    // p[b] = probability of having drawn `b` dishonest among the first k, still undecided.
    let bound = bound.min(n);
    let mut p = vec![0.0f64; bound as usize + 1];
    p[0] = 1.0;
    let mut wrong = 0.0;
    for k in 0..bound {
        let mut next = vec![0.0f64; bound as usize + 1];
        for b in 0..=k {
            let mass = p[b as usize];
            if mass == 0.0 {
                continue;
            }
            let bad_left = f64::from(bad.saturating_sub(b));
            let p_bad = bad_left / f64::from(n - k);
            next[b as usize + 1] += mass * p_bad;
            next[b as usize] += mass * (1.0 - p_bad);
        }
        let k1 = k + 1;
        if k1 >= q {
            for b in 0..=k1 {
                let good = k1 - b;
                if 2 * b.max(good) > k1 {
                    if b > good {
                        wrong += next[b as usize];
                    }
                    next[b as usize] = 0.0;
                }
            }
        }
        p = next;
    }
    wrong
}

fn binomial(n: u32, k: u32) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}
