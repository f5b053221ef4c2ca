//! The open connections of one listener, and which of them to close ("shed") so idle sockets
//! cannot keep probes, scrapes or clients out. Only a connection that made no progress for
//! [`SHED_AFTER`] may be shed ("stale": opened that long ago without finishing its first
//! request head, or kept alive with nothing written to it for that long), so neither a burst
//! of new connections about to send their heads nor a response still going out is cut:
//!
//! 1. a new connection to a full listener sheds the oldest stale connection that has not
//!    finished its first request head (no request of it has reached authentication), else
//!    the longest idle stale kept-alive one, else waits for a free slot;
//! 2. a periodic sweep sheds the oldest stale unfinished connections beyond the listener's
//!    `max_unfinished_heads`, full or not;
//! 3. a connection in the middle of a request is never shed.
//!
//! [`crate::timed_io::TimedIo`] reports each connection's phase through its [`Slot`]; a shed
//! connection's reads fail from then on, so no request starts on it after it was chosen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long a connection must have made no progress before it may be shed: a client sends
/// its request head, and takes a response, well within it.
pub const SHED_AFTER: Duration = Duration::from_secs(1);

/// Has not finished its first request head.
const UNFINISHED: u8 = 0;
/// Receiving or serving a request (after the first head).
const BUSY: u8 = 1;
/// Kept alive, between a response and the next request.
const IDLE: u8 = 2;
/// Chosen to be closed.
const SHED: u8 = 3;

/// What a shed connection was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// It had not finished its first request head.
    Unfinished,
    /// It was kept alive, idle between requests.
    Idle,
}

impl Shed {
    /// The metrics label: `unfinished` or `idle`.
    pub fn as_str(self) -> &'static str {
        match self {
            Shed::Unfinished => "unfinished",
            Shed::Idle => "idle",
        }
    }
}

/// One connection's phase, shared between its I/O and the listener's [`Connections`].
#[derive(Debug)]
pub struct Slot {
    phase: AtomicU8,
    /// Nanoseconds from the table's epoch to the connection's start (while unfinished) or to
    /// its last write (afterwards).
    since: AtomicU64,
    epoch: Instant,
    shed: Notify,
}

impl Slot {
    fn new(epoch: Instant) -> Self {
        let slot = Slot {
            phase: AtomicU8::new(UNFINISHED),
            since: AtomicU64::new(0),
            epoch,
            shed: Notify::new(),
        };
        slot.stamp();
        slot
    }

    /// A slot no table can shed (connections accepted while draining).
    pub fn detached() -> Arc<Self> {
        Arc::new(Slot::new(Instant::now()))
    }

    fn stamp(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.since.store(nanos, Ordering::Release);
    }

    fn advance(&self, from: u8, to: u8) -> bool {
        self.phase
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The first request head is complete; `false` if the connection was shed first.
    pub fn head_finished(&self) -> bool {
        self.advance(UNFINISHED, BUSY) || self.phase.load(Ordering::Acquire) == BUSY
    }

    /// A kept-alive connection received the next request's first byte; `false` if it was
    /// shed first.
    pub fn request_started(&self) -> bool {
        self.advance(IDLE, BUSY) || self.phase.load(Ordering::Acquire) == BUSY
    }

    /// Bytes of a response went out: the connection counts as idle until the next request,
    /// and as stale only a [`SHED_AFTER`] after its last write.
    pub fn response_sent(&self) {
        match self.phase.load(Ordering::Acquire) {
            BUSY => {
                self.stamp();
                self.advance(BUSY, IDLE);
            }
            IDLE => self.stamp(),
            _ => {}
        }
    }

    /// Whether the connection was chosen to be closed.
    pub fn is_shed(&self) -> bool {
        self.phase.load(Ordering::Acquire) == SHED
    }

    /// Completes once the connection is chosen to be closed.
    pub async fn shed(&self) {
        self.shed.notified().await;
    }
}

/// The open connections of one listener (see the module documentation).
#[derive(Debug)]
pub struct Connections {
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
    epoch: Instant,
    max_unfinished: usize,
    shed_after: Duration,
}

/// A connection's place in [`Connections`], given up when dropped.
#[derive(Debug)]
pub struct Registration {
    table: Arc<Connections>,
    id: u64,
    /// The connection's phase, for its [`crate::timed_io::TimedIo`].
    pub slot: Arc<Slot>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.table.lock().remove(&self.id);
    }
}

impl Connections {
    /// An empty table keeping at most `max_unfinished` (at least 1) stale connections that
    /// have not finished their first request head, a connection being stale after
    /// `shed_after` without progress ([`SHED_AFTER`] when serving).
    pub fn new(max_unfinished: usize, shed_after: Duration) -> Arc<Self> {
        Arc::new(Connections {
            slots: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
            max_unfinished: max_unfinished.max(1),
            shed_after,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        // A panic while holding the lock leaves the map consistent (every operation on it
        // is a single insert, remove or scan), so a poisoned lock is still usable.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a new connection.
    pub fn register(self: &Arc<Self>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::new(self.epoch));
        self.lock().insert(id, slot.clone());
        Registration {
            table: self.clone(),
            id,
            slot,
        }
    }

    /// Sheds one connection for a newcomer to a full listener: the oldest stale unfinished
    /// one, else the longest idle stale one. Returns what it was doing, if one was shed.
    pub fn make_room(&self) -> Option<Shed> {
        self.shed_one(true)
    }

    /// Sheds the oldest stale unfinished connections beyond `max_unfinished`; returns how
    /// many.
    pub fn sweep(&self) -> u64 {
        std::iter::from_fn(|| self.shed_one(false)).count() as u64
    }

    fn shed_one(&self, newcomer: bool) -> Option<Shed> {
        let slots = self.lock();
        let stale_since = u64::try_from(
            self.epoch
                .elapsed()
                .saturating_sub(self.shed_after)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX);
        // A phase may change between the scan and the choice; the scan is then repeated
        // (a connection only leaves the sheddable phases, so this ends).
        loop {
            let mut stale_unfinished = 0;
            let mut oldest_unfinished: Option<(u64, &Arc<Slot>)> = None;
            let mut oldest_idle: Option<(u64, &Arc<Slot>)> = None;
            for slot in slots.values() {
                let since = slot.since.load(Ordering::Acquire);
                if since > stale_since {
                    continue;
                }
                let pick = match slot.phase.load(Ordering::Acquire) {
                    UNFINISHED => {
                        stale_unfinished += 1;
                        &mut oldest_unfinished
                    }
                    IDLE => &mut oldest_idle,
                    _ => continue,
                };
                if pick.is_none_or(|(t, _)| since < t) {
                    *pick = Some((since, slot));
                }
            }
            let (slot, phase, shed) = match (oldest_unfinished, oldest_idle) {
                (Some((_, slot)), _) if newcomer || stale_unfinished > self.max_unfinished => {
                    (slot, UNFINISHED, Shed::Unfinished)
                }
                (_, Some((_, slot))) if newcomer => (slot, IDLE, Shed::Idle),
                _ => return None,
            };
            if slot.advance(phase, SHED) {
                slot.shed.notify_one();
                return Some(shed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_connections_are_shed_first_then_the_longest_idle() {
        let table = Connections::new(2, Duration::ZERO);
        let idle_old = table.register();
        let idle_new = table.register();
        let busy = table.register();
        for r in [&idle_old, &idle_new, &busy] {
            assert!(r.slot.head_finished());
        }
        idle_old.slot.response_sent();
        std::thread::sleep(Duration::from_millis(2));
        idle_new.slot.response_sent();
        let first = table.register();
        let second = table.register();
        // Two unfinished, at the cap: the sweep leaves them; a third is one too many.
        assert_eq!(table.sweep(), 0);
        let third = table.register();
        assert_eq!(table.sweep(), 1);
        assert!(first.slot.is_shed() && !second.slot.is_shed());
        // For a newcomer: the oldest unfinished ones, then the longest idle, then the other.
        assert_eq!(table.make_room(), Some(Shed::Unfinished));
        assert!(second.slot.is_shed() && !third.slot.is_shed());
        assert_eq!(table.make_room(), Some(Shed::Unfinished));
        assert_eq!(table.make_room(), Some(Shed::Idle));
        assert!(idle_old.slot.is_shed() && !idle_new.slot.is_shed());
        assert_eq!(table.make_room(), Some(Shed::Idle));
        assert!(idle_new.slot.is_shed());
        // Only a busy connection is left: it is never shed.
        drop((first, second, third, idle_old, idle_new));
        assert_eq!(table.make_room(), None);
        assert!(!busy.slot.is_shed());
        // A shed connection cannot start a request any more.
        let late = table.register();
        assert_eq!(table.make_room(), Some(Shed::Unfinished));
        assert!(!late.slot.head_finished());
    }

    #[test]
    fn connections_that_made_progress_lately_are_kept() {
        let table = Connections::new(1, Duration::from_secs(3600));
        let fresh: Vec<_> = (0..3).map(|_| table.register()).collect();
        let written = table.register();
        assert!(written.slot.head_finished());
        written.slot.response_sent();
        // A burst of new connections beyond the cap, and a response just written: kept.
        assert_eq!(table.sweep(), 0);
        assert_eq!(table.make_room(), None);
        assert!(fresh.iter().chain([&written]).all(|r| !r.slot.is_shed()));
    }
}
