//! A mergeable latency sketch with a relative-error guarantee, as PostgreSQL's per-minute
//! rollups store it (`trace_rollups.sketch`, built by SQL in
//! `migrations/0002_trace_rollups.sql`) and `GET /v1/stats` merges it.
//!
//! Log buckets of ratio `γ = 101/99` (DDSketch's mapping for a relative accuracy of 1%):
//! a latency `x > 0` falls in bucket `i = ceil(ln x / ln γ)`, which covers `(γ^(i-1), γ^i]`
//! and is represented by `0.99·γ^i`, at most 1% from any value in the bucket. Exact zeros
//! have a bucket of their own ([`ZERO_BUCKET`]), represented by 0. There is no lower or
//! upper limit to the buckets (the encoding is sparse), so the guarantee holds for every
//! latency the API accepts.
//!
//! Percentiles are computed as `percentile_cont` does (linear interpolation between the
//! values at the two closest ranks), each of those two values taken from its bucket, so the
//! answer is within [`RELATIVE_ERROR`] of `percentile_cont` over the same events; the
//! estimates are also clamped to the exact minimum and maximum.
//!
//! Encoding: `(bucket: i32, count: i64)` pairs, big-endian (`int4send(bucket) ||
//! int8send(count)` in SQL), in ascending bucket order, 12 bytes each.

/// Largest relative difference between a percentile of the sketch and the exact
/// `percentile_cont` over the same events.
pub const RELATIVE_ERROR: f64 = 0.01;

/// Ratio between consecutive bucket bounds: `(1 + α) / (1 - α)` for α = 1%. The SQL
/// function `trace_latency_bucket` uses the same constant, written `101.0 / 99.0`.
const GAMMA: f64 = 101.0 / 99.0;

/// The bucket of exact zeros (the SQL function returns the same value).
pub const ZERO_BUCKET: i32 = i32::MIN;

/// Bytes per encoded `(bucket, count)` pair.
const PAIR: usize = 12;

/// The bucket of latency `x` (`x >= 0`), as `trace_latency_bucket(x)` computes it in SQL.
pub fn bucket(x: f64) -> i32 {
    if x > 0.0 {
        // At most about ±37,000 for any positive f64, so the cast cannot saturate.
        (x.ln() / GAMMA.ln()).ceil() as i32
    } else {
        ZERO_BUCKET
    }
}

/// The value that represents bucket `i`: `2·γ^i / (γ + 1)`, i.e. `0.99·γ^i`.
pub fn value(i: i32) -> f64 {
    if i == ZERO_BUCKET {
        0.0
    } else {
        (f64::from(i) * GAMMA.ln()).exp() * (2.0 / (GAMMA + 1.0))
    }
}

/// A malformed encoded sketch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed latency sketch: {0}")]
pub struct SketchError(&'static str);

/// Bucket counts, sorted by bucket, plus the exact minimum and maximum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    buckets: Vec<(i32, u64)>,
    count: u64,
    min: Option<f64>,
    max: Option<f64>,
}

impl Sketch {
    /// Adds one latency.
    pub fn add(&mut self, x: f64) {
        self.merge_sorted(&[(bucket(x), 1)]);
        self.note_range(x, x);
    }

    /// Merges an encoded sketch whose latencies range from `min` to `max`.
    pub fn merge_encoded(&mut self, bytes: &[u8], min: f64, max: f64) -> Result<(), SketchError> {
        let mut pairs = decode(bytes)?;
        if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            // Not written by this crate's SQL; accept it in any order all the same.
            pairs.sort_unstable_by_key(|p| p.0);
            pairs.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1 += later.1;
                }
                same
            });
        }
        self.merge_sorted(&pairs);
        self.note_range(min, max);
        Ok(())
    }

    /// Merges another sketch.
    pub fn merge(&mut self, other: &Sketch) {
        self.merge_sorted(&other.buckets);
        if let (Some(lo), Some(hi)) = (other.min, other.max) {
            self.note_range(lo, hi);
        }
    }

    /// The encoding described in the module documentation.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.buckets.len() * PAIR);
        for &(i, n) in &self.buckets {
            out.extend_from_slice(&i.to_be_bytes());
            // Counts come from i64 sums in SQL, so they fit.
            out.extend_from_slice(&(n.min(i64::MAX as u64) as i64).to_be_bytes());
        }
        out
    }

    /// Latencies held.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest latency held (exact).
    pub fn min(&self) -> Option<f64> {
        self.min
    }

    /// Largest latency held (exact).
    pub fn max(&self) -> Option<f64> {
        self.max
    }

    /// The `p` percentile (0..=1) as `percentile_cont` interpolates it, within
    /// [`RELATIVE_ERROR`] of the exact one; `None` when empty.
    pub fn percentile_cont(&self, p: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let pos = p.clamp(0.0, 1.0) * (self.count - 1) as f64;
        let lo = pos.floor();
        let hi = pos.ceil();
        let a = self.value_at_rank(lo as u64);
        let b = self.value_at_rank(hi as u64);
        Some(a + (b - a) * (pos - lo))
    }

    /// The value of the event at 0-based `rank`, clamped to the exact range.
    fn value_at_rank(&self, rank: u64) -> f64 {
        let mut seen = 0;
        let mut v = 0.0;
        for &(i, n) in &self.buckets {
            seen += n;
            if seen > rank {
                v = value(i);
                break;
            }
        }
        match (self.min, self.max) {
            (Some(lo), Some(hi)) => v.clamp(lo, hi),
            _ => v,
        }
    }

    fn note_range(&mut self, lo: f64, hi: f64) {
        self.min = Some(self.min.map_or(lo, |m| m.min(lo)));
        self.max = Some(self.max.map_or(hi, |m| m.max(hi)));
    }

    /// Merges pairs sorted by strictly increasing bucket.
    fn merge_sorted(&mut self, pairs: &[(i32, u64)]) {
        self.count += pairs.iter().map(|p| p.1).sum::<u64>();
        if self.buckets.is_empty() {
            self.buckets.extend_from_slice(pairs);
            return;
        }
        let mut out = Vec::with_capacity(self.buckets.len() + pairs.len());
        let (mut a, mut b) = (self.buckets.iter().peekable(), pairs.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&(i, n)), Some(&&(j, m))) => {
                    if i < j {
                        out.push((i, n));
                        a.next();
                    } else if j < i {
                        out.push((j, m));
                        b.next();
                    } else {
                        out.push((i, n + m));
                        a.next();
                        b.next();
                    }
                }
                (Some(&&p), None) => {
                    out.push(p);
                    a.next();
                }
                (None, Some(&&p)) => {
                    out.push(p);
                    b.next();
                }
                (None, None) => break,
            }
        }
        self.buckets = out;
    }
}

fn decode(bytes: &[u8]) -> Result<Vec<(i32, u64)>, SketchError> {
    if !bytes.len().is_multiple_of(PAIR) {
        return Err(SketchError("length is not a multiple of 12 bytes"));
    }
    bytes
        .chunks_exact(PAIR)
        .map(|c| {
            let (i, n) = c.split_at(4);
            // chunks_exact gives 12 bytes, split into 4 + 8, so both conversions succeed.
            let i = i32::from_be_bytes(i.try_into().expect("4 bytes"));
            let n = i64::from_be_bytes(n.try_into().expect("8 bytes"));
            u64::try_from(n)
                .map(|n| (i, n))
                .map_err(|_| SketchError("negative count"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::percentile_cont;

    /// A deterministic generator (xorshift64*), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn every_value_is_within_the_relative_error_of_its_bucket() {
        let mut x = 1e-300;
        while x < 1e300 {
            let v = value(bucket(x));
            assert!(
                ((v - x) / x).abs() <= RELATIVE_ERROR * (1.0 + 1e-9),
                "{x} -> {v}"
            );
            x *= 1.0137;
        }
        assert_eq!(value(bucket(0.0)), 0.0);
        assert!(bucket(f64::MIN_POSITIVE / 4.0) > ZERO_BUCKET);
        assert!(bucket(f64::MAX) < 40_000 && bucket(f64::MIN_POSITIVE / 1e10) > -40_000);
    }

    #[test]
    fn merged_percentiles_stay_within_the_error_of_percentile_cont() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..40 {
            let n = 1 + (rng.next() * 3000.0) as usize;
            let mut values: Vec<f64> = (0..n)
                .map(|_| match (rng.next() * 10.0) as u32 {
                    0 => 0.0,
                    1 => rng.next() * 1e-6,
                    2 => 8.64e7 * rng.next(),
                    _ => (rng.next() * 12.0).exp(),
                })
                .collect();
            // Split into parts, encode each, merge the encodings (as the rollups do).
            let mut merged = Sketch::default();
            for part in values.chunks(1 + n / (1 + round % 7)) {
                let mut s = Sketch::default();
                part.iter().for_each(|&x| s.add(x));
                merged
                    .merge_encoded(&s.encode(), s.min().unwrap(), s.max().unwrap())
                    .unwrap();
            }
            values.sort_unstable_by(f64::total_cmp);
            assert_eq!(merged.count(), n as u64);
            for p in [0.0, 0.5, 0.95, 0.99, 1.0] {
                let exact = percentile_cont(&values, p).unwrap();
                let est = merged.percentile_cont(p).unwrap();
                assert!(
                    (est - exact).abs() <= RELATIVE_ERROR * exact * (1.0 + 1e-9),
                    "round {round} p{p}: {est} vs {exact}"
                );
            }
        }
        assert_eq!(Sketch::default().percentile_cont(0.5), None);
    }

    #[test]
    fn malformed_encodings_are_refused_and_unsorted_ones_accepted() {
        let mut s = Sketch::default();
        assert!(s.merge_encoded(&[0; 11], 0.0, 0.0).is_err());
        let mut neg = 5i32.to_be_bytes().to_vec();
        neg.extend_from_slice(&(-1i64).to_be_bytes());
        assert!(s.merge_encoded(&neg, 1.0, 1.0).is_err());
        let mut unsorted = Vec::new();
        for (i, n) in [(9i32, 2i64), (3, 1), (9, 1)] {
            unsorted.extend_from_slice(&i.to_be_bytes());
            unsorted.extend_from_slice(&n.to_be_bytes());
        }
        s.merge_encoded(&unsorted, 1.0, 2.0).unwrap();
        assert_eq!(s.buckets, vec![(3, 1), (9, 3)]);
        assert_eq!(s.count(), 4);
    }
}
