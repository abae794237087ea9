//! Handing Kafka partitions over between processes of one consumer group without duplicates.
//!
//! When a rebalance takes a partition away from this process, records of it may still be on
//! their way to ClickHouse: in the engine's queue, in the batch being collected, in the batch
//! being written. If the new owner read the partition's stored high-water mark before those
//! landed, it would store them a second time. So the consumer's revoke callback (which
//! librdkafka runs before this member rejoins the group, hence before anyone else is given the
//! partition) calls [`Handover::revoke`] and waits: the engine drops the partition's records
//! that are not written yet (they were not committed, so the new owner reads them again),
//! finishes the write in progress, makes the sink forget what it knew about the partition, and
//! only then lets the callback return. When the partition comes back later, the sink looks up
//! its high-water mark afresh.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long a revoke waits for the engine at most. Longer than one batch write with retries
/// should take, shorter than librdkafka's `max.poll.interval.ms` (300 s), after which the
/// group would evict this member anyway.
pub const REVOKE_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, Default)]
struct State {
    /// Partitions taken away and not assigned again.
    revoked: HashSet<String>,
    /// Revoked partitions the engine has not yet flushed out.
    pending: Vec<String>,
    /// Revokes requested, and revokes the engine has finished (both count up).
    requested: u64,
    finished: u64,
    /// The engine has stopped: nobody will finish a revoke any more.
    closed: bool,
}

#[derive(Debug, Default)]
pub struct Handover {
    state: Mutex<State>,
    changed: Condvar,
    /// Wakes the engine when a revoke is pending.
    pub requested: Notify,
}

/// A revoke the engine has to carry out: the partitions' source ids and its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoke {
    pub sources: Vec<String>,
    pub seq: u64,
}

impl Handover {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called from the rebalance callback: marks `sources` as no longer ours and blocks until
    /// the engine has stopped writing them (or it is closed, or `wait` passed). Returns false
    /// if it gave up waiting.
    pub fn revoke(&self, sources: Vec<String>, wait: Duration) -> bool {
        let mut state = self.lock();
        if state.closed || sources.is_empty() {
            return true;
        }
        state.revoked.extend(sources.iter().cloned());
        state.pending.extend(sources);
        state.requested += 1;
        let seq = state.requested;
        self.requested.notify_one();
        let deadline = Instant::now() + wait;
        while state.finished < seq && !state.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        true
    }

    /// Called from the rebalance callback: `sources` are ours (again).
    pub fn assign(&self, sources: &[String]) {
        let mut state = self.lock();
        for s in sources {
            state.revoked.remove(s);
        }
    }

    /// Whether records of `source` must no longer be written by this process.
    pub fn is_revoked(&self, source: &str) -> bool {
        let state = self.lock();
        !state.revoked.is_empty() && state.revoked.contains(source)
    }

    /// The revoke the engine has to carry out now, if any.
    pub fn take_pending(&self) -> Option<Revoke> {
        let mut state = self.lock();
        if state.finished >= state.requested {
            return None;
        }
        Some(Revoke {
            sources: std::mem::take(&mut state.pending),
            seq: state.requested,
        })
    }

    /// The engine has carried out every revoke up to `seq`.
    pub fn finish(&self, seq: u64) {
        let mut state = self.lock();
        state.finished = state.finished.max(seq);
        self.changed.notify_all();
    }

    /// The engine has stopped; revokes no longer wait.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_revoke_waits_for_the_engine() {
        let h = Arc::new(Handover::default());
        let engine = {
            let h = h.clone();
            std::thread::spawn(move || loop {
                if let Some(r) = h.take_pending() {
                    assert_eq!(r.sources, vec!["kafka:t:1".to_string()]);
                    // Nothing may be written for the partition from now on.
                    assert!(h.is_revoked("kafka:t:1"));
                    h.finish(r.seq);
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            })
        };
        assert!(h.revoke(vec!["kafka:t:1".into()], Duration::from_secs(10)));
        engine.join().unwrap();
        assert!(!h.is_revoked("kafka:t:0"));
        h.assign(&["kafka:t:1".into()]);
        assert!(!h.is_revoked("kafka:t:1"));
    }

    #[test]
    fn a_closed_or_silent_engine_does_not_block_forever() {
        let h = Handover::default();
        assert!(!h.revoke(vec!["kafka:t:0".into()], Duration::from_millis(20)));
        h.close();
        assert!(h.revoke(vec!["kafka:t:0".into()], Duration::from_secs(10)));
    }
}
