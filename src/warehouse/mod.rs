//! The ClickHouse layer: connection settings, the HTTP client, server capabilities, schema
//! introspection, the query runner and the private local server. Everything above (CLI, TUI,
//! ingestion, assistant) reaches ClickHouse only through this module.

pub mod capabilities;
pub mod client;
pub mod error;
pub mod local_server;
pub mod profile;
pub mod query;
pub mod relations;
pub mod result;
pub mod schema;
pub mod settings;
pub mod tls;
pub mod types;
pub mod value;

pub use capabilities::{Capabilities, ServerVersion};
pub use client::Warehouse;
pub use error::{ServerError, WarehouseError};
pub use query::{OverflowMode, QueryOptions, RowStream};
pub use result::{Column, QueryResult, QueryStats};
pub use settings::{ConnectionOverrides, ConnectionSettings, Target};
