//! JavaScript value semantics that FluxOS relies on: `Number(x)`, `String(x)`,
//! truthiness, `.length`, and `JSON.stringify`'s number printing.
//!
//! FluxOS signs and hashes `JSON.stringify(spec)`, so a Rust client must print
//! numbers exactly as JavaScript does (`1`, not `1.0`; `1e+21`; `-0` as `0`).
//! [`to_canonical_json`] serializes any `Serialize` value through
//! [`JsFormatter`], which does that; string escaping is already the same in
//! serde_json and `JSON.stringify` (only `"`, `\\` and U+0000–U+001F, lowercase `\u00xx`).

use std::fmt;
use std::io;

use serde::{Serialize, Serializer};
use serde_json::ser::Formatter;
use serde_json::Value;

/// A JavaScript number: what FluxOS holds after `Number(...)`. May be NaN.
#[derive(Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct JsNumber(pub f64);

impl JsNumber {
    pub fn value(self) -> f64 {
        self.0
    }

    pub fn is_integer(self) -> bool {
        self.0.is_finite() && self.0.fract() == 0.0
    }

    pub fn is_nan(self) -> bool {
        self.0.is_nan()
    }

    /// JavaScript truthiness of a number: 0, -0 and NaN are falsy.
    pub fn truthy(self) -> bool {
        !(self.0 == 0.0 || self.0.is_nan())
    }
}

impl fmt::Debug for JsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `String(n)` / template interpolation: `NaN`, `Infinity`, `1e+21`, `0.5`.
impl fmt::Display for JsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ryu_js::Buffer::new().format(self.0))
    }
}

impl Serialize for JsNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // serde_json writes `null` for NaN and infinities, as JSON.stringify does.
        serializer.serialize_f64(self.0)
    }
}

/// JSON.stringify of a number: non-finite numbers become `null`.
pub fn json_number(n: f64) -> String {
    if n.is_finite() {
        ryu_js::Buffer::new().format_finite(n).to_string()
    } else {
        "null".to_string()
    }
}

/// Prints numbers the way `JSON.stringify` does. Integers beyond 2^53 are
/// printed as the double JavaScript would hold, since JSON.parse rounds them.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsFormatter;

const MAX_SAFE: u64 = 1 << 53;

impl Formatter for JsFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(json_number(value).as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }

    fn write_u64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: u64) -> io::Result<()> {
        if value <= MAX_SAFE {
            write!(writer, "{value}")
        } else {
            self.write_f64(writer, value as f64)
        }
    }

    fn write_i64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: i64) -> io::Result<()> {
        if value.unsigned_abs() <= MAX_SAFE {
            write!(writer, "{value}")
        } else {
            self.write_f64(writer, value as f64)
        }
    }

    fn write_u128<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: u128) -> io::Result<()> {
        self.write_f64(writer, value as f64)
    }

    fn write_i128<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: i128) -> io::Result<()> {
        self.write_f64(writer, value as f64)
    }
}

/// `JSON.stringify(value)`: the exact bytes FluxOS signs and hashes.
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, JsFormatter);
    value
        .serialize(&mut ser)
        .expect("serializing to memory cannot fail and keys are strings");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// JavaScript truthiness of a JSON value (`None` is `undefined`).
pub fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => JsNumber(n.as_f64().unwrap_or(f64::NAN)).truthy(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_)) | Some(Value::Object(_)) => true,
    }
}

/// `Number(value)` (FluxOS `serviceHelper.ensureNumber`).
pub fn ensure_number(value: Option<&Value>) -> JsNumber {
    JsNumber(match value {
        None => f64::NAN,
        Some(Value::Null) => 0.0,
        Some(Value::Bool(b)) => f64::from(u8::from(*b)),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => string_to_number(s),
        // Number([]) is 0, Number([x]) is Number(String(x)), longer arrays NaN.
        Some(Value::Array(items)) => match items.as_slice() {
            [] => 0.0,
            [only] => string_to_number(&to_js_string(Some(only))),
            _ => f64::NAN,
        },
        Some(Value::Object(_)) => f64::NAN,
    })
}

/// ECMAScript StringToNumber: trimmed decimal, `0x`/`0o`/`0b` integers,
/// `Infinity`; an empty string is 0; anything else NaN.
fn string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(digits) = t.strip_prefix(prefix) {
            return u128::from_str_radix(digits, radix)
                .map(|v| v as f64)
                .unwrap_or(f64::NAN);
        }
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    // Rust also accepts "inf", "nan" and friends, which JavaScript does not.
    let decimal = t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if decimal {
        t.parse::<f64>().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

/// `ensureString(value)`: strings as they are, anything else through
/// `JSON.stringify`; `undefined` stays `undefined` (`None`).
pub fn ensure_string(value: Option<&Value>) -> Option<String> {
    match value {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(to_canonical_json(other)),
    }
}

/// `ensureBoolean(value)`: true/false, 1/0 and their strings; else undefined.
pub fn ensure_boolean(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" || s == "1" => Some(true),
        Value::String(s) if s == "false" || s == "0" => Some(false),
        Value::Number(n) if n.as_f64() == Some(1.0) => Some(true),
        Value::Number(n) if n.as_f64() == Some(0.0) => Some(false),
        _ => None,
    }
}

/// `ensureObject(value)` as far as FluxOS's callers can tell: objects and
/// arrays as they are, JSON text parsed, anything else an empty object.
/// (`null` stays `null`, as `typeof null === 'object'`.)
pub fn ensure_object(value: Option<&Value>) -> Value {
    match value {
        Some(v @ (Value::Object(_) | Value::Array(_) | Value::Null)) => v.clone(),
        Some(Value::String(s)) if !s.is_empty() => match serde_json::from_str::<Value>(s) {
            Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
            // qs.parse of non-JSON text yields a plain object, never an array.
            _ => Value::Object(Default::default()),
        },
        _ => Value::Object(Default::default()),
    }
}

/// `String(value)` / `${value}` in a template literal.
pub fn to_js_string(value: Option<&Value>) -> String {
    match value {
        None => "undefined".to_string(),
        Some(Value::Null) => "null".to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => JsNumber(n.as_f64().unwrap_or(f64::NAN)).to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::Null => String::new(),
                other => to_js_string(Some(other)),
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(_)) => "[object Object]".to_string(),
    }
}

/// `String(x)` for an optional string: `undefined` when absent.
pub fn opt_str(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("undefined")
}

/// JavaScript's `string.length`: UTF-16 code units.
pub fn js_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `serviceHelper.isDecimalLimit(n, decimals)`: NaN fails; otherwise the
/// digits after the `.` of `JSON.stringify(n)` are counted (so `1e-7` passes).
pub fn is_decimal_limit(n: JsNumber, decimals: usize) -> bool {
    if n.is_nan() {
        return false;
    }
    let text = json_number(n.0);
    text.split('.').nth(1).map_or(0, str::len) <= decimals
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_print_as_javascript_does() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (0.5, "0.5"),
            (-0.0, "0"),
            (0.1, "0.1"),
            (100.0, "100"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (123456789.125, "123456789.125"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
        ];
        for (n, want) in cases {
            assert_eq!(json_number(*n), *want, "{n}");
            assert_eq!(to_canonical_json(&JsNumber(*n)), *want, "{n}");
        }
        assert_eq!(JsNumber(f64::NAN).to_string(), "NaN");
        assert_eq!(JsNumber(f64::INFINITY).to_string(), "Infinity");
    }

    #[test]
    fn canonical_json_prints_parsed_numbers_like_javascript() {
        let v: Value = serde_json::from_str(
            r#"{"a":1.0,"b":0.50,"c":[7,-0.0,1E21],"d":12345678901234567890}"#,
        )
        .unwrap();
        // serde_json sorts object keys (no preserve_order): fine for this test.
        assert_eq!(
            to_canonical_json(&v),
            r#"{"a":1,"b":0.5,"c":[7,0,1e+21],"d":12345678901234567000}"#
        );
    }

    #[test]
    fn strings_escape_like_json_stringify() {
        let s = "q\"b\\s/\u{1}\n\u{2028}é";
        assert_eq!(to_canonical_json(s), "\"q\\\"b\\\\s/\\u0001\\n\u{2028}é\"");
    }

    #[test]
    fn number_coercion_follows_ecmascript() {
        let n = |v: Value| ensure_number(Some(&v)).0;
        assert_eq!(n(json!("31000")), 31000.0);
        assert_eq!(n(json!(" 12 ")), 12.0);
        assert_eq!(n(json!("")), 0.0);
        assert_eq!(n(json!("0x1f")), 31.0);
        assert_eq!(n(json!(true)), 1.0);
        assert_eq!(n(json!(null)), 0.0);
        assert_eq!(n(json!([])), 0.0);
        assert_eq!(n(json!(["5"])), 5.0);
        assert!(n(json!("inf")).is_nan());
        assert!(n(json!("abc")).is_nan());
        assert!(n(json!({})).is_nan());
        assert!(ensure_number(None).is_nan());
        assert_eq!(n(json!("-Infinity")), f64::NEG_INFINITY);
    }

    #[test]
    fn string_boolean_and_object_coercion() {
        assert_eq!(ensure_string(Some(&json!(5))), Some("5".to_string()));
        assert_eq!(ensure_string(Some(&json!(null))), Some("null".to_string()));
        assert_eq!(ensure_string(None), None);
        assert_eq!(ensure_boolean(Some(&json!("1"))), Some(true));
        assert_eq!(ensure_boolean(Some(&json!(0))), Some(false));
        assert_eq!(ensure_boolean(Some(&json!("yes"))), None);
        assert_eq!(ensure_object(Some(&json!("[1,2]"))), json!([1, 2]));
        assert_eq!(ensure_object(Some(&json!("nope"))), json!({}));
        assert_eq!(ensure_object(Some(&json!(7))), json!({}));
        assert_eq!(to_js_string(Some(&json!([1, null, "a"]))), "1,,a");
        assert_eq!(to_js_string(None), "undefined");
    }

    #[test]
    fn decimal_limit_counts_printed_decimals() {
        assert!(is_decimal_limit(JsNumber(0.5), 8));
        assert!(!is_decimal_limit(JsNumber(0.5), 0));
        assert!(is_decimal_limit(JsNumber(31000.0), 0));
        assert!(is_decimal_limit(JsNumber(1e-7), 0));
        assert!(!is_decimal_limit(JsNumber(0.123456789), 8));
        assert!(!is_decimal_limit(JsNumber(f64::NAN), 8));
    }

    #[test]
    fn length_counts_utf16_units() {
        assert_eq!(js_len("abc"), 3);
        assert_eq!(js_len("é"), 1);
        assert_eq!(js_len("😀"), 2);
    }
}
