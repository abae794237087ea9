//! Widgets: the result grid, charts of series results and highlighted SQL. Each keeps its state
//! (built when a result arrives, changed by the app's `update`) apart from its drawing, a pure
//! `Widget` over `&State` and the `Theme` that never does I/O or changes state.

pub mod cell_text;
pub mod chart;
pub use crate::numbers;
pub mod result_table;
pub mod sql;
