//! The in-memory store: bounded (a full store refuses a batch with 503 rather than evicting
//! acknowledged events) and with a retention window by arrival time. It is lost when the
//! process exits, except through [`MemoryStore::dump_jsonl`], which the server runs after
//! draining when `--dump-on-exit` is given.

use std::collections::{HashSet, VecDeque};
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::contract;
use crate::event::TraceEvent;
use crate::stats::{self, Stats, StatsQuery};

use super::{InsertOutcome, StoreError};

/// Events per segment. Events live in fixed-size segments so that growing the store never
/// moves (copies) the events already held, which would stall every request for a moment.
const SEGMENT: usize = 16 * 1024;

/// Bytes an id costs in the set of ids held beyond its text: the `String` and the hash
/// table's slot and control byte (rounded up).
const ID_ENTRY_BYTES: usize = std::mem::size_of::<String>() + 8;

/// Bytes counted for `e` while it is held: the event in its segment, its strings' text,
/// its attributes' JSON text, and its entry in the id set.
pub fn event_bytes(e: &TraceEvent) -> usize {
    std::mem::size_of::<(Instant, TraceEvent)>()
        + e.trace_id.capacity()
        + e.service.capacity()
        + e.model.capacity()
        + e.attributes.as_ref().map_or(0, |a| a.as_str().len())
        + ID_ENTRY_BYTES
        + e.trace_id.len()
}

/// The most [`event_bytes`] of any valid event (names of 128 four-byte characters, the
/// largest attributes); a store with less room than this is full.
pub const MAX_EVENT_BYTES: usize = std::mem::size_of::<(Instant, TraceEvent)>()
    + 4 * 4 * crate::event::MAX_NAME_CHARS
    + crate::event::MAX_ATTRIBUTES_BYTES
    + ID_ENTRY_BYTES;

/// Default byte bound: [`contract::MEMORY_STORE_PERCENT`] of the container's memory limit
/// ([`contract::MEMORY_LIMIT_BYTES`]).
pub const DEFAULT_MAX_BYTES: usize =
    (contract::MEMORY_LIMIT_BYTES / 100 * contract::MEMORY_STORE_PERCENT) as usize;

/// A segment: shared, so a stats scan works on a snapshot of the segments taken under the
/// lock and scans them after releasing it; a write to a segment a scan still holds copies it
/// first (at most the one being filled and the one being expired).
type Segment = Arc<Vec<(Instant, TraceEvent)>>;

#[derive(Debug, Default)]
struct Inner {
    /// Segments in arrival order; each is sorted by arrival time.
    segments: VecDeque<Segment>,
    len: usize,
    /// [`event_bytes`] of the events held, summed.
    bytes: usize,
    ids: HashSet<String>,
}

impl Inner {
    fn push(&mut self, arrived: Instant, event: TraceEvent) {
        if self.segments.back().is_none_or(|s| s.len() == SEGMENT) {
            self.segments
                .push_back(Arc::new(Vec::with_capacity(SEGMENT)));
        }
        if let Some(segment) = self.segments.back_mut() {
            self.bytes += event_bytes(&event);
            Arc::make_mut(segment).push((arrived, event));
            self.len += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = &TraceEvent> {
        self.segments.iter().flat_map(|s| s.iter()).map(|(_, e)| e)
    }
}

/// In-memory event store; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    capacity: usize,
    max_bytes: usize,
    retention: Duration,
}

impl MemoryStore {
    /// A store holding at most `capacity` events and [`DEFAULT_MAX_BYTES`] bytes (see
    /// [`event_bytes`]), each for `retention` after arrival.
    pub fn new(capacity: usize, retention: Duration) -> Self {
        // Reserving the id set up front avoids rehashing millions of ids while a request
        // waits (the table's memory is only touched as it fills).
        let inner = Inner {
            ids: HashSet::with_capacity(capacity.min(16_000_000)),
            ..Inner::default()
        };
        MemoryStore {
            inner: Arc::new(Mutex::new(inner)),
            capacity,
            max_bytes: DEFAULT_MAX_BYTES,
            retention,
        }
    }

    /// The same store bounded to `max_bytes` (see [`event_bytes`]) instead.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The error of a refused batch.
    pub fn full(&self) -> StoreError {
        StoreError::Full {
            max_events: self.capacity,
            max_bytes: self.max_bytes,
        }
    }

    /// Whether the store has no room for one more event (of the largest size), after
    /// dropping the events past retention: readiness then fails.
    pub fn is_full(&self) -> bool {
        let mut inner = self.lock();
        self.expire(&mut inner, Instant::now());
        inner.len >= self.capacity || inner.bytes + MAX_EVENT_BYTES > self.max_bytes
    }

    /// Bytes held (see [`event_bytes`]).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the deque half-updated in a way that
        // matters to readers, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expire(&self, inner: &mut Inner, now: Instant) {
        while let Some(front) = inner.segments.front() {
            let expired = front
                .partition_point(|(arrived, _)| now.duration_since(*arrived) >= self.retention);
            if expired == 0 {
                break;
            }
            let whole = expired == front.len();
            let gone: Vec<_> = match inner.segments.front_mut() {
                Some(front) if whole => std::mem::take(Arc::make_mut(front)),
                Some(front) => Arc::make_mut(front).drain(..expired).collect(),
                None => break,
            };
            if whole {
                inner.segments.pop_front();
            }
            inner.len -= gone.len();
            for (_, e) in gone {
                inner.bytes -= event_bytes(&e);
                inner.ids.remove(&e.trace_id);
            }
            if !whole {
                break;
            }
        }
    }

    /// Stores the batch atomically: all new events, or none when it would exceed capacity.
    pub fn insert(&self, events: Vec<TraceEvent>) -> Result<InsertOutcome, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        self.expire(&mut inner, now);
        let mut seen = HashSet::new();
        let fresh: Vec<TraceEvent> = events
            .iter()
            .filter(|e| !inner.ids.contains(&e.trace_id) && seen.insert(e.trace_id.as_str()))
            .cloned()
            .collect();
        let bytes: usize = fresh.iter().map(event_bytes).sum();
        if inner.len + fresh.len() > self.capacity || inner.bytes + bytes > self.max_bytes {
            return Err(self.full());
        }
        let outcome = InsertOutcome {
            inserted: fresh.len() as u64,
            duplicates: (events.len() - fresh.len()) as u64,
        };
        for e in fresh {
            inner.ids.insert(e.trace_id.clone());
            inner.push(now, e);
        }
        Ok(outcome)
    }

    /// Aggregates over the query's window (on a blocking thread: a full scan), after
    /// dropping the events past retention, so expired events are never counted. The scan
    /// runs on a snapshot of the segments, without the lock that ingest waits for.
    pub async fn stats(&self, query: &StatsQuery) -> Stats {
        let this = self.clone();
        let q = query.clone();
        let work = move || {
            let snapshot: Vec<Segment> = {
                let mut inner = this.lock();
                this.expire(&mut inner, Instant::now());
                inner.segments.iter().cloned().collect()
            };
            stats::compute(&q, snapshot.iter().flat_map(|s| s.iter()).map(|(_, e)| e))
        };
        match tokio::task::spawn_blocking(work).await {
            Ok(s) => s,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Events held (within retention).
    pub fn len(&self) -> usize {
        let mut inner = self.lock();
        self.expire(&mut inner, Instant::now());
        inner.len
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes every held event (within retention) to `path` as JSON lines, readable only by
    /// the owner (mode 0600), through a temporary file that is synced and renamed into place;
    /// returns the count.
    pub fn dump_jsonl(&self, path: &Path) -> Result<usize, StoreError> {
        let err = |source| StoreError::Dump {
            path: path.display().to_string(),
            source,
        };
        let tmp = dump_tmp_path(path);
        let mut inner = self.lock();
        self.expire(&mut inner, Instant::now());
        let file = create_private(&tmp).map_err(err)?;
        let mut w = std::io::BufWriter::new(file);
        for e in inner.iter() {
            serde_json::to_writer(&mut w, e).map_err(|e| err(e.into()))?;
            w.write_all(b"\n").map_err(err)?;
        }
        let file = w.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(inner.len)
    }
}

fn dump_tmp_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Creates (or truncates) `path` for writing with mode 0600.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let file = options.open(path)?;
        // `mode` applies only to a new file; an existing one is narrowed too.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path)
    }
}

/// Checks at start that [`MemoryStore::dump_jsonl`] will be able to write `path`: its
/// directory exists and is writable (by creating and removing the temporary file), and `path`
/// is not a directory. So an unwritable path is refused before any event is acknowledged.
pub fn check_dump_path(path: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::Dump {
        path: path.display().to_string(),
        source,
    };
    if path.file_name().is_none() || path.is_dir() {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "expected a file path, found a directory",
        )));
    }
    let tmp = dump_tmp_path(path);
    create_private(&tmp).map_err(err)?;
    std::fs::remove_file(&tmp).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Status;
    use chrono::Utc;

    fn ev(id: &str) -> TraceEvent {
        TraceEvent {
            trace_id: id.into(),
            timestamp: Utc::now(),
            service: "s".into(),
            model: "m".into(),
            latency_ms: 1.0,
            prompt_tokens: 1,
            completion_tokens: 1,
            cost_usd: 0.0,
            status: Status::Ok,
            attributes: None,
        }
    }

    #[test]
    fn duplicates_are_skipped_within_and_across_batches() {
        let s = MemoryStore::new(10, Duration::from_secs(60));
        let o = s.insert(vec![ev("a"), ev("b"), ev("a")]).unwrap();
        assert_eq!(
            o,
            InsertOutcome {
                inserted: 2,
                duplicates: 1
            }
        );
        let o = s.insert(vec![ev("b"), ev("c")]).unwrap();
        assert_eq!(
            o,
            InsertOutcome {
                inserted: 1,
                duplicates: 1
            }
        );
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn a_full_store_refuses_the_whole_batch() {
        let s = MemoryStore::new(2, Duration::from_secs(60));
        s.insert(vec![ev("a")]).unwrap();
        assert!(matches!(
            s.insert(vec![ev("b"), ev("c")]),
            Err(StoreError::Full { max_events: 2, .. })
        ));
        assert_eq!(s.len(), 1);
        // A batch of only duplicates still fits.
        s.insert(vec![ev("a")]).unwrap();
    }

    /// Issue 24, bug 2: an 8 KiB attribute of small numbers costs about its JSON size (not
    /// 130 KB of parsed values), and the store is bounded in bytes: it refuses a batch that
    /// would pass the bound and then reports itself full (readiness fails).
    #[test]
    fn issue_24_the_store_is_bounded_in_bytes_and_attributes_are_compact() {
        let numbers = vec!["1"; 4000].join(",");
        let body = format!(
            r#"{{"events":[{{"trace_id":"big","timestamp":"{}","service":"s","model":"m",
                "latency_ms":1,"prompt_tokens":1,"completion_tokens":1,"cost_usd":0,
                "status":"ok","attributes":{{"a":[{numbers}]}}}}]}}"#,
            chrono::Utc::now().to_rfc3339()
        );
        let big = crate::event::parse_batch(body.as_bytes())
            .unwrap()
            .remove(0);
        let cost = event_bytes(&big);
        assert!(
            (8_000..10 * 1024).contains(&cost),
            "an event with 8 KiB of attributes costs {cost} bytes"
        );
        let s = MemoryStore::new(1_000_000, Duration::from_secs(60)).with_max_bytes(100 * cost);
        let mut stored = 0;
        for i in 0..200 {
            let mut e = big.clone();
            e.trace_id = format!("big{i:03}"); // same length as "big"'s replacements
            match s.insert(vec![e]) {
                Ok(o) => stored += o.inserted,
                Err(StoreError::Full { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!((90..=100).contains(&stored), "stored {stored}");
        assert!(s.bytes() <= 100 * cost);
        assert!(s.is_full(), "a store that refused a batch is full");
        assert!(!MemoryStore::new(10, Duration::from_secs(60)).is_full());
    }

    /// Issue 24: a stats scan works on a snapshot of the segments, so ingest does not wait
    /// for it (it held the store's lock for the whole scan).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn issue_24_ingest_does_not_wait_for_a_stats_scan() {
        let s = MemoryStore::new(1_000_000, Duration::from_secs(600));
        for chunk in 0..300 {
            let batch = (0..1000).map(|i| ev(&format!("s{chunk}-{i}"))).collect();
            s.insert(batch).unwrap();
        }
        let q =
            StatsQuery::parse(&[("group_by".into(), "model".into())], chrono::Utc::now()).unwrap();
        let scan = {
            let s = s.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let stats = s.stats(&q).await;
                (start.elapsed(), stats.total.count)
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let start = Instant::now();
        s.insert(vec![ev("during")]).unwrap();
        let insert = start.elapsed();
        let (scan, counted) = scan.await.unwrap();
        assert!(counted >= 300_000);
        assert!(
            insert * 4 < scan,
            "an insert during a {scan:?} scan took {insert:?}"
        );
        assert_eq!(s.len(), 300_001);
    }

    #[test]
    fn events_span_segments() {
        let s = MemoryStore::new(3 * SEGMENT, Duration::from_secs(60));
        let batches = 2 * SEGMENT / 1000 + 1;
        for b in 0..batches {
            s.insert(
                (b * 1000..(b + 1) * 1000)
                    .map(|i| ev(&i.to_string()))
                    .collect(),
            )
            .unwrap();
        }
        assert_eq!(s.len(), batches * 1000);
        assert_eq!(s.lock().segments.len(), 3);
        let held = s.lock().iter().count();
        assert_eq!(held, s.len());
    }

    #[test]
    fn expired_events_are_dropped_and_their_ids_freed() {
        let s = MemoryStore::new(10, Duration::ZERO);
        s.insert(vec![ev("a")]).unwrap();
        let o = s.insert(vec![ev("a")]).unwrap();
        assert_eq!(o.inserted, 1);
        // And expired again as soon as it is looked at.
        assert_eq!(s.len(), 0);
    }

    #[tokio::test]
    async fn stats_do_not_count_events_past_retention() {
        let s = MemoryStore::new(10, Duration::ZERO);
        s.insert(vec![ev("a"), ev("b")]).unwrap();
        let q = StatsQuery::parse(&[], Utc::now() + chrono::Duration::seconds(1)).unwrap();
        // No write happened since: the read itself expires them.
        assert_eq!(s.stats(&q).await.total.count, 0);
        assert_eq!(s.len(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn the_dump_is_private_and_its_path_is_checked_up_front() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("wl-dump-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        check_dump_path(&path).unwrap();
        assert!(
            !dir.join("events.jsonl.tmp").exists(),
            "the probe file is removed"
        );
        let s = MemoryStore::new(10, Duration::from_secs(60));
        s.insert(vec![ev("a")]).unwrap();
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(s.dump_jsonl(&path).unwrap(), 1);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(check_dump_path(&dir).is_err(), "a directory is refused");
        assert!(check_dump_path(&dir.join("missing/events.jsonl")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
