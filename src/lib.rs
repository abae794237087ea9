//! Aurora: a terminal workspace for real-time analytics on ClickHouse.
//!
//! The binary (`src/main.rs`) is a thin front end over this library: `cli` parses commands and
//! calls into `warehouse` (ClickHouse client, schema, local server) and `config` (YAML model
//! and diagnostics). Later front ends (the TUI) call the same functions.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod alerts;
pub mod assistant;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod dashboards;
pub mod demo;
pub mod ingest;
pub mod metrics;
pub mod numbers;
pub mod output;
pub mod rbac;
pub mod secret;
pub mod serve;
pub mod shutdown;
pub mod sizing;
pub mod telemetry;
pub mod tui;
pub mod warehouse;
