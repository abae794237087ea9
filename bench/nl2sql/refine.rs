//! Refinement turns: scripted conversations (`refine-tpch-clarify.yaml`, frozen), each a
//! question and the clarifications its user types when an answer is wrong, written without
//! seeing any answer; every turn has the same intent, so one gold. Each variant asks the
//! turns in order, each as a follow-up of the previous answer, and counts the turns until the
//! answer's rows equal the gold's; a conversation still wrong after its last turn counts as
//! one turn more than it has (the user would go on). The plain baseline gets a follow-up as
//! a plain chat: the earlier question and its query as turns, then the new words
//! (`prompt::plain_messages`).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use aurora::assistant::conversation::Conversation;
use aurora::assistant::{AskOptions, ModelBackend};
use aurora::config::Config;
use aurora::warehouse::{ConnectionSettings, QueryOptions, Warehouse};
use tokio_util::sync::CancellationToken;

use super::{same_rows, Variant};

/// The conversation files and the database each is over.
pub const FILES: &[(&str, &str)] = &[("refine-tpch-clarify.yaml", "tpch")];

#[derive(Debug, serde::Deserialize)]
pub struct Script {
    id: String,
    #[allow(dead_code)]
    schema: String,
    #[allow(dead_code)]
    difficulty: String,
    turns: Vec<String>,
    gold: String,
    ordered: bool,
}

pub fn read(root: &Path, file: &str) -> Result<Vec<Script>> {
    let path = root.join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Runs every script in every variant and prints the turns each needed and the totals.
pub async fn run(
    backend: &Arc<dyn ModelBackend>,
    warehouse: &Warehouse,
    database: &str,
    scripts: &[Script],
    variants: &[Variant],
) -> Result<()> {
    let mut settings = ConnectionSettings::new(warehouse.settings().url.clone());
    settings.database = database.to_string();
    let warehouse = Arc::new(Warehouse::connect(settings).await?);
    let mut config = Config::default().assistant;
    config.databases = vec![database.to_string()];
    let assistant =
        aurora::assistant::configured(Arc::clone(backend), Arc::clone(&warehouse), &config);
    println!(
        "\nrefinement: {} scripted conversations over `{database}` (turns until the rows are right)",
        scripts.len()
    );
    let mut totals: Vec<(String, usize, usize, usize)> = Vec::new();
    for variant in variants {
        let options = AskOptions {
            mode: variant.mode,
            mechanisms: variant.mechanisms,
            ..AskOptions::default()
        };
        let (mut turns_sum, mut solved, mut first_turn) = (0, 0, 0);
        for script in scripts {
            let gold = warehouse
                .query(script.gold.trim(), &QueryOptions::default())
                .await
                .with_context(|| format!("gold SQL of {} failed", script.id))?;
            let mut conversation = Conversation::default();
            let mut needed = None;
            for (i, turn) in script.turns.iter().enumerate() {
                let previous = (i > 0).then_some(&conversation);
                let answer = assistant
                    .ask(turn, previous, &options, None, CancellationToken::new())
                    .await;
                let Ok(answer) = answer else { continue };
                if let (Some(sql), Some(result)) = (&answer.sql, &answer.result) {
                    if same_rows(&gold, result, script.ordered) {
                        needed = Some(i + 1);
                        break;
                    }
                    conversation.push(turn, sql);
                }
            }
            let turns = needed.unwrap_or(script.turns.len() + 1);
            turns_sum += turns;
            solved += usize::from(needed.is_some());
            first_turn += usize::from(needed == Some(1));
            println!(
                "  {:<13} {:<16} {} turn(s) of {}{}",
                variant.name,
                script.id,
                turns,
                script.turns.len(),
                if needed.is_some() {
                    ""
                } else {
                    "  (not right after the last)"
                }
            );
        }
        totals.push((variant.name.clone(), turns_sum, solved, first_turn));
    }
    println!("\nrefinement turns (fewer is better; unsolved count as turns + 1):");
    for (name, turns, solved, _) in &totals {
        println!(
            "  {name:<13} {turns:>3} turns for {} conversations ({:.2} each), {solved} right at the end",
            scripts.len(),
            *turns as f64 / scripts.len().max(1) as f64
        );
    }
    if let (Some(plain), Some(full)) = (
        totals.iter().find(|t| t.0 == "plain"),
        totals.iter().find(|t| t.0 == "full"),
    ) {
        let change = (full.1 as f64 - plain.1 as f64) / (plain.1.max(1) as f64) * 100.0;
        println!("  full vs plain: {change:+.0}% turns (goal: -30% or better)");
    }
    Ok(())
}
