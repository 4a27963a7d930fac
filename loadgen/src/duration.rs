//! Durations as people type them on a command line: `300ms`, `10s`, `1.5s`,
//! `2m`, and ranges such as `5s..15s` for think times.
//!
//! Reports write durations back in the same form, so a JSON report can be
//! read by a person and its config pasted back onto a command line.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The servers' parser: `300ms`, `10s`, `1.5s`, `2m`, `250us`, and a bare
/// number refused ("10" could mean seconds or milliseconds, and guessing
/// wrong by 1000x ruins a measurement silently). One parser for the whole
/// workspace, so every tool reads a duration the same way.
pub use durations::parse_duration;

/// Writes a duration in the largest unit that keeps it exact: `10s`,
/// `300ms`, `250us`, `17ns`.
pub fn format_duration(duration: Duration) -> String {
    let nanoseconds = duration.as_nanos();
    if nanoseconds == 0 {
        "0s".to_string()
    } else if nanoseconds.is_multiple_of(1_000_000_000) {
        format!("{}s", nanoseconds / 1_000_000_000)
    } else if nanoseconds.is_multiple_of(1_000_000) {
        format!("{}ms", nanoseconds / 1_000_000)
    } else if nanoseconds.is_multiple_of(1_000) {
        format!("{}us", nanoseconds / 1_000)
    } else {
        format!("{nanoseconds}ns")
    }
}

/// A closed range of durations, written `5s..15s`; a single duration `5s`
/// means `5s..5s`. Used for think times, drawn uniformly from the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
}

impl DurationRange {
    /// A duration drawn uniformly from the range.
    pub fn pick(&self) -> Duration {
        if self.min >= self.max {
            return self.min;
        }
        let nanoseconds = rand::random_range(self.min.as_nanos()..=self.max.as_nanos());
        Duration::from_nanos(u64::try_from(nanoseconds).unwrap_or(u64::MAX))
    }
}

impl FromStr for DurationRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (min, max) = match text.split_once("..") {
            Some((min, max)) => (parse_duration(min)?, parse_duration(max)?),
            None => {
                let single = parse_duration(text)?;
                (single, single)
            }
        };
        if min > max {
            return Err(format!("`{text}`: the range ends before it starts"));
        }
        Ok(DurationRange { min, max })
    }
}

impl fmt::Display for DurationRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}..{}",
            format_duration(self.min),
            format_duration(self.max)
        )
    }
}

impl Serialize for DurationRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DurationRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "crate::duration::as_text")]`: a `Duration` as `"300ms"`
/// instead of serde's `{"secs":0,"nanos":300000000}`.
pub mod as_text {
    use super::*;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*duration))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_back_exactly() {
        for text in ["10s", "300ms", "250us", "0s", "1500ms"] {
            let duration = parse_duration(text).expect("valid");
            assert_eq!(format_duration(duration), text);
        }
    }

    #[test]
    fn ranges() {
        let range: DurationRange = "5s..15s".parse().expect("valid");
        assert_eq!(range.min, Duration::from_secs(5));
        assert_eq!(range.max, Duration::from_secs(15));
        assert_eq!(range.to_string(), "5s..15s");
        for _ in 0..100 {
            let picked = range.pick();
            assert!(picked >= range.min && picked <= range.max);
        }
        let zero: DurationRange = "0s..0s".parse().expect("valid");
        assert_eq!(zero.pick(), Duration::ZERO);
        assert!("15s..5s".parse::<DurationRange>().is_err());
        assert!("5s..".parse::<DurationRange>().is_err());
    }
}
