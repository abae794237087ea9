//! Widgets: state and pure drawing of the result table, charts and highlighted SQL.
