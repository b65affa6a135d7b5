//! Kubernetes resource quantities ("200m", "4Gi", "1.5", "1e3") as numbers.
//!
//! k8s-openapi keeps `Quantity` as an opaque string, so comparisons (min ≤ max,
//! Σ requests ≤ quota) need this parser. The grammar is the API machinery's:
//! `<sign><digits>[.<digits>]<suffix>` with a binary (Ki…Ei), decimal (n…E)
//! or exponent (e/E<int>) suffix.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
#[error("`{text}` is not a Kubernetes quantity: {reason}")]
pub struct QuantityError {
    pub text: String,
    pub reason: &'static str,
}

/// A quantity as YAML may give it: a string, or a bare number (`cpu: 2`).
pub fn quantity_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Parses a quantity into its value in base units (cores, bytes, count).
pub fn parse_quantity(text: &str) -> Result<f64, QuantityError> {
    let error = |reason| QuantityError {
        text: text.to_string(),
        reason,
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(error("empty"));
    }
    let (sign, unsigned) = match trimmed.as_bytes()[0] {
        b'-' => (-1.0, &trimmed[1..]),
        b'+' => (1.0, &trimmed[1..]),
        _ => (1.0, trimmed),
    };
    let number_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(error("no number before the suffix"));
    }
    let mantissa: f64 = number.parse().map_err(|_| error("malformed number"))?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent if exponent.starts_with(['e', 'E']) => {
            let power: i32 = exponent[1..]
                .parse()
                .map_err(|_| error("malformed exponent"))?;
            if !(-30..=30).contains(&power) {
                return Err(error("exponent out of range"));
            }
            10f64.powi(power)
        }
        _ => return Err(error("unknown suffix")),
    };
    let value = sign * mantissa * multiplier;
    // A mantissa of hundreds of digits overflows to infinity: no quantity is that big,
    // and every caller's arithmetic assumes a finite number.
    if !value.is_finite() {
        return Err(error("out of range"));
    }
    Ok(value)
}

/// Formats a number of base units for messages: cores as millicores when
/// fractional, bytes in the largest whole binary unit.
pub fn format_quantity(resource: &str, value: f64) -> String {
    if resource.contains("memory") || resource.contains("storage") {
        for (unit, size) in [
            ("Gi", 1024f64.powi(3)),
            ("Mi", 1024f64.powi(2)),
            ("Ki", 1024.0),
        ] {
            if value.abs() >= size {
                let scaled = value / size;
                return if scaled.fract().abs() < 1e-9 {
                    format!("{scaled:.0}{unit}")
                } else {
                    format!("{scaled:.2}{unit}")
                };
            }
        }
        format!("{value:.0}")
    } else if value.fract().abs() > 1e-9 && value.abs() < 1.0 {
        format!("{:.0}m", value * 1000.0)
    } else if value.fract().abs() > 1e-9 {
        // 28.5 reads better next to a quota of "20" than 28500m.
        let cores = format!("{value:.3}");
        cores.trim_end_matches('0').to_string()
    } else {
        format!("{value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("200m", 0.2)]
    #[case("1", 1.0)]
    #[case("1.5", 1.5)]
    #[case("4Gi", 4.0 * 1024.0 * 1024.0 * 1024.0)]
    #[case("256Mi", 256.0 * 1024.0 * 1024.0)]
    #[case("1e3", 1000.0)]
    #[case("2k", 2000.0)]
    #[case("+3", 3.0)]
    #[case("-100m", -0.1)]
    #[case("500M", 5e8)]
    #[case(".5", 0.5)]
    fn parses_quantities(#[case] text: &str, #[case] expected: f64) {
        let value = parse_quantity(text).unwrap();
        assert!(
            (value - expected).abs() < 1e-9 * expected.abs().max(1.0),
            "{text} → {value}"
        );
    }

    #[rstest]
    #[case("")]
    #[case("30%")]
    #[case("1Gb")]
    #[case("abc")]
    #[case("1.2.3")]
    #[case("m")]
    #[case("1e")]
    #[case(&format!("{}E", "9".repeat(400)))]
    fn rejects_non_quantities(#[case] text: &str) {
        assert!(parse_quantity(text).is_err(), "{text} parsed");
    }

    #[rstest]
    #[case("cpu", 0.2, "200m")]
    #[case("cpu", 4.0, "4")]
    #[case("requests.cpu", 28.5, "28.5")]
    #[case("cpu", 12.25, "12.25")]
    #[case("cpu", -8.5, "-8.5")]
    #[case("cpu", -0.5, "-500m")]
    #[case("memory", 40.0 * 1024.0 * 1024.0 * 1024.0, "40Gi")]
    #[case("requests.memory", 1.5 * 1024.0 * 1024.0, "1.50Mi")]
    fn formats_for_messages(#[case] resource: &str, #[case] value: f64, #[case] text: &str) {
        assert_eq!(format_quantity(resource, value), text);
    }
}
