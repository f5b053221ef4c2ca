//! The open connections of one listener, and which of them to close ("shed") when a new
//! one needs room, so idle sockets cannot keep probes, scrapes or clients out:
//!
//! 1. connections that have not finished their first request head (so no request of theirs
//!    has reached authentication), oldest first: always when more than the listener's
//!    `max_unfinished_heads` of them are open, and when the listener is full;
//! 2. when the listener is full and none of those is left, kept-alive connections idle
//!    between requests, the longest idle first, once nothing was written to them for
//!    [`SHED_IDLE_AFTER`] (so a response still going out is not cut);
//! 3. a connection in the middle of a request is never shed: a new one then waits for a
//!    free slot in the listen backlog.
//!
//! [`crate::timed_io::TimedIo`] reports each connection's phase through its [`Slot`]; a shed
//! connection's reads fail from then on, so no request starts on it after it was chosen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long nothing must have been written to a kept-alive connection before it may be shed:
/// its response started going out at its first write, and a healthy client takes it all
/// well within this.
pub const SHED_IDLE_AFTER: Duration = Duration::from_secs(1);

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

    /// Bytes of a response went out: once it is all out, the connection is idle until the
    /// next request.
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
    shed_idle_after: Duration,
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
    /// An empty table keeping at most `max_unfinished` (at least 1) connections that have
    /// not finished their first request head, and shedding a kept-alive connection only
    /// once nothing was written to it for `shed_idle_after` ([`SHED_IDLE_AFTER`] when
    /// serving).
    pub fn new(max_unfinished: usize, shed_idle_after: Duration) -> Arc<Self> {
        Arc::new(Connections {
            slots: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
            max_unfinished: max_unfinished.max(1),
            shed_idle_after,
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

    /// Makes room for a new connection: sheds the oldest unfinished connection if there
    /// are `max_unfinished` of them or the listener is `full`; otherwise, if it is `full`,
    /// the longest idle kept-alive one (idle long enough). Returns what the shed one was
    /// doing, if one was shed.
    pub fn make_room(&self, full: bool) -> Option<Shed> {
        let slots = self.lock();
        let idle_since = u64::try_from(
            self.epoch
                .elapsed()
                .saturating_sub(self.shed_idle_after)
                .as_nanos(),
        )
        .unwrap_or(u64::MAX);
        // A phase may change between the scan and the choice; the scan is then repeated
        // (a connection only leaves the sheddable phases, so this ends).
        loop {
            let mut unfinished = 0;
            let mut oldest_unfinished: Option<(u64, &Arc<Slot>)> = None;
            let mut oldest_idle: Option<(u64, &Arc<Slot>)> = None;
            for slot in slots.values() {
                let since = slot.since.load(Ordering::Acquire);
                let pick = match slot.phase.load(Ordering::Acquire) {
                    UNFINISHED => {
                        unfinished += 1;
                        &mut oldest_unfinished
                    }
                    IDLE if since <= idle_since => &mut oldest_idle,
                    _ => continue,
                };
                if pick.is_none_or(|(t, _)| since < t) {
                    *pick = Some((since, slot));
                }
            }
            let victim = match (oldest_unfinished, oldest_idle) {
                (Some((_, slot)), _) if full || unfinished >= self.max_unfinished => {
                    (slot, UNFINISHED, Shed::Unfinished)
                }
                (_, Some((_, slot))) if full => (slot, IDLE, Shed::Idle),
                _ => return None,
            };
            let (slot, phase, shed) = victim;
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
        std::thread::sleep(std::time::Duration::from_millis(2));
        idle_new.slot.response_sent();
        let first = table.register();
        let second = table.register();
        // Two unfinished: at the cap, so the oldest of them goes even with room left.
        assert_eq!(table.make_room(false), Some(Shed::Unfinished));
        assert!(first.slot.is_shed() && !second.slot.is_shed());
        // Below the cap and with room: nothing is shed.
        assert_eq!(table.make_room(false), None);
        // Full: the remaining unfinished one, then the longest idle, then the other idle.
        assert_eq!(table.make_room(true), Some(Shed::Unfinished));
        assert!(second.slot.is_shed());
        assert_eq!(table.make_room(true), Some(Shed::Idle));
        assert!(idle_old.slot.is_shed() && !idle_new.slot.is_shed());
        assert_eq!(table.make_room(true), Some(Shed::Idle));
        assert!(idle_new.slot.is_shed());
        // Only a busy connection is left: it is never shed.
        drop((first, second, idle_old, idle_new));
        assert_eq!(table.make_room(true), None);
        assert!(!busy.slot.is_shed());
        // An idle connection written to within the shedding delay is kept.
        let slow = Connections::new(2, Duration::from_secs(3600));
        let recent = slow.register();
        assert!(recent.slot.head_finished());
        recent.slot.response_sent();
        assert_eq!(slow.make_room(true), None);
        // A shed connection cannot start a request any more.
        let late = table.register();
        assert_eq!(table.make_room(true), Some(Shed::Unfinished));
        assert!(!late.slot.head_finished());
    }
}
