//! Durations as the contract spells them: `500ms`, `2s`, `1m`, or a bare number of seconds.

use std::time::Duration;

pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = number.trim().parse().map_err(|_| {
        format!("invalid duration {text:?}: use e.g. 500ms, 2s, 1m or a number of seconds")
    })?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!(
            "invalid duration {text:?}: must be a non-negative number"
        ));
    }
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?}: use ms, s, m or h"
            ))
        }
    };
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_contract_forms() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert!(parse("fast").is_err());
        assert!(parse("-1s").is_err());
        assert!(parse("3 parsecs").is_err());
    }
}
