//! The process environment as pushfs reads it: taken once at start, then
//! passed down, so nothing deep in the code reads variables itself.

use std::collections::BTreeMap;

use thiserror::Error;

pub type Env = BTreeMap<String, String>;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("{name} must be true or false (or 1/0, yes/no, on/off), got {value:?}")]
    BadFlag { name: &'static str, value: String },
}

/// A yes/no setting: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.
pub fn parse_flag(name: &'static str, value: &str) -> Result<bool, EnvError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(EnvError::BadFlag {
            name,
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_as_people_write_them() {
        assert_eq!(parse_flag("X", " Yes "), Ok(true));
        assert_eq!(parse_flag("X", "0"), Ok(false));
        assert!(matches!(
            parse_flag("X", "maybe"),
            Err(EnvError::BadFlag { name: "X", .. })
        ));
    }
}
