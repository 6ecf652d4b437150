//! Which durations the command line accepts, and what they mean: `500ms`, `2s`, `1.5m`, `1h`,
//! `1e3ms` or a bare number of seconds, from 1 ms to 30 days (and 0 only for an option where it
//! means "one snapshot"). It may not panic on any input: every refusal is one sentence.

use std::time::Duration;

/// The shortest duration an option takes (a sample takes longer than this anyway).
pub const MIN: Duration = Duration::from_millis(1);
/// The longest: nothing gridlock watches for is meant to run for more than a month.
pub const MAX: Duration = Duration::from_secs(30 * 24 * 3600);

/// Units, longest spelling first so that `ms` is not read as `m`.
const UNITS: [(&str, u64); 4] = [
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {0:?}: use a number with an optional unit ms, s, m or h (seconds if none), e.g. 500ms, 2s, 1.5m, 1e3ms")]
    Syntax(String),
    #[error("duration {0:?} is out of range: use 1ms to 30 days (720h){1}")]
    Range(String, &'static str),
}

/// A duration from 1 ms to 30 days.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    parse_in_range(text, false)
}

/// A duration from 1 ms to 30 days, or 0 (for options where 0 means one snapshot).
pub fn parse_or_zero(text: &str) -> Result<Duration, DurationError> {
    parse_in_range(text, true)
}

fn parse_in_range(text: &str, zero: bool) -> Result<Duration, DurationError> {
    let t = text.trim();
    let syntax = || DurationError::Syntax(text.to_string());
    let (number, unit_nanos) = UNITS
        .iter()
        .find_map(|(u, n)| t.strip_suffix(u).map(|rest| (rest.trim_end(), *n)))
        .unwrap_or((t, 1_000_000_000));
    if !is_decimal(number) {
        return Err(syntax());
    }
    // Finite: a mantissa of digits with an exponent of digits; an overlong exponent is inf.
    let value: f64 = number.parse().map_err(|_| syntax())?;
    let nanos = value * unit_nanos as f64;
    let range = || {
        DurationError::Range(
            text.to_string(),
            if zero { ", or 0 for one snapshot" } else { "" },
        )
    };
    if nanos == 0.0 {
        return if zero {
            Ok(Duration::ZERO)
        } else {
            Err(range())
        };
    }
    // Compared as floats before any conversion, so no value can overflow one.
    if !(nanos.round() >= MIN.as_nanos() as f64 && nanos.round() <= MAX.as_nanos() as f64) {
        return Err(range());
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// `DIGITS[.DIGITS][e[+-]DIGITS]` with at least one mantissa digit: what Rust would also
/// parse as `inf`, `nan`, `+1` or `0x10` is refused, so every spelling means one thing.
fn is_decimal(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_contract_forms() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse(" 0.1s ").unwrap(), Duration::from_millis(100));
        assert_eq!(parse(".5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1e3ms").unwrap(), Duration::from_secs(1));
        assert_eq!(parse("2.5E-1").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("720h").unwrap(), MAX);
        assert_eq!(parse("1ms").unwrap(), MIN);
        assert_eq!(parse_or_zero("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_or_zero("0ms").unwrap(), Duration::ZERO);
    }

    #[test]
    fn refuses_with_one_sentence() {
        for bad in [
            "fast",
            "-1s",
            "3 parsecs",
            "5parsecs",
            "",
            "s",
            ".",
            "1e",
            "e3",
            "inf",
            "NaN",
            "+1s",
            "0x10",
            "1,5s",
            "1d",
            "1.2.3",
            "1e3e3",
        ] {
            assert!(
                matches!(parse(bad), Err(DurationError::Syntax(_))),
                "{bad:?} -> {:?}",
                parse(bad)
            );
        }
        for big in [
            "100000000000000000000",
            "1e9",
            "1e400",
            "721h",
            "0.5ms",
            "1e-9",
            "0",
        ] {
            assert!(
                matches!(parse(big), Err(DurationError::Range(..))),
                "{big:?} -> {:?}",
                parse(big)
            );
        }
        assert!(parse("1e9")
            .unwrap_err()
            .to_string()
            .contains("use 1ms to 30 days"));
        assert!(parse_or_zero("0.1ms")
            .unwrap_err()
            .to_string()
            .contains("or 0 for one snapshot"));
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_in_range(s in "\\PC*") {
            for zero in [false, true] {
                if let Ok(d) = parse_in_range(&s, zero) {
                    prop_assert!(d <= MAX);
                    prop_assert!(d >= MIN || (zero && d.is_zero()));
                }
            }
        }

        #[test]
        fn never_panics_on_number_like_strings(
            s in "[ ]?[0-9.eE+-]{0,30}(ms|s|m|h|d)?[ ]?"
        ) {
            if let Ok(d) = parse(&s) {
                prop_assert!((MIN..=MAX).contains(&d));
            }
        }

        #[test]
        fn whole_milliseconds_round_trip(ms in 1u64..=MAX.as_millis() as u64) {
            prop_assert_eq!(parse(&format!("{ms}ms")).unwrap(), Duration::from_millis(ms));
        }
    }
}
