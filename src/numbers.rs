//! Numbers and durations as people read them in a status line, on a chart axis or a panel:
//! `1,000,000 rows`, `3.4M`, `120 ms`. Used by the result table's summary and the charts.

use std::time::Duration;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A short form for axes and bar labels: `950`, `1.2k`, `34k`, `3.4M`, `-12B`, `0.25`.
pub fn compact(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs();
    for (scale, suffix) in [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")] {
        // Rounding to one decimal can carry into the next unit (999,960 → `1000.0k`), so the
        // unit is chosen on the rounded value.
        if magnitude >= scale * 0.99995 {
            let scaled = value / scale;
            return if scaled.abs() < 9.95 {
                format!("{}{suffix}", trim_zeros(format!("{scaled:.1}")))
            } else {
                format!("{scaled:.0}{suffix}")
            };
        }
    }
    if value.fract() == 0.0 || magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 1.0 {
        trim_zeros(format!("{value:.1}"))
    } else {
        trim_zeros(format!("{value:.2}"))
    }
}

fn trim_zeros(text: String) -> String {
    if !text.contains('.') {
        return text;
    }
    let trimmed = text.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

/// `850 µs`, `120 ms`, `1.23 s`, `2 min 5 s`.
pub fn duration(elapsed: Duration) -> String {
    let micros = elapsed.as_micros();
    if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{} ms", micros / 1_000)
    } else if elapsed.as_secs() < 60 {
        format!("{:.2} s", elapsed.as_secs_f64())
    } else {
        let secs = elapsed.as_secs();
        format!("{} min {} s", secs / 60, secs % 60)
    }
}

/// Sizes on disk in binary units, `1234567` → `1.18 MiB` (the schema listings; `human_bytes`
/// is clickhouse-client's decimal style for bytes read).
pub fn binary_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_sizes_read_like_people_write_them() {
        assert_eq!(binary_bytes(0), "0 B");
        assert_eq!(binary_bytes(1023), "1023 B");
        assert_eq!(binary_bytes(1536), "1.50 KiB");
        assert_eq!(binary_bytes(5 * 1024 * 1024 * 1024), "5.00 GiB");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn compact_numbers() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(1_234.0), "1.2k");
        assert_eq!(compact(34_000.0), "34k");
        assert_eq!(compact(999_960.0), "1M");
        assert_eq!(compact(3_400_000.0), "3.4M");
        assert_eq!(compact(-12e9), "-12B");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(-0.001), "0");
        assert_eq!(compact(12.34), "12.3");
        assert_eq!(compact(f64::NAN), "NaN");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(duration(Duration::from_millis(120)), "120 ms");
        assert_eq!(duration(Duration::from_millis(1_234)), "1.23 s");
        assert_eq!(duration(Duration::from_secs(125)), "2 min 5 s");
    }
}
