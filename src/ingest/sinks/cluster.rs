//! Where a sink's table lives: one server, or the shards of a ClickHouse cluster.
//!
//! A sink writes either to one connection (which may hold a `Distributed` table, inserted
//! synchronously so that an acknowledged batch is on its shards), or to the shards directly
//! (`sink.cluster.shards`): each batch is split per shard deterministically, each shard's part
//! is inserted into the first of its replicas that answers, and the batch counts as written
//! only when every part is acknowledged. The source position is saved after that, so a crash
//! in between replays the batch, and the sink's check of what is already stored (which asks
//! every shard) skips the parts that arrived.

use std::future::Future;
use std::hash::Hasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::ingest::pipeline::ClusterSink;
use crate::warehouse::{ConnectionSettings, QueryOptions, QueryResult, Warehouse, WarehouseError};

/// The servers a sink's table lives on.
#[derive(Debug)]
pub struct Shards {
    shards: Vec<Shard>,
    /// The table is `Distributed`: inserts wait until every shard has its rows
    /// (`insert_distributed_sync`, as a URL parameter: 18.16 refuses it in `SETTINGS`).
    pub distributed: bool,
    /// The shards of `sink.cluster.shards`, not the pipeline's own connection.
    direct: bool,
}

/// One shard: its replicas, connected on first use; `current` is the one that answered last.
#[derive(Debug)]
struct Shard {
    replicas: Vec<Replica>,
    current: AtomicUsize,
}

#[derive(Debug)]
struct Replica {
    settings: ConnectionSettings,
    connection: OnceCell<Arc<Warehouse>>,
}

impl Shards {
    /// The sink's own connection.
    pub fn single(warehouse: Arc<Warehouse>) -> Self {
        let replica = Replica {
            settings: warehouse.settings().clone(),
            connection: OnceCell::new_with(Some(warehouse)),
        };
        Self {
            shards: vec![Shard {
                replicas: vec![replica],
                current: AtomicUsize::new(0),
            }],
            distributed: false,
            direct: false,
        }
    }

    /// The shards of `cluster`, with the credentials and database of `base`; `None` when the
    /// cluster is written through a Distributed table.
    pub fn direct(base: &Warehouse, cluster: &ClusterSink) -> Option<Self> {
        if cluster.shards.is_empty() {
            return None;
        }
        let shards = cluster
            .shards
            .iter()
            .map(|spec| Shard {
                replicas: spec
                    .urls()
                    .iter()
                    .map(|url| {
                        let mut settings = base.settings().clone();
                        settings.url = url.trim_end_matches('/').to_string();
                        Replica {
                            settings,
                            connection: OnceCell::new(),
                        }
                    })
                    .collect(),
                current: AtomicUsize::new(0),
            })
            .collect();
        Some(Self {
            shards,
            distributed: false,
            direct: true,
        })
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Runs `f` on shard `shard`: on its replica that answered last, or, when that one
    /// cannot be reached, on the next that can. Server errors are returned as they are.
    pub async fn on_shard<T, F, Fut>(&self, shard: usize, f: F) -> Result<T, WarehouseError>
    where
        F: Fn(Arc<Warehouse>) -> Fut,
        Fut: Future<Output = Result<T, WarehouseError>>,
    {
        let shard_index = shard;
        let shard = &self.shards[shard];
        let n = shard.replicas.len();
        let first = shard.current.load(Ordering::Relaxed);
        let mut last_error = None;
        for i in 0..n {
            let index = (first + i) % n;
            let replica = &shard.replicas[index];
            let warehouse = match replica.connect().await {
                Ok(w) => w,
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            match f(warehouse).await {
                Err(e) if unreachable(&e) && i + 1 < n => last_error = Some(e),
                result => {
                    if result.is_ok() {
                        shard.current.store(index, Ordering::Relaxed);
                    }
                    return result;
                }
            }
        }
        Err(match last_error {
            // Said per shard: the connection's own hint is about `clickhouse.url`.
            Some(WarehouseError::Connect { reason, .. }) if self.direct => {
                WarehouseError::Connect {
                    url: format!(
                        "shard {} of the cluster sink ({})",
                        shard_index + 1,
                        shard
                            .replicas
                            .iter()
                            .map(|r| r.settings.url.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    reason: if n > 1 {
                        format!("no replica answers (the last: {reason})")
                    } else {
                        reason
                    },
                    hint:
                        "start one of its servers, or correct its URL under `sink.cluster.shards`"
                            .into(),
                }
            }
            Some(e) => e,
            None => WarehouseError::Settings("a shard of the cluster sink lists no server".into()),
        })
    }

    /// `sql` on every shard (one replica each), in shard order.
    pub async fn query_each(&self, sql: &str) -> Result<Vec<QueryResult>, WarehouseError> {
        let mut results = Vec::with_capacity(self.shards.len());
        for shard in 0..self.shards.len() {
            results.push(
                self.on_shard(shard, |w| async move {
                    w.query(sql, &QueryOptions::unrestricted()).await
                })
                .await?,
            );
        }
        Ok(results)
    }

    /// `sql` on every replica of every shard (tables Aurora creates on the shards).
    pub async fn execute_everywhere(
        &self,
        sql: &str,
        opts: &QueryOptions,
    ) -> Result<(), WarehouseError> {
        for shard in &self.shards {
            for replica in &shard.replicas {
                replica.connect().await?.query(sql, opts).await?;
            }
        }
        Ok(())
    }

    /// The connection the table is read from when the sink starts (the first shard).
    pub async fn first(&self) -> Result<Arc<Warehouse>, WarehouseError> {
        self.on_shard(0, |w| async move { Ok(w) }).await
    }
}

impl Replica {
    /// Its connection, made on first use (a replica down when the sink starts is tried later).
    async fn connect(&self) -> Result<Arc<Warehouse>, WarehouseError> {
        self.connection
            .get_or_try_init(|| async {
                Warehouse::connect(self.settings.clone())
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }
}

/// The server could not be reached (as opposed to refusing the request): another replica may.
fn unreachable(e: &WarehouseError) -> bool {
    matches!(
        e,
        WarehouseError::Connect { .. } | WarehouseError::Timeout { .. }
    )
}

/// The shard of a record whose sharding value hashes to `hash`.
pub fn shard_of(hash: u64, shards: usize) -> usize {
    (hash % shards.max(1) as u64) as usize
}

/// A hash that stays the same across runs, versions and machines, so that a replayed record
/// goes to the shard it went to before.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut hasher = twox_hash::XxHash64::with_seed(0);
    for part in parts {
        hasher.write(part);
        // Separates the parts, so ("ab", "c") and ("a", "bc") differ.
        hasher.write_u8(0xff);
    }
    hasher.finish()
}

/// The deduplication token of a part: the pipeline and the positions it holds, hashed as they
/// stream by (the same value as `stable_hash` of the pipeline and the positions' bytes).
pub fn part_token<'a>(pipeline: &str, positions: impl Iterator<Item = (&'a str, u64)>) -> String {
    let mut hasher = twox_hash::XxHash64::with_seed(0);
    hasher.write(pipeline.as_bytes());
    hasher.write_u8(0xff);
    for (source, offset) in positions {
        hasher.write(source.as_bytes());
        hasher.write(&offset.to_le_bytes());
    }
    hasher.write_u8(0xff);
    format!("aurora-{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXED: u64 = 16_296_026_400_095_351_492;

    #[test]
    fn a_part_token_hashes_the_pipeline_and_the_positions() {
        let token = part_token("p", [("s", 1u64), ("s", 2)].into_iter());
        let mut positions = b"s".to_vec();
        positions.extend_from_slice(&1u64.to_le_bytes());
        positions.extend_from_slice(b"s");
        positions.extend_from_slice(&2u64.to_le_bytes());
        assert_eq!(
            token,
            format!("aurora-{:016x}", stable_hash(&[b"p", &positions]))
        );
        assert_ne!(token, part_token("p", [("s", 2u64), ("s", 1)].into_iter()));
    }

    #[test]
    fn the_hash_is_stable_and_separates_parts() {
        // A fixed value: a change here would send replayed records to other shards.
        assert_eq!(stable_hash(&[b"kafka:t:0", b"42"]), FIXED);
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        let spread: Vec<usize> = (0..1000u64)
            .map(|i| shard_of(stable_hash(&[b"src", &i.to_le_bytes()]), 2))
            .collect();
        let ones = spread.iter().filter(|&&s| s == 1).count();
        assert!(
            (400..600).contains(&ones),
            "uneven spread: {ones} of 1000 on shard 1"
        );
    }
}
