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

#[derive(Debug, Default)]
struct Inner {
    events: VecDeque<(Instant, TraceEvent)>,
    ids: HashSet<String>,
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
        MemoryStore {
            inner: Arc::default(),
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
        while let Some((arrived, _)) = inner.events.front() {
            if now.duration_since(*arrived) < self.retention {
                break;
            }
            if let Some((_, e)) = inner.events.pop_front() {
                inner.ids.remove(&e.trace_id);
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
        if inner.events.len() + fresh.len() > self.capacity {
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
            inner.events.push_back((now, e));
        }
        Ok(outcome)
    }

    /// Aggregates over the query's window (on a blocking thread: a full scan).
    pub async fn stats(&self, query: &StatsQuery) -> Stats {
        let this = self.clone();
        let q = query.clone();
        let work = move || {
            let inner = this.lock();
            stats::compute(&q, inner.events.iter().map(|(_, e)| e))
        };
        match tokio::task::spawn_blocking(work).await {
            Ok(s) => s,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.lock().events.len()
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
        for (_, e) in &inner.events {
            serde_json::to_writer(&mut w, e).map_err(|e| err(e.into()))?;
            w.write_all(b"\n").map_err(err)?;
        }
        let file = w.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(inner.events.len())
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
    fn expired_events_are_dropped_and_their_ids_freed() {
        let s = MemoryStore::new(10, Duration::ZERO);
        s.insert(vec![ev("a")]).unwrap();
        let o = s.insert(vec![ev("a")]).unwrap();
        assert_eq!(o.inserted, 1);
        assert_eq!(s.len(), 1);
    }
}
