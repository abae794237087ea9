//! The queue between a source and the engine, bounded twice: in records (a channel) and in
//! bytes (a semaphore of byte permits), so that large records cannot fill memory where small
//! ones would only fill slots. A sender waits for both; the receiver gives the bytes back as
//! it takes records off. When the receiver is gone, waiting senders are released with an
//! error, as with a closed channel.

use std::sync::Arc;

use tokio::sync::{mpsc, Semaphore};

use crate::ingest::record::SourceRecord;

/// What one queued record is taken to weigh: its raw text, and the parsed document that is
/// held with it (a `serde_json::Value` takes about twice the text).
pub fn weight(record: &SourceRecord) -> usize {
    record.raw.len() * 3 + 64
}

/// A queue of at most `records` records and `bytes` bytes (by [`weight`]).
pub fn channel(records: usize, bytes: usize) -> (RecordSender, RecordReceiver) {
    let (tx, rx) = mpsc::channel(records);
    let budget = Arc::new(Semaphore::new(bytes));
    let max = u32::try_from(bytes).unwrap_or(u32::MAX);
    (
        RecordSender {
            tx,
            budget: budget.clone(),
            max,
        },
        RecordReceiver { rx, budget, max },
    )
}

/// A record's permits, clamped so that one record larger than the whole budget still passes
/// (alone).
fn permits(record: &SourceRecord, max: u32) -> u32 {
    u32::try_from(weight(record)).unwrap_or(u32::MAX).min(max)
}

#[derive(Debug, Clone)]
pub struct RecordSender {
    tx: mpsc::Sender<SourceRecord>,
    budget: Arc<Semaphore>,
    max: u32,
}

/// Room for one record, reserved: sending it cannot wait any more.
pub struct Reserved<'a> {
    slot: mpsc::Permit<'a, SourceRecord>,
    bytes: tokio::sync::SemaphorePermit<'a>,
}

impl Reserved<'_> {
    pub fn send(self, record: SourceRecord) {
        // The receiver gives the bytes back when it takes the record.
        self.bytes.forget();
        self.slot.send(record);
    }
}

impl RecordSender {
    /// Waits for room, then queues the record; gives it back if the receiver is gone.
    pub async fn send(&self, record: SourceRecord) -> Result<(), SourceRecord> {
        match self.reserve(&record).await {
            Some(room) => {
                room.send(record);
                Ok(())
            }
            None => Err(record),
        }
    }

    /// Waits until `record` fits (cancel-safe: nothing is taken until it returns); `None` when
    /// the receiver is gone.
    pub async fn reserve(&self, record: &SourceRecord) -> Option<Reserved<'_>> {
        self.reserve_weight(weight(record)).await
    }

    /// `reserve` for a record of this [`weight`].
    pub async fn reserve_weight(&self, weight: usize) -> Option<Reserved<'_>> {
        let permits = u32::try_from(weight).unwrap_or(u32::MAX).min(self.max);
        let bytes = self.budget.acquire_many(permits).await.ok()?;
        let slot = self.tx.reserve().await.ok()?;
        Some(Reserved { slot, bytes })
    }

    /// `send` for a thread outside the runtime (`spawn_blocking`), for many records at once, in
    /// order, entering the runtime once rather than once per record; stops at the first that
    /// cannot go (the receiver is gone) and returns how many went.
    pub fn blocking_send_all(&self, records: impl IntoIterator<Item = SourceRecord>) -> usize {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return 0;
        };
        handle.block_on(async {
            let mut sent = 0;
            for record in records {
                if self.send(record).await.is_err() {
                    break;
                }
                sent += 1;
            }
            sent
        })
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

#[derive(Debug)]
pub struct RecordReceiver {
    rx: mpsc::Receiver<SourceRecord>,
    budget: Arc<Semaphore>,
    max: u32,
}

impl RecordReceiver {
    /// Like `mpsc::Receiver::recv_many`; 0 once every sender is gone and nothing is left.
    pub async fn recv_many(&mut self, buffer: &mut Vec<SourceRecord>, limit: usize) -> usize {
        let before = buffer.len();
        let n = self.rx.recv_many(buffer, limit).await;
        self.release(&buffer[before..]);
        n
    }

    pub fn try_recv(&mut self) -> Option<SourceRecord> {
        let record = self.rx.try_recv().ok()?;
        self.release(std::slice::from_ref(&record));
        Some(record)
    }

    fn release(&self, taken: &[SourceRecord]) {
        let bytes: usize = taken.iter().map(|r| permits(r, self.max) as usize).sum();
        self.budget.add_permits(bytes);
    }
}

impl Drop for RecordReceiver {
    fn drop(&mut self) {
        // Senders waiting for bytes would otherwise wait for ever.
        self.budget.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bytes: usize) -> SourceRecord {
        SourceRecord {
            source_id: Arc::from("t"),
            offset: 0,
            payload: Ok(serde_json::Value::Null.into()),
            raw: "x".repeat(bytes),
        }
    }

    #[tokio::test]
    async fn bytes_bound_the_queue_as_well_as_records() {
        let (tx, mut rx) = channel(100, 10_000);
        // Three records of ~3 KB fit; the fourth waits for bytes although slots are free.
        for _ in 0..3 {
            tx.send(record(1000)).await.unwrap();
        }
        let fourth =
            tokio::time::timeout(std::time::Duration::from_millis(100), tx.send(record(1000)))
                .await;
        assert!(fourth.is_err(), "a fourth record went past the byte budget");
        // Taking records off gives their bytes back.
        let mut got = Vec::new();
        assert_eq!(rx.recv_many(&mut got, 10).await, 3);
        tx.send(record(1000)).await.unwrap();
        // A record larger than the whole budget passes alone.
        assert!(rx.try_recv().is_some());
        tx.send(record(50_000)).await.unwrap();
        assert!(rx.try_recv().is_some());
    }

    #[tokio::test]
    async fn a_dropped_receiver_releases_waiting_senders() {
        let (tx, rx) = channel(100, 1000);
        tx.send(record(300)).await.unwrap();
        let waiting = tokio::spawn(async move { tx.send(record(300)).await.is_err() });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        drop(rx);
        assert!(waiting.await.unwrap());
    }
}
