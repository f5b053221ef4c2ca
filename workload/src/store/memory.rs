//! The in-memory store: bounded (a full store refuses a batch with 503 rather than evicting
//! acknowledged events) and with a retention window by arrival time. It is lost when the
//! process exits, except through [`MemoryStore::dump_jsonl`], which the server runs after
//! draining when `--dump-on-exit` is given.

use std::collections::{HashSet, VecDeque};
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::event::TraceEvent;
use crate::stats::{self, Stats, StatsQuery};

use super::{InsertOutcome, StoreError};

/// Events per segment. Events live in fixed-size segments so that growing the store never
/// moves (copies) the events already held, which would stall every request for a moment.
const SEGMENT: usize = 16 * 1024;

#[derive(Debug, Default)]
struct Inner {
    /// Segments in arrival order; each is sorted by arrival time.
    segments: VecDeque<Vec<(Instant, TraceEvent)>>,
    len: usize,
    ids: HashSet<String>,
}

impl Inner {
    fn push(&mut self, arrived: Instant, event: TraceEvent) {
        if self.segments.back().is_none_or(|s| s.len() == SEGMENT) {
            self.segments.push_back(Vec::with_capacity(SEGMENT));
        }
        if let Some(segment) = self.segments.back_mut() {
            segment.push((arrived, event));
            self.len += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = &TraceEvent> {
        self.segments.iter().flatten().map(|(_, e)| e)
    }
}

/// In-memory event store; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    capacity: usize,
    retention: Duration,
}

impl MemoryStore {
    /// A store holding at most `capacity` events, each for `retention` after arrival.
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
            retention,
        }
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
                Some(front) if whole => std::mem::take(front),
                Some(front) => front.drain(..expired).collect(),
                None => break,
            };
            if whole {
                inner.segments.pop_front();
            }
            inner.len -= gone.len();
            for (_, e) in gone {
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
        if inner.len + fresh.len() > self.capacity {
            return Err(StoreError::Full {
                capacity: self.capacity,
            });
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

    /// Aggregates over the query's window (on a blocking thread: a full scan).
    pub async fn stats(&self, query: &StatsQuery) -> Stats {
        let this = self.clone();
        let q = query.clone();
        let work = move || {
            let inner = this.lock();
            stats::compute(&q, inner.iter())
        };
        match tokio::task::spawn_blocking(work).await {
            Ok(s) => s,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes every held event to `path` as JSON lines (through a temporary file, renamed
    /// into place, then synced), returning the count.
    pub fn dump_jsonl(&self, path: &Path) -> Result<usize, StoreError> {
        let err = |source| StoreError::Dump {
            path: path.display().to_string(),
            source,
        };
        let tmp = path.with_extension("tmp");
        let inner = self.lock();
        let file = std::fs::File::create(&tmp).map_err(err)?;
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
            Err(StoreError::Full { capacity: 2 })
        ));
        assert_eq!(s.len(), 1);
        // A batch of only duplicates still fits.
        s.insert(vec![ev("a")]).unwrap();
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
        assert_eq!(s.len(), 1);
    }
}
