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
//! In memory, the buckets of a day of latencies are a dense array of counts (merging a row
//! is one addition per bucket), and a few buckets far apart sparse pairs (memory in
//! proportion to the buckets held, whatever their span); see `Buckets`.
//!
//! Two encodings, both read by [`Sketch::merge_encoded`]:
//! - legacy, as SQL writes it (the delta rows, and the rollups the migrations backfill):
//!   `(bucket: i32, count: i64)` pairs, big-endian (`int4send(bucket) || int8send(count)`),
//!   in ascending bucket order, 12 bytes each;
//! - compact, as [`Sketch::encode`] writes it (every rollup row the service folds or
//!   re-encodes): the byte [`COMPACT_TAG`], then per bucket, in ascending order, the
//!   difference from the previous bucket (from 0 for the first) zigzag-encoded and the count,
//!   both as LEB128 varints. Consecutive buckets take one byte and counts under 128 one more,
//!   so a day's sketch is about a sixth of its legacy size (issue 24: a 90-day query reads
//!   the sketch bytes of 4,500 daily rows). The tag never starts a legacy encoding: a pair
//!   starts with the high byte of its bucket, `0x00` or `0xFF` for every bucket of a finite
//!   latency (within ±40,000) and `0x80` for [`ZERO_BUCKET`].

/// Largest relative difference between a percentile of the sketch and the exact
/// `percentile_cont` over the same events.
pub const RELATIVE_ERROR: f64 = 0.01;

/// Ratio between consecutive bucket bounds: `(1 + α) / (1 - α)` for α = 1%. The SQL
/// function `trace_latency_bucket` uses the same constant, written `101.0 / 99.0`.
const GAMMA: f64 = 101.0 / 99.0;

/// The bucket of exact zeros (the SQL function returns the same value).
pub const ZERO_BUCKET: i32 = i32::MIN;

/// Bytes per legacy `(bucket, count)` pair.
const PAIR: usize = 12;

/// First byte of the compact encoding.
pub const COMPACT_TAG: u8 = 0x01;

/// Smallest span of buckets a dense array may cover whatever its density (2 KiB of counts).
const DENSE_SPAN_MIN: usize = 256;

/// A dense array covers at most this many buckets per distinct bucket held, so its memory
/// stays within twice a sparse list's (16 bytes a bucket) beyond [`DENSE_SPAN_MIN`]: a
/// crafted sketch of a few far-apart buckets stays sparse.
const DENSE_SPAN_PER_BUCKET: usize = 4;

std::thread_local! {
    /// Pairs of an encoding, decoded (and checked) before merging, so a malformed one
    /// changes nothing; reused, so merging allocates nothing once it has grown.
    static SCRATCH: std::cell::RefCell<Vec<(i32, u64)>> = const { std::cell::RefCell::new(Vec::new()) };
}

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

impl SketchError {
    /// A malformed sketch, saying how.
    pub fn new(what: &'static str) -> Self {
        SketchError(what)
    }
}

/// The counts of the buckets of positive latencies, in one of two layouts; both hold the
/// same information, and which one a sketch uses changes no answer or encoding.
#[derive(Debug, Clone)]
enum Buckets {
    /// `(bucket, count)` pairs by strictly increasing bucket, counts above 0: compact for
    /// few buckets far apart.
    Sparse(Vec<(i32, u64)>),
    /// The counts of buckets `first..first + counts.len()` (0 for a bucket not held), and
    /// how many are above 0: merging a row is one addition per bucket (issue 24: a 90-day
    /// query merges about a million pairs).
    Dense {
        first: i32,
        counts: Vec<u64>,
        held: usize,
    },
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::Sparse(Vec::new())
    }
}

impl Buckets {
    /// The held buckets with their counts, by increasing bucket.
    fn iter(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        let (sparse, dense) = match self {
            Buckets::Sparse(pairs) => (pairs.as_slice(), None),
            Buckets::Dense { first, counts, .. } => (&[][..], Some((*first, counts))),
        };
        let dense = dense.into_iter().flat_map(|(first, counts)| {
            // `first + k` is a bucket of the array, so it fits an i32.
            (first..)
                .zip(counts.iter().copied())
                .filter(|&(_, n)| n > 0)
        });
        sparse.iter().copied().chain(dense)
    }

    /// Whether a dense array of `span` buckets may hold `held` distinct ones.
    fn dense_fits(span: usize, held: usize) -> bool {
        span <= DENSE_SPAN_MIN.max(held.saturating_mul(DENSE_SPAN_PER_BUCKET))
    }

    /// Adds `pairs` (strictly increasing buckets, none [`ZERO_BUCKET`]), in place.
    fn merge(&mut self, pairs: &[(i32, u64)]) {
        let (Some(&(lo, _)), Some(&(hi, _))) = (pairs.first(), pairs.last()) else {
            return;
        };
        if let Buckets::Dense {
            first,
            counts,
            held,
        } = self
        {
            let end = i64::from(*first) + counts.len() as i64;
            let (new_first, new_end) = (lo.min(*first), (i64::from(hi) + 1).max(end));
            let span = (new_end - i64::from(new_first)) as usize;
            if !Self::dense_fits(span, *held + pairs.len()) {
                *self = Buckets::Sparse(self.iter().collect());
                return self.merge(pairs);
            }
            if new_first < *first || new_end > end {
                let shift = (*first - new_first) as usize;
                counts.resize(span, 0);
                if shift > 0 {
                    counts.copy_within(0..span - shift, shift);
                    counts[..shift].fill(0);
                }
                *first = new_first;
            }
            for &(i, n) in pairs {
                let c = &mut counts[(i - *first) as usize];
                *held += usize::from(*c == 0);
                *c += n;
            }
            return;
        }
        if let Buckets::Sparse(held) = self {
            merge_sorted(held, pairs);
            if let (Some(&(lo, _)), Some(&(hi, _))) = (held.first(), held.last()) {
                let span = (i64::from(hi) - i64::from(lo) + 1) as usize;
                if held.len() > 1 && Self::dense_fits(span, held.len()) {
                    let mut counts = vec![0; span];
                    for &(i, n) in held.iter() {
                        counts[(i - lo) as usize] = n;
                    }
                    *self = Buckets::Dense {
                        first: lo,
                        counts,
                        held: held.len(),
                    };
                }
            }
        }
    }

    /// Where the counts live (to check that merging does not reallocate).
    #[cfg(test)]
    fn storage(&self) -> *const u8 {
        match self {
            Buckets::Sparse(pairs) => pairs.as_ptr().cast(),
            Buckets::Dense { counts, .. } => counts.as_ptr().cast(),
        }
    }
}

/// Merges pairs sorted by strictly increasing bucket into `held` (sorted the same way), in
/// place: a first pass adds the counts of buckets already present and counts the new ones;
/// if there are any, `held` grows by that many at the end and the new ones are merged in
/// from the back.
fn merge_sorted(held: &mut Vec<(i32, u64)>, pairs: &[(i32, u64)]) {
    let mut new = 0;
    let mut k = 0;
    for &(j, m) in pairs {
        while k < held.len() && held[k].0 < j {
            k += 1;
        }
        match held.get_mut(k) {
            Some(b) if b.0 == j => b.1 += m,
            _ => new += 1,
        }
    }
    if new == 0 {
        return;
    }
    let mut read = held.len();
    held.resize(read + new, (0, 0));
    let mut write = held.len();
    for &(j, m) in pairs.iter().rev() {
        while read > 0 && held[read - 1].0 > j {
            write -= 1;
            read -= 1;
            held[write] = held[read];
        }
        if read > 0 && held[read - 1].0 == j {
            continue; // already added in the first pass
        }
        write -= 1;
        held[write] = (j, m);
    }
}

/// Bucket counts plus the exact minimum and maximum. Equality compares what the sketch
/// holds, whatever the layout of its buckets.
#[derive(Debug, Clone, Default)]
pub struct Sketch {
    /// Latencies of exactly 0 ([`ZERO_BUCKET`]).
    zeros: u64,
    buckets: Buckets,
    count: u64,
    min: Option<f64>,
    max: Option<f64>,
}

impl PartialEq for Sketch {
    fn eq(&self, other: &Self) -> bool {
        (self.zeros, self.count, self.min, self.max)
            == (other.zeros, other.count, other.min, other.max)
            && self.buckets.iter().eq(other.buckets.iter())
    }
}

impl Sketch {
    /// Adds one latency.
    pub fn add(&mut self, x: f64) {
        self.merge_pairs(&[(bucket(x), 1)]);
        self.note_range(x, x);
    }

    /// Merges an encoded sketch whose latencies range from `min` to `max`, in place (no
    /// allocation beyond the growth of this sketch's own buckets). A malformed encoding is
    /// refused and changes nothing.
    pub fn merge_encoded(&mut self, bytes: &[u8], min: f64, max: f64) -> Result<(), SketchError> {
        SCRATCH.with_borrow_mut(|pairs| {
            if bytes.first() == Some(&COMPACT_TAG) {
                decode_compact(&bytes[1..], pairs)?;
            } else {
                let sorted = check_encoded(bytes)?;
                pairs.clear();
                pairs.extend(decode(bytes));
                if !sorted {
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
            }
            self.merge_pairs(pairs);
            Ok::<_, SketchError>(())
        })?;
        self.note_range(min, max);
        Ok(())
    }

    /// Merges another sketch, in place.
    pub fn merge(&mut self, other: &Sketch) {
        SCRATCH.with_borrow_mut(|pairs| {
            pairs.clear();
            pairs.extend(other.pairs());
            self.merge_pairs(pairs);
        });
        if let (Some(lo), Some(hi)) = (other.min, other.max) {
            self.note_range(lo, hi);
        }
    }

    /// The compact encoding described in the module documentation.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.held() * 3);
        out.push(COMPACT_TAG);
        let mut last = 0i64;
        for (i, n) in self.pairs() {
            let delta = i64::from(i) - last;
            last = i64::from(i);
            put_varint(&mut out, ((delta << 1) ^ (delta >> 63)) as u64);
            // Counts come from i64 sums in SQL, so they fit.
            put_varint(&mut out, n.min(i64::MAX as u64));
        }
        out
    }

    /// The legacy encoding described in the module documentation (as SQL writes it).
    pub fn encode_legacy(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.held() * PAIR);
        for (i, n) in self.pairs() {
            out.extend_from_slice(&i.to_be_bytes());
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

    /// The held buckets with their counts, by increasing bucket (zeros first).
    fn pairs(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        let zeros = (self.zeros > 0).then_some((ZERO_BUCKET, self.zeros));
        zeros.into_iter().chain(self.buckets.iter())
    }

    /// Distinct buckets held.
    fn held(&self) -> usize {
        usize::from(self.zeros > 0)
            + match &self.buckets {
                Buckets::Sparse(pairs) => pairs.len(),
                Buckets::Dense { held, .. } => *held,
            }
    }

    /// Adds pairs sorted by strictly increasing bucket, in place.
    fn merge_pairs(&mut self, mut pairs: &[(i32, u64)]) {
        for &(_, n) in pairs {
            self.count += n;
        }
        if let Some((&(ZERO_BUCKET, n), rest)) = pairs.split_first() {
            self.zeros += n;
            pairs = rest;
        }
        self.buckets.merge(pairs);
    }

    /// The value of the event at 0-based `rank`, clamped to the exact range.
    fn value_at_rank(&self, rank: u64) -> f64 {
        let mut seen = 0;
        let mut v = 0.0;
        for (i, n) in self.pairs() {
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
}

/// Appends `v` as an LEB128 varint (7 bits a byte, low first; the high bit says more follow).
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an LEB128 varint of at most 64 bits from the front of `bytes`.
fn take_varint(bytes: &mut &[u8]) -> Result<u64, SketchError> {
    // Most steps and counts of a rollup's sketch take one byte.
    if let Some((&b, rest)) = bytes.split_first()
        && b < 0x80
    {
        *bytes = rest;
        return Ok(u64::from(b));
    }
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or(SketchError("truncated varint"))?;
        *bytes = rest;
        if shift == 63 && b > 1 {
            return Err(SketchError("varint over 64 bits"));
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(SketchError("varint over 64 bits"))
}

/// Decodes the pairs of a compact encoding (after its tag) into `pairs` (cleared first),
/// checking that buckets fit an `i32` and strictly increase and that counts fit an `i64`.
fn decode_compact(mut bytes: &[u8], pairs: &mut Vec<(i32, u64)>) -> Result<(), SketchError> {
    pairs.clear();
    let mut last = 0i64;
    while !bytes.is_empty() {
        let z = take_varint(&mut bytes)?;
        let delta = (z >> 1) as i64 ^ -((z & 1) as i64);
        if !pairs.is_empty() && delta <= 0 {
            return Err(SketchError("buckets do not increase"));
        }
        let i = last
            .checked_add(delta)
            .and_then(|i| i32::try_from(i).ok())
            .ok_or(SketchError("bucket out of range"))?;
        last = i64::from(i);
        let n = take_varint(&mut bytes)?;
        if n > i64::MAX as u64 {
            return Err(SketchError("count out of range"));
        }
        pairs.push((i, n));
    }
    Ok(())
}

/// Checks a legacy encoding (length, counts); returns whether its buckets strictly increase.
fn check_encoded(bytes: &[u8]) -> Result<bool, SketchError> {
    if !bytes.len().is_multiple_of(PAIR) {
        return Err(SketchError("length is not a multiple of 12 bytes"));
    }
    let mut sorted = true;
    let mut last = None;
    for c in bytes.chunks_exact(PAIR) {
        let (i, n) = split_pair(c);
        if n < 0 {
            return Err(SketchError("negative count"));
        }
        sorted &= last.is_none_or(|l| l < i);
        last = Some(i);
    }
    Ok(sorted)
}

fn split_pair(c: &[u8]) -> (i32, i64) {
    let (i, n) = c.split_at(4);
    // Callers pass chunks of exactly 12 bytes, split into 4 + 8, so both conversions succeed.
    let i = i32::from_be_bytes(i.try_into().expect("4 bytes"));
    let n = i64::from_be_bytes(n.try_into().expect("8 bytes"));
    (i, n)
}

/// The pairs of a legacy encoding that [`check_encoded`] accepted (so every count is >= 0).
fn decode(bytes: &[u8]) -> impl DoubleEndedIterator<Item = (i32, u64)> + Clone + '_ {
    bytes.chunks_exact(PAIR).map(|c| {
        let (i, n) = split_pair(c);
        (i, n.unsigned_abs())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::percentile_cont;
    use std::collections::BTreeMap;

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

    /// Issue 24, bug 1: merging into a sketch that already has room (or every bucket) must
    /// not allocate: a stats query merges thousands of rows into one sketch per group.
    #[test]
    fn issue_24_merging_happens_in_place() {
        let mut acc = Sketch::default();
        for x in [1.0, 10.0, 100.0, 1000.0] {
            acc.add(x);
        }
        let mut row = Sketch::default();
        row.add(10.0);
        row.add(1000.0);
        let bytes = row.encode();
        let before = acc.buckets.storage();
        for _ in 0..100 {
            acc.merge_encoded(&bytes, 10.0, 1000.0).unwrap();
            acc.merge(&row);
        }
        assert_eq!(acc.buckets.storage(), before, "no new allocation per merge");
        assert_eq!(acc.count(), 4 + 400);
        assert_eq!(acc.held(), 4);
        // New buckets interleaved with existing ones land in order.
        let mut other = Sketch::default();
        for x in [0.0, 0.5, 5.0, 50.0, 5000.0, 10.0] {
            other.add(x);
        }
        acc.merge_encoded(&other.encode(), 0.0, 5000.0).unwrap();
        let pairs: Vec<(i32, u64)> = acc.pairs().collect();
        assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(pairs.len(), 9);
        assert_eq!(acc.held(), 9);
        assert_eq!(acc.count(), 410);
        assert_eq!(acc.pairs().map(|p| p.1).sum::<u64>(), 410);
        // A malformed encoding changes nothing.
        let mut bad = row.encode_legacy();
        bad.extend_from_slice(&7i32.to_be_bytes());
        bad.extend_from_slice(&(-3i64).to_be_bytes());
        let copy = acc.clone();
        assert!(acc.merge_encoded(&bad, 1.0, 2.0).is_err());
        assert_eq!(acc, copy);
    }

    /// Issue 24, bug 1: a 90-day query reads 4,500 daily rows, so the bytes of a day's
    /// sketch (1,440 log-normal latencies, as `scripts/bench-stats.sh` stores) bound its
    /// cost: at most 3 bytes a bucket (the legacy encoding takes 12).
    #[test]
    fn issue_24_a_days_sketch_encodes_in_at_most_3_bytes_a_bucket() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut day = Sketch::default();
        for _ in 0..1440 {
            let normal = (-2.0 * (1.0 - rng.next()).ln()).sqrt()
                * (2.0 * std::f64::consts::PI * rng.next()).cos();
            day.add((5.3 + 0.8 * normal).exp());
        }
        let bytes = day.encode();
        assert!(day.held() > 150, "{} buckets", day.held());
        assert!(
            bytes.len() <= 1 + 3 * day.held(),
            "{} bytes for {} buckets",
            bytes.len(),
            day.held()
        );
        let mut back = Sketch::default();
        back.merge_encoded(&bytes, day.min().unwrap(), day.max().unwrap())
            .unwrap();
        assert_eq!(back, day);
    }

    /// Rows written before the compact encoding (and SQL's delta rows) stay readable, and
    /// both encodings of a sketch merge to the same sketch, zeros and tiny latencies too.
    #[test]
    fn issue_24_legacy_and_compact_encodings_merge_alike() {
        let mut s = Sketch::default();
        for x in [0.0, 0.0, 1e-9, 0.3, 1.0, 1.0, 250.0, 8.64e7] {
            s.add(x);
        }
        let (mut a, mut b) = (Sketch::default(), Sketch::default());
        a.merge_encoded(&s.encode(), 0.0, 8.64e7).unwrap();
        b.merge_encoded(&s.encode_legacy(), 0.0, 8.64e7).unwrap();
        assert_eq!(a, s);
        assert_eq!(b, s);
        assert_eq!(s.encode()[0], COMPACT_TAG);
        assert!(s.encode().len() < s.encode_legacy().len() / 2);
        assert_eq!(Sketch::default().encode(), vec![COMPACT_TAG]);
        let mut empty = Sketch::default();
        empty.merge_encoded(&[COMPACT_TAG], 1.0, 1.0).unwrap();
        assert_eq!(empty.count(), 0);
    }

    #[test]
    fn issue_24_malformed_compact_encodings_change_nothing() {
        let mut acc = Sketch::default();
        acc.add(3.0);
        let copy = acc.clone();
        let cases: [&[u8]; 6] = [
            &[COMPACT_TAG, 0x02],                            // a bucket without its count
            &[COMPACT_TAG, 0x82],                            // a truncated varint
            &[COMPACT_TAG, 0x02, 1, 0x00, 1],                // the same bucket twice
            &[COMPACT_TAG, 0x04, 1, 0x01, 1],                // a bucket lower than the one before
            &[COMPACT_TAG, 0xfe, 0xff, 0xff, 0xff, 0x1f, 1], // beyond i32
            &[
                COMPACT_TAG,
                0x02,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0x01,
            ], // count beyond i64
        ];
        for bytes in cases {
            assert!(acc.merge_encoded(bytes, 1.0, 9.0).is_err(), "{bytes:?}");
            assert_eq!(acc, copy, "{bytes:?}");
        }
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
        assert_eq!(s.pairs().collect::<Vec<_>>(), vec![(3, 1), (9, 3)]);
        assert_eq!(s.count(), 4);
    }

    /// Issue 24, bug 1: whichever layout the buckets take (a dense array for a day of
    /// latencies, sparse pairs for a few far-apart buckets, and back as merges change
    /// them), a merge holds what a plain map of bucket counts holds, and encodes the same.
    #[test]
    fn issue_24_dense_and_sparse_buckets_merge_alike() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let mut acc = Sketch::default();
        let mut expected: BTreeMap<i32, u64> = BTreeMap::new();
        let (mut dense_seen, mut sparse_seen) = (false, false);
        for round in 0..300 {
            let mut row = Sketch::default();
            let n = 1 + (rng.next() * 400.0) as usize;
            for _ in 0..n {
                let x = match round % 10 {
                    // A far-away pair: the layout must stay bounded (sparse) or grow.
                    3 => [0.0, 1e-200, 1e200][(rng.next() * 3.0) as usize],
                    // Latencies around 200 ms, as bench-stats.sh stores them.
                    _ => (5.3 + 0.8 * (rng.next() * 4.0 - 2.0)).exp(),
                };
                row.add(x);
                *expected.entry(bucket(x)).or_default() += 1;
            }
            acc.merge_encoded(&row.encode(), row.min().unwrap(), row.max().unwrap())
                .unwrap();
            match acc.buckets {
                Buckets::Dense { .. } => dense_seen = true,
                Buckets::Sparse(_) => sparse_seen = true,
            }
            let held: Vec<(i32, u64)> = acc.pairs().collect();
            let want: Vec<(i32, u64)> = expected.iter().map(|(&i, &n)| (i, n)).collect();
            assert_eq!(held, want, "round {round}");
            assert_eq!(acc.held(), want.len(), "round {round}");
        }
        assert!(dense_seen && sparse_seen, "both layouts exercised");
        // Equal sketches are equal whatever their layout, and encode alike.
        let mut sparse = Sketch::default();
        sparse
            .merge_encoded(&acc.encode_legacy(), acc.min().unwrap(), acc.max().unwrap())
            .unwrap();
        assert_eq!(sparse, acc);
        assert_eq!(sparse.encode(), acc.encode());
    }

    /// A few latencies far apart (as a crafted row holds) keep sparse buckets: memory in
    /// proportion to the buckets held, not to their span.
    #[test]
    fn issue_24_far_apart_buckets_stay_sparse() {
        let mut s = Sketch::default();
        for x in [1e-9, 1.0, 1e9] {
            s.add(x);
        }
        let mut twice = s.clone();
        twice.merge(&s);
        assert!(matches!(twice.buckets, Buckets::Sparse(ref p) if p.len() == 3));
        let mut dense = Sketch::default();
        for k in 0..200 {
            dense.add(100.0 * (1.0 + f64::from(k) / 100.0));
        }
        assert!(matches!(dense.buckets, Buckets::Dense { .. }));
        // Merging within its range adds in place.
        let (at, copy) = (dense.buckets.storage(), dense.clone());
        for _ in 0..10 {
            dense.merge(&copy);
        }
        assert_eq!(dense.buckets.storage(), at, "no new allocation per merge");
        assert_eq!(dense.count(), 11 * 200);
        // A far bucket arriving in a dense sketch turns it sparse, holding the same.
        let before: Vec<(i32, u64)> = dense.pairs().collect();
        dense.add(1e12);
        assert!(matches!(dense.buckets, Buckets::Sparse(_)));
        assert_eq!(dense.pairs().count(), before.len() + 1);
        assert!(dense.pairs().zip(&before).all(|(a, b)| a == *b));
    }
}
