//! The live demo's Kafka: librdkafka's mock cluster, a real Kafka-protocol broker inside this
//! process listening on loopback (so `kcat -b <brokers>` can watch the topic too). The mock
//! is a raw librdkafka handle that must stay on one thread, so a thread of its own creates it,
//! creates the topic, reports the bootstrap address and keeps the cluster alive until stopped.
//!
//! The mock keeps about 5 MiB of messages per partition and silently drops the oldest beyond
//! that; a pipeline that keeps up never notices, one paused for many minutes loses what was
//! dropped, as it would on a real broker with short retention.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::mocking::MockCluster;

use super::DemoError;

/// How long the mock broker may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(10);

pub struct MockKafka {
    bootstrap_servers: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockKafka {
    /// Starts a one-broker cluster with `topic` of `partitions` partitions.
    pub fn start(topic: &str, partitions: i32) -> Result<Self, DemoError> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let topic = topic.to_string();
        let thread = std::thread::Builder::new()
            .name("demo-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(1) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot start the mock broker: {e}")));
                        return;
                    }
                };
                if let Err(e) = cluster.create_topic(&topic, partitions, 1) {
                    let _ = ready_tx.send(Err(format!("cannot create topic `{topic}`: {e}")));
                    return;
                }
                let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
                // Either a stop request or the owner gone: both mean the end.
                let _ = stop_rx.recv();
                drop(cluster);
            })
            .map_err(|e| DemoError::Kafka(format!("cannot start the broker thread: {e}")))?;
        let bootstrap_servers = match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(servers)) => servers,
            Ok(Err(reason)) => return Err(DemoError::Kafka(reason)),
            Err(_) => {
                return Err(DemoError::Kafka(format!(
                    "the mock broker did not start within {START_TIMEOUT:?}"
                )))
            }
        };
        Ok(Self {
            bootstrap_servers,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `host:port` list for `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Stops the broker; blocks until it is gone (milliseconds).
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MockKafka {
    fn drop(&mut self) {
        self.shut();
    }
}
