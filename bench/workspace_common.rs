//! What the workspace benchmarks (`tui`, `dashboards`) share: key presses and timings.
#![allow(dead_code)]

use std::time::Duration;

use aurora::tui::app::Msg;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// The `p` quantile (0–1) of timings sorted from fastest to slowest.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
