//! Kafka topics as a source, through librdkafka (`rdkafka`).
//!
//! A consumer in the pipeline's group reads the topics; each message becomes a record whose
//! position is its partition (`kafka:<topic>:<partition>`) and offset. Offsets are never
//! committed automatically: the engine sends back what the sink has stored, and only then are
//! those offsets committed to the group. After a crash the group resumes from the last commit,
//! and the sink's bookkeeping skips what was stored after it (exactly-once), or stores it again
//! (at-least-once).

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ingest::handover::{Handover, REVOKE_WAIT};
use crate::ingest::pipeline::{KafkaSource, RecordFormat, StartFrom};
use crate::ingest::queue::RecordSender;
use crate::ingest::record::{Ack, Payload, SourceRecord};
use crate::ingest::sources::{Warning, WarningReporter};

#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error("cannot create the Kafka consumer for {brokers}: {reason}")]
    Create { brokers: String, reason: String },
    #[error("cannot subscribe to {topics}: {reason}")]
    Subscribe { topics: String, reason: String },
    #[error("Kafka consumer error: {0}")]
    Consume(String),
    #[error(
        "{0}. Its records were not stored: the table holds rows at these positions from before, \
         which exactly-once would take for them. To read the new topic into the same table, \
         raise the source's `epoch` (positions become `kafka:<topic>:<partition>@<epoch>`) and \
         give it a new `group`"
    )]
    OffsetsWentBack(String),
}

/// Settings the source needs beyond the pipeline's own.
#[derive(Debug, Clone)]
pub struct KafkaContext {
    pub pipeline: String,
    /// Used when the pipeline names no brokers (`kafka.brokers` of the main config).
    pub default_brokers: Vec<String>,
    pub client_id: String,
    /// `kafka.properties` of the main config; the pipeline's own properties override them.
    pub default_properties: std::collections::BTreeMap<String, String>,
    /// `exactly_once` delivery: offsets that go back stop the pipeline rather than being
    /// reported and stored again.
    pub exactly_once: bool,
    /// Filled with every assigned partition that has a committed offset (see the sink's
    /// `Unexplained`).
    pub known_positions: crate::ingest::sinks::clickhouse::KnownPositions,
}

/// A partition's position name: `kafka:<topic>:<partition>`, with `@<epoch>` after a
/// recreated topic's epoch was raised.
pub fn source_id(topic: &str, partition: i32, epoch: u32) -> String {
    if epoch == 0 {
        format!("kafka:{topic}:{partition}")
    } else {
        format!("kafka:{topic}:{partition}@{epoch}")
    }
}

/// `kafka:<topic>:<partition>[@epoch]` back into topic and partition (topics may contain ':').
fn parse_source_id(id: &str) -> Option<(&str, i32)> {
    let rest = id.strip_prefix("kafka:")?;
    let (topic, partition) = rest.rsplit_once(':')?;
    let partition = partition.split_once('@').map_or(partition, |(p, _)| p);
    Some((topic, partition.parse().ok()?))
}

fn consumer_config(spec: &KafkaSource, ctx: &KafkaContext) -> ClientConfig {
    let brokers = if spec.brokers.is_empty() {
        ctx.default_brokers.join(",")
    } else {
        spec.brokers.join(",")
    };
    let group = spec
        .group
        .clone()
        .unwrap_or_else(|| format!("aurora-{}", ctx.pipeline));
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &brokers)
        .set("group.id", &group)
        .set("client.id", &ctx.client_id)
        // Positions move only when the sink has stored the records.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // librdkafka prefetches up to 64 MiB per consumer by default; the engine's own queue
        // already keeps the sink busy, so a smaller prefetch saves memory, not speed.
        .set("queued.max.messages.kbytes", "8192")
        // With the prefetch queue full, librdkafka waits this long before fetching again
        // (default 1 s): consumption then stalls for a second whenever the engine catches up.
        .set("fetch.queue.backoff.ms", "20")
        // The prefetch limit above counts payload bytes, but each message costs librdkafka a
        // few hundred bytes besides: tiny messages (and compressed ones, since a fetch is
        // sized before decompression) made a backlog's catch-up hold 300 MB. Count and fetch
        // size bound it too (librdkafka's defaults: 100,000 messages per partition, 1 MiB
        // compressed per partition and fetch, 50 MiB per fetch). 1 MiB per fetch still moves
        // 50 MiB/s at a 20 ms round trip.
        .set("queued.min.messages", "10000")
        .set("max.partition.fetch.bytes", "131072")
        .set("fetch.max.bytes", "1048576")
        .set(
            "auto.offset.reset",
            match spec.start {
                StartFrom::Earliest => "earliest",
                StartFrom::Latest => "latest",
            },
        );
    for (k, v) in ctx.default_properties.iter().chain(spec.properties.iter()) {
        config.set(k, v);
    }
    config
}

/// The topics a pipeline reads.
pub fn topics(spec: &KafkaSource) -> Vec<String> {
    spec.topic
        .iter()
        .chain(spec.topics.iter())
        .cloned()
        .collect()
}

/// A message's payload as a record: JSON objects as they are; CSV/TSV lines as objects with
/// fields `c1`, `c2`, ... (Kafka messages carry no header).
pub fn parse_payload(format: RecordFormat, payload: &[u8]) -> Result<serde_json::Value, String> {
    match format {
        RecordFormat::Json => serde_json::from_slice(payload)
            .map_err(|e| format!("the message is not valid JSON: {e}")),
        RecordFormat::Csv | RecordFormat::Tsv => {
            let delimiter = if format == RecordFormat::Csv {
                b','
            } else {
                b'\t'
            };
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .delimiter(delimiter)
                .from_reader(payload);
            let mut record = csv::StringRecord::new();
            match reader.read_record(&mut record) {
                Ok(true) => {
                    let mut map = serde_json::Map::new();
                    for (i, field) in record.iter().enumerate() {
                        let value = if field.is_empty() {
                            serde_json::Value::Null
                        } else {
                            serde_json::Value::String(field.to_string())
                        };
                        map.insert(format!("c{}", i + 1), value);
                    }
                    Ok(serde_json::Value::Object(map))
                }
                Ok(false) => Err("the message is empty".into()),
                Err(e) => Err(format!("the message is not a valid CSV line: {e}")),
            }
        }
    }
}

/// Consumes until `cancel` fires, sending records on `tx` and committing what arrives on
/// `acks`. After `cancel` it keeps committing acks until the engine closes that channel, so
/// the last stored batch is committed before the consumer leaves the group.
/// How often the source measures its lag.
const LAG_INTERVAL: Duration = Duration::from_secs(2);

/// Per-partition lag (`kafka:<topic>:<partition>` → messages not yet consumed), reported every
/// `LAG_INTERVAL` to whoever shows the pipeline's status.
pub type LagReporter = Box<dyn Fn(std::collections::BTreeMap<String, u64>) + Send + Sync>;

/// Reports the consumer's health: `Some(error)` while librdkafka reports errors (brokers
/// down, unknown topic), `None` once messages flow again.
pub use super::HealthReporter;

/// Messages between the consumer's next position and the partition's end.
pub fn lag(high_watermark: i64, next_position: Option<i64>, low_watermark: i64) -> u64 {
    // No position yet: everything from the start of the retained log is still to read.
    let next = next_position.unwrap_or(low_watermark).max(low_watermark);
    u64::try_from(high_watermark - next).unwrap_or(0)
}

fn measure_lag(consumer: &StreamConsumer<GroupContext>) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(assigned) = consumer.assignment() else {
        return out;
    };
    let positions: std::collections::HashMap<(String, i32), i64> = consumer
        .position()
        .map(|p| {
            p.elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for elem in assigned.elements() {
        let next = positions
            .get(&(elem.topic().to_string(), elem.partition()))
            .copied();
        // librdkafka's cached watermarks, updated by every fetch response: no broker round
        // trip, so measuring never stalls consumption.
        if let Some((low, high)) = cached_watermarks(consumer, elem.topic(), elem.partition()) {
            out.insert(
                source_id(elem.topic(), elem.partition(), consumer.context().epoch),
                lag(high, next, low),
            );
        }
    }
    out
}

/// Partitions whose committed offset (not consumed from yet) lies beyond their end, as
/// librdkafka last saw it: the topic was recreated, or the partition truncated. Each is
/// reported once.
fn committed_beyond_end(consumer: &StreamConsumer<GroupContext>) -> Vec<(String, String)> {
    let mut committed = consumer
        .context()
        .committed
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut problems = Vec::new();
    committed.retain(|source, offset| {
        let Some((topic, partition)) = parse_source_id(source) else {
            return true;
        };
        match cached_watermarks(consumer, topic, partition) {
            Some((_, high)) if *offset > high => {
                problems.push((
                    source.clone(),
                    format!(
                        "{source}: the group's committed offset {offset} is beyond the partition's end {high}; \
                         the topic was probably deleted and recreated"
                    ),
                ));
                false
            }
            _ => true,
        }
    });
    problems
}

/// The low and high watermarks librdkafka last saw for a partition (`rd_kafka_get_watermark_
/// offsets`, which rdkafka does not wrap); `None` before the first fetch response.
fn cached_watermarks<C: ConsumerContext>(
    consumer: &StreamConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<(i64, i64)> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid for the consumer's lifetime, the topic is a valid
    // NUL-terminated string for the call's duration, and librdkafka only writes the two i64s.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some((low.max(0), high))
}

/// The consumer's callbacks: partitions taken away are handed over through [`Handover`], so
/// that another process of the group only gets them once this one stopped writing them.
struct GroupContext {
    pipeline: String,
    handover: Arc<Handover>,
    epoch: u32,
    known_positions: crate::ingest::sinks::clickhouse::KnownPositions,
    /// Each newly assigned partition's committed offset, until its first message was checked
    /// against it.
    committed: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl GroupContext {
    fn partition_ids(&self, partitions: &TopicPartitionList) -> Vec<String> {
        partitions
            .elements()
            .iter()
            .map(|e| source_id(e.topic(), e.partition(), self.epoch))
            .collect()
    }

    /// The committed offset of a partition whose first message since its assignment this
    /// is; `None` for later messages, or when the group had no offset for it.
    fn take_committed(&self, source: &str) -> Option<i64> {
        self.committed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(source)
    }
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(partitions) = rebalance else {
            return;
        };
        let sources = self.partition_ids(partitions);
        tracing::info!(pipeline = %self.pipeline, partitions = ?sources, "partitions revoked; handing them over");
        // librdkafka runs this inside `recv()`, on the source's task. Waiting must not stall
        // the runtime thread that may also run the engine: `block_in_place` moves the other
        // tasks away first. A single-threaded runtime cannot wait at all.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let handed_over = if multi_thread {
            tokio::task::block_in_place(|| self.handover.revoke(sources, REVOKE_WAIT))
        } else {
            self.handover.revoke(sources, Duration::ZERO)
        };
        if !handed_over {
            tracing::warn!(pipeline = %self.pipeline, "a write of revoked partitions did not finish in time; the new owner may store some of its records again");
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            let sources = self.partition_ids(partitions);
            tracing::info!(pipeline = %self.pipeline, partitions = ?sources, "partitions assigned");
            self.handover.assign(&sources);
            // The group's offsets, to check that the first message of each partition does
            // not come from before them (a deleted and recreated topic starts again at 0).
            match consumer.committed_offsets((*partitions).clone(), COMMITTED_TIMEOUT) {
                Ok(committed) => {
                    let mut map = self.committed.lock().unwrap_or_else(|p| p.into_inner());
                    let mut known = self
                        .known_positions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    for e in committed.elements() {
                        if let Offset::Offset(o) = e.offset() {
                            let id = source_id(e.topic(), e.partition(), self.epoch);
                            known.insert(id.clone());
                            map.insert(id, o);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(pipeline = %self.pipeline, "cannot read the group's committed offsets, so offsets going back (a recreated topic) cannot be detected this time: {e}");
                }
            }
        }
    }
}

/// How long reading the group's committed offsets on an assignment may take.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);

#[allow(clippy::too_many_arguments)]
pub async fn run(
    spec: &KafkaSource,
    ctx: &KafkaContext,
    tx: RecordSender,
    mut acks: mpsc::UnboundedReceiver<Vec<Ack>>,
    cancel: CancellationToken,
    report_lag: LagReporter,
    report_health: HealthReporter,
    handover: Arc<Handover>,
    warn: WarningReporter,
) -> Result<(), KafkaSourceError> {
    let config = consumer_config(spec, ctx);
    let brokers = config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_string();
    let context = GroupContext {
        pipeline: ctx.pipeline.clone(),
        handover: handover.clone(),
        epoch: spec.epoch,
        known_positions: ctx.known_positions.clone(),
        committed: Default::default(),
    };
    let consumer: StreamConsumer<GroupContext> =
        config
            .create_with_context(context)
            .map_err(|e| KafkaSourceError::Create {
                brokers: brokers.clone(),
                reason: e.to_string(),
            })?;
    let topic_names = topics(spec);
    let refs: Vec<&str> = topic_names.iter().map(String::as_str).collect();
    consumer
        .subscribe(&refs)
        .map_err(|e| KafkaSourceError::Subscribe {
            topics: topic_names.join(", "),
            reason: e.to_string(),
        })?;
    let commit = |batch: &[Ack], mode: CommitMode| {
        let mut tpl = TopicPartitionList::new();
        for ack in batch {
            // A partition now owned by another process: its offsets are the new owner's to
            // commit (a late commit from here could move them back).
            if handover.is_revoked(&ack.source_id) {
                continue;
            }
            if let Some((topic, partition)) = parse_source_id(&ack.source_id) {
                // Kafka's committed offset is the next one to read.
                let next = i64::try_from(ack.offset)
                    .unwrap_or(i64::MAX)
                    .saturating_add(1);
                let _ = tpl.add_partition_offset(topic, partition, Offset::Offset(next));
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = consumer.commit(&tpl, mode) {
                tracing::warn!(pipeline = %ctx.pipeline, "committing Kafka offsets failed (they will be committed with the next batch): {e}");
            }
        }
    };
    let mut consuming = true;
    let mut unhealthy = false;
    let mut ids = SourceIds::new();
    // A message as a record, checked against its partition's committed offset when it is
    // the partition's first since being assigned.
    let mut convert = |message: &BorrowedMessage<'_>| -> Result<SourceRecord, KafkaSourceError> {
        let record = to_record(message, spec.format, spec.epoch, &mut ids);
        if let Some(committed) = consumer.context().take_committed(&record.source_id) {
            if let Some(problem) = went_back(&record.source_id, record.offset, committed) {
                if ctx.exactly_once {
                    handover.close();
                    return Err(KafkaSourceError::OffsetsWentBack(problem));
                }
                warn(Warning::new(
                    "offsets_went_back",
                    format!("{problem}; at_least_once: its records are stored as they come"),
                ));
            }
        }
        Ok(record)
    };
    let mut lag_tick = tokio::time::interval(LAG_INTERVAL);
    loop {
        tokio::select! {
            biased;
            _ = lag_tick.tick(), if consuming => {
                // A broker that does not reset an offset beyond a partition's end serves
                // nothing at all: the committed offset against the end says why.
                for (source, problem) in committed_beyond_end(&consumer) {
                    if ctx.exactly_once {
                        handover.close();
                        return Err(KafkaSourceError::OffsetsWentBack(problem));
                    }
                    // What `auto.offset.reset` does on brokers that report it.
                    let to = match spec.start {
                        StartFrom::Earliest => Offset::Beginning,
                        StartFrom::Latest => Offset::End,
                    };
                    if let Some((topic, partition)) = parse_source_id(&source) {
                        if let Err(e) = consumer.seek(topic, partition, to, Duration::from_secs(10)) {
                            tracing::warn!(pipeline = %ctx.pipeline, "cannot move {source} to its {to:?}: {e}");
                        }
                    }
                    warn(Warning::new(
                        "offsets_went_back",
                        format!(
                            "{problem}; at_least_once: reading it from its {}",
                            if spec.start == StartFrom::Earliest { "start" } else { "end" }
                        ),
                    ));
                }
                let lag = measure_lag(&consumer);
                // Nothing assigned yet (the group is still joining): nothing to say.
                if !lag.is_empty() {
                    report_lag(lag);
                }
            }
            batch = acks.recv() => match batch {
                // While consuming, commit in the background; once stopping, wait for each
                // commit so the last stored batch is committed before the consumer leaves.
                Some(batch) => commit(
                    &batch,
                    if consuming { CommitMode::Async } else { CommitMode::Sync },
                ),
                // The engine is done: nothing more will be stored. A last lag reading, so a
                // stopped pipeline shows how much it left unread.
                None => {
                    let lag = measure_lag(&consumer);
                    if !lag.is_empty() {
                        report_lag(lag);
                    }
                    break;
                }
            },
            _ = cancel.cancelled(), if consuming => consuming = false,
            message = consumer.recv(), if consuming => {
                let message = match message {
                    Ok(m) => m,
                    Err(e) => {
                        // librdkafka retries broker failures itself; report and go on.
                        unhealthy = report_problem(&ctx.pipeline, &brokers, &e, &report_health);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                if unhealthy {
                    report_health(None);
                    unhealthy = false;
                }
                // This message, then whatever else librdkafka already holds, without going
                // through the select for each. Every record is in the engine's channel before
                // the next `recv`, which is where a rebalance callback can run (`handover`
                // relies on it; `queue_record` keeps to it while it waits, see there).
                let mut next = Some(message);
                let mut taken = 0;
                while let Some(message) = next.take() {
                    let record = convert(&message)?;
                    drop(message);
                    if !queue_record(&consumer, &tx, record, &cancel, &handover, &mut convert).await? {
                        consuming = false;
                    }
                    taken += 1;
                    if !consuming || taken >= RECEIVE_BURST {
                        break;
                    }
                    match consumer.recv().now_or_never() {
                        Some(Ok(m)) => next = Some(m),
                        Some(Err(e)) => {
                            unhealthy =
                                report_problem(&ctx.pipeline, &brokers, &e, &report_health);
                        }
                        None => {}
                    }
                }
            }
        }
    }
    // The engine is done; leaving the group (when the consumer is dropped) revokes every
    // partition, which must not wait for it.
    handover.close();
    Ok(())
}

/// How long the engine's queue may stay full before the consumer pauses its partitions.
const PAUSE_AFTER: Duration = Duration::from_secs(1);

/// Puts `record` in the engine's queue, waiting while it is full (ClickHouse slow or down).
/// If that lasts longer than `PAUSE_AFTER`, the assigned partitions are paused, so librdkafka
/// stops fetching, and the consumer is still polled once a second, so the group does not
/// evict it (`max.poll.interval.ms`) however long the outage. A message such a poll hands out
/// (fetched before the pause) is queued after the record, in order; records of partitions a
/// rebalance took away meanwhile are dropped, since the new owner reads them (they were not
/// committed). Returns false when the engine is gone or `cancel` fired.
async fn queue_record(
    consumer: &StreamConsumer<GroupContext>,
    tx: &RecordSender,
    record: SourceRecord,
    cancel: &CancellationToken,
    handover: &Handover,
    convert: &mut impl FnMut(&BorrowedMessage<'_>) -> Result<SourceRecord, KafkaSourceError>,
) -> Result<bool, KafkaSourceError> {
    let mut held = std::collections::VecDeque::from([record]);
    let mut paused: Option<TopicPartitionList> = None;
    let mut delivered = true;
    while let Some(front) = held.front() {
        let weight = crate::ingest::queue::weight(front);
        tokio::select! {
            room = tx.reserve_weight(weight) => match (room, held.pop_front()) {
                (Some(room), Some(record)) => room.send(record),
                _ => {
                    delivered = false;
                    break;
                }
            },
            _ = cancel.cancelled() => {
                delivered = false;
                break;
            }
            _ = tokio::time::sleep(PAUSE_AFTER) => {
                // Pausing what is assigned now (a rebalance may have changed it) each time.
                if let Ok(assigned) = consumer.assignment() {
                    if assigned.count() > 0 && consumer.pause(&assigned).is_ok() {
                        if paused.is_none() {
                            tracing::info!(pipeline = %consumer.context().pipeline, "the engine's queue is full (ClickHouse behind or down): consumption paused");
                        }
                        paused = Some(assigned);
                    }
                }
                if paused.is_some() {
                    match consumer.recv().now_or_never() {
                        Some(Ok(m)) => held.push_back(convert(&m)?),
                        Some(Err(e)) => tracing::warn!(pipeline = %consumer.context().pipeline, "Kafka while paused: {e}"),
                        None => {}
                    }
                    held.retain(|r| !handover.is_revoked(&r.source_id));
                }
            }
        }
    }
    if let Some(partitions) = paused {
        // Only what is still ours; a partition assigned meanwhile was never paused.
        let ours: TopicPartitionList = match consumer.assignment() {
            Ok(now) => {
                let mut list = TopicPartitionList::new();
                for e in partitions.elements() {
                    if now.find_partition(e.topic(), e.partition()).is_some() {
                        list.add_partition(e.topic(), e.partition());
                    }
                }
                list
            }
            Err(_) => partitions,
        };
        if let Err(e) = consumer.resume(&ours) {
            tracing::warn!(pipeline = %consumer.context().pipeline, "cannot resume consumption: {e}");
        } else if delivered {
            tracing::info!(pipeline = %consumer.context().pipeline, "the engine takes records again: consumption resumed");
        }
    }
    Ok(delivered)
}

/// Logs and reports a consumer error (librdkafka keeps retrying by itself); returns true,
/// the source's new "unhealthy" state.
fn report_problem(
    pipeline: &str,
    brokers: &str,
    e: &rdkafka::error::KafkaError,
    report_health: &HealthReporter,
) -> bool {
    tracing::warn!(pipeline = %pipeline, "Kafka: {e}");
    report_health(Some(format!("Kafka ({brokers}): {e}")));
    true
}

/// Messages taken from librdkafka at once before the source looks at acks, lag and
/// cancellation again.
const RECEIVE_BURST: usize = 512;

/// Each partition's source id, made once rather than per message.
type SourceIds = std::collections::HashMap<i32, std::collections::HashMap<String, Arc<str>>>;

/// The problem, when the first message of a newly assigned partition comes from below the
/// group's committed offset: offsets only go back when the topic was deleted and recreated
/// (or its partition truncated and refilled).
fn went_back(source: &str, offset: u64, committed: i64) -> Option<String> {
    let below = i64::try_from(offset).is_ok_and(|o| o < committed);
    below.then(|| {
        format!(
            "{source}: the broker served offset {offset}, below the group's committed offset {committed}; \
             the topic was probably deleted and recreated"
        )
    })
}

fn to_record<M: Message>(
    message: &M,
    format: RecordFormat,
    epoch: u32,
    ids: &mut SourceIds,
) -> SourceRecord {
    let payload = message.payload().unwrap_or_default();
    let per_topic = ids.entry(message.partition()).or_default();
    let source_id = match per_topic.get(message.topic()) {
        Some(id) => id.clone(),
        None => {
            let id: Arc<str> = Arc::from(source_id(message.topic(), message.partition(), epoch));
            per_topic.insert(message.topic().to_string(), id.clone());
            id
        }
    };
    SourceRecord {
        source_id,
        offset: u64::try_from(message.offset()).unwrap_or(0),
        payload: parse_payload(format, payload).map(Payload::Json),
        raw: String::from_utf8_lossy(payload).into_owned(),
    }
}

/// Live checks for `aurora pipeline validate`: the brokers answer and every topic exists.
/// Returns the problems as sentences.
pub fn check(spec: &KafkaSource, ctx: &KafkaContext) -> Vec<String> {
    let config = consumer_config(spec, ctx);
    let brokers = config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_string();
    let consumer: BaseConsumer = match config.create() {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot create a Kafka client for {brokers}: {e}")],
    };
    let metadata = match consumer.fetch_metadata(None, Duration::from_secs(5)) {
        Ok(m) => m,
        Err(e) => {
            return vec![format!(
                "Kafka brokers {brokers} did not answer within 5 s ({e}); check `brokers` and that they are reachable"
            )]
        }
    };
    let existing: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
    topics(spec)
        .into_iter()
        .filter(|t| !existing.contains(&t.as_str()))
        .map(|t| {
            let hint = crate::config::did_you_mean(&t, existing.iter().copied())
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            format!("topic `{t}` does not exist on {brokers}{hint}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ids_round_trip_even_with_colons_in_topics() {
        assert_eq!(
            parse_source_id(&source_id("events", 3, 0)),
            Some(("events", 3))
        );
        assert_eq!(source_id("events", 3, 2), "kafka:events:3@2");
        assert_eq!(parse_source_id(&source_id("a:b", 3, 2)), Some(("a:b", 3)));
        assert_eq!(parse_source_id("kafka:a:b:12"), Some(("a:b", 12)));
        assert_eq!(parse_source_id("csv:/x"), None);
    }

    #[test]
    fn offsets_below_the_committed_one_went_back() {
        assert!(went_back("kafka:t:0", 0, 1000).unwrap().contains("below"));
        assert_eq!(went_back("kafka:t:0", 1000, 1000), None);
        assert_eq!(went_back("kafka:t:0", 1500, 1000), None);
    }

    #[test]
    fn lag_counts_what_is_left_to_read() {
        assert_eq!(lag(100, Some(40), 0), 60);
        assert_eq!(lag(100, Some(100), 0), 0);
        // Before the first fetch: all retained messages are lag.
        assert_eq!(lag(100, None, 20), 80);
        // Positions below the retained log start count from the start.
        assert_eq!(lag(100, Some(5), 20), 80);
    }

    #[test]
    fn payload_formats() {
        let v = parse_payload(RecordFormat::Json, br#"{"a": 1}"#).unwrap();
        assert_eq!(v["a"], 1);
        assert!(parse_payload(RecordFormat::Json, b"{oops")
            .unwrap_err()
            .contains("not valid JSON"));
        let v = parse_payload(RecordFormat::Csv, b"1,\"x, y\",").unwrap();
        assert_eq!(v["c2"], "x, y");
        assert_eq!(v["c3"], serde_json::Value::Null);
        let v = parse_payload(RecordFormat::Tsv, b"a\tb").unwrap();
        assert_eq!(v["c2"], "b");
    }
}
