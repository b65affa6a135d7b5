//! Static checks of `keda-cron`: a KEDA cron trigger has start and end expressions KEDA
//! accepts, a time zone and a replica count; cron expressions are parsed exactly as
//! KEDA's cron scaler reads them.

use super::ID;
use crate::checks::{CheckInfo, Collector, Input, trigger_setting};
use crate::submission::Object;
use crate::submission::crds::KedaTrigger;
use std::fmt;
use std::str::FromStr;

pub const CRON_INVALID: CheckInfo = CheckInfo::error(
    "keda.cron-invalid",
    ID,
    "cron triggers have distinct five-field start/end expressions (no seconds, no @descriptors), an IANA timezone and desiredReplicas ≥ 1",
    "use five-field cron as KEDA parses it (minute hour day month weekday, e.g. `0 9 * * 1-5`), a zone like America/New_York and desiredReplicas ≥ 1",
);

pub const CATALOGUE: &[CheckInfo] = &[CRON_INVALID];

pub fn check(input: &Input<'_>, out: &mut Collector) {
    for (object, triggers) in input.index.keda_triggers() {
        for (i, trigger) in triggers.iter().enumerate() {
            if trigger.type_ == "cron" {
                out.examined(&[CRON_INVALID]);
                cron_trigger_valid(object, i, trigger, out);
            }
        }
    }
}

/// Trigger `i` of `object`, of type cron.
fn cron_trigger_valid(object: &Object, i: usize, trigger: &KedaTrigger, out: &mut Collector) {
    for (key, problem) in cron_trigger_problems(trigger) {
        out.fire(
            &CRON_INVALID,
            object.locate(&format!("/spec/triggers/{i}/metadata/{key}")),
            format!("{} cron trigger {i} {problem}", object.describe()),
        );
    }
}

/// What KEDA would refuse in a cron trigger: (metadata key, why).
fn cron_trigger_problems(trigger: &KedaTrigger) -> Vec<(&'static str, String)> {
    let field = |name: &str| trigger_setting(trigger, name);
    let mut problems = Vec::new();
    match field("timezone") {
        None => problems.push(("timezone", "has no timezone".to_string())),
        Some(zone) if chrono_tz::Tz::from_str(zone).is_err() => problems.push((
            "timezone",
            format!("timezone `{zone}` is not an IANA time zone name"),
        )),
        _ => {}
    }
    for key in ["start", "end"] {
        match field(key) {
            None => problems.push((key, format!("has no {key} expression"))),
            Some(expression) => {
                if let Some(problem) = cron_problem(expression) {
                    problems.push((key, format!("{key}: {problem}")));
                }
            }
        }
    }
    // KEDA's cronMetadata.Validate refuses identical start and end.
    if let (Some(start), Some(end)) = (field("start"), field("end"))
        && start == end
    {
        problems.push((
            "end",
            format!("start and end are both `{start}`, so the window is empty (KEDA rejects it)"),
        ));
    }
    // KEDA reads desiredReplicas as an integer and refuses 0
    // ("no desiredReplicas specified"): outside the window the
    // workload returns to minReplicaCount anyway.
    match field("desiredReplicas") {
        None => problems.push(("desiredReplicas", "has no desiredReplicas".to_string())),
        Some(n) => match n.parse::<i64>() {
            Ok(count) if count >= 1 => {}
            Ok(count) => problems.push((
                "desiredReplicas",
                format!("desiredReplicas is {count}; KEDA requires at least 1 (to scale to zero outside a window, set minReplicaCount 0 and let the window end)"),
            )),
            Err(_) => problems.push((
                "desiredReplicas",
                format!("desiredReplicas `{n}` is not an integer"),
            )),
        },
    }
    problems
}

fn cron_problem(expression: &str) -> Option<String> {
    parse(expression)
        .err()
        .map(|e| format!("`{expression}` {e}"))
}

// Cron expressions exactly as KEDA's cron scaler reads them.
//
// KEDA validates `start`/`end` with robfig/cron v3's
// `NewParser(Minute | Hour | Dom | Month | Dow)`: five fields, no seconds, and
// no descriptors (`@daily` is rejected: the `Descriptor` option is not set).
// A general-purpose cron crate accepts more than that (seconds, `L`, `W`,
// `#`, descriptors, 7 for Sunday), so the grammar is re-stated here, field by
// field, with robfig's bounds and its quirks (`?` means `*`, `N/step` means
// `N-max/step`, names are case-insensitive, empty list items are skipped).

/// Why KEDA would refuse an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronError {
    Empty,
    /// `@daily`, `@every 1h`, …: robfig accepts them only with `Descriptor`.
    Descriptor(String),
    FieldCount(usize),
    BadZone(String),
    Field {
        field: &'static str,
        expr: String,
        why: String,
    },
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CronError::Empty => write!(f, "is empty"),
            CronError::Descriptor(d) => {
                write!(
                    f,
                    "is a descriptor; KEDA's cron scaler accepts only five-field expressions"
                )?;
                match five_field_equivalent(d) {
                    Some(equivalent) => write!(f, " (write `{equivalent}`)"),
                    None => Ok(()),
                }
            }
            CronError::FieldCount(n) => write!(
                f,
                "has {n} fields; KEDA's cron scaler takes five (minute hour day month weekday){}",
                if *n == 6 {
                    ", without a seconds field"
                } else {
                    ""
                }
            ),
            CronError::BadZone(z) => {
                write!(f, "names the unknown time zone `{z}` in its TZ= prefix")
            }
            CronError::Field { field, expr, why } => {
                write!(f, "has an invalid {field} field `{expr}`: {why}")
            }
        }
    }
}

/// What robfig's descriptors mean, for the hint.
fn five_field_equivalent(descriptor: &str) -> Option<&'static str> {
    Some(match descriptor.trim() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    })
}

struct Bounds {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MONTH_NAMES: &[(&str, u32)] = &[
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("may", 5),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];
const DOW_NAMES: &[(&str, u32)] = &[
    ("sun", 0),
    ("mon", 1),
    ("tue", 2),
    ("wed", 3),
    ("thu", 4),
    ("fri", 5),
    ("sat", 6),
];

const FIELDS: [Bounds; 5] = [
    Bounds {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Bounds {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Bounds {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    },
    Bounds {
        name: "month",
        min: 1,
        max: 12,
        names: MONTH_NAMES,
    },
    Bounds {
        name: "day-of-week",
        min: 0,
        max: 6,
        names: DOW_NAMES,
    },
];

/// Parses like robfig's `Parser.Parse` with KEDA's options; `Ok` means KEDA accepts it.
pub fn parse(spec: &str) -> Result<(), CronError> {
    if spec.is_empty() {
        return Err(CronError::Empty);
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        // robfig slices up to the first space; without one, Go would panic and
        // KEDA's webhook would fail: either way it does not schedule.
        let Some(space) = spec.find(' ') else {
            return Err(CronError::FieldCount(0));
        };
        let eq = spec.find('=').unwrap_or(0);
        let zone = &spec[eq + 1..space];
        if zone.parse::<chrono_tz::Tz>().is_err() && zone != "UTC" && zone != "Local" {
            return Err(CronError::BadZone(zone.to_string()));
        }
        spec = spec[space..].trim();
    }
    if spec.starts_with('@') {
        return Err(CronError::Descriptor(spec.to_string()));
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != FIELDS.len() {
        return Err(CronError::FieldCount(fields.len()));
    }
    for (text, bounds) in fields.iter().zip(FIELDS.iter()) {
        field(text, bounds).map_err(|why| CronError::Field {
            field: bounds.name,
            expr: (*text).to_string(),
            why,
        })?;
    }
    Ok(())
}

/// A comma-separated list of ranges (robfig `getField`: empty items are skipped).
fn field(text: &str, bounds: &Bounds) -> Result<(), String> {
    for expr in text.split(',').filter(|e| !e.is_empty()) {
        range(expr, bounds)?;
    }
    Ok(())
}

/// `*` | `?` | number [`-` number] [`/` step] (robfig `getRange`).
fn range(expr: &str, bounds: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (bounds.min, bounds.max)
    } else {
        let start = number_or_name(low_and_high[0], bounds)?;
        match low_and_high.len() {
            1 => (start, start),
            2 => (start, number_or_name(low_and_high[1], bounds)?),
            _ => return Err(format!("too many hyphens in `{expr}`")),
        }
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            if single {
                // "N/step" means "N-max/step".
                end = bounds.max;
            }
            number(range_and_step[1])?
        }
        _ => return Err(format!("too many slashes in `{expr}`")),
    };
    if start < bounds.min {
        return Err(format!("{start} is below the minimum {}", bounds.min));
    }
    if end > bounds.max {
        return Err(format!("{end} is above the maximum {}", bounds.max));
    }
    if start > end {
        return Err(format!("the range starts at {start}, after its end {end}"));
    }
    if step == 0 {
        return Err("a step must be a positive number".to_string());
    }
    Ok(())
}

fn number_or_name(text: &str, bounds: &Bounds) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some((_, value)) = bounds.names.iter().find(|(name, _)| *name == lower) {
        return Ok(*value);
    }
    number(text)
}

/// Go's `strconv.Atoi` (an optional sign, decimal digits), then "not negative".
fn number(text: &str) -> Result<u32, String> {
    let value: i64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if value < 0 {
        return Err(format!("negative number {value}"));
    }
    u32::try_from(value).map_err(|_| format!("{value} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("0 9 * * 1-5")]
    #[case("0 22 * * *")]
    #[case("*/15 8-17 * * MON-FRI")]
    #[case("0 8 * * mon,wed,fri")]
    #[case("30 1 1,15 JAN-DEC ?")]
    #[case("5/10 * * * *")]
    #[case("0 0 1-31/2 * SUN")]
    #[case("0,,30 * * * *")]
    #[case("TZ=Europe/Berlin 0 9 * * *")]
    #[case("+5 * * * *")]
    fn keda_accepts(#[case] expression: &str) {
        assert_eq!(parse(expression), Ok(()), "{expression}");
    }

    #[rstest]
    #[case("", "is empty")]
    #[case("@daily", "write `0 0 * * *`")]
    #[case("@every 1h", "descriptor")]
    #[case("0 0 9 * * 1-5", "6 fields")]
    #[case("0 9 * *", "4 fields")]
    #[case("61 9 * * *", "minute")]
    #[case("0 24 * * *", "hour")]
    #[case("0 0 0 * *", "day-of-month")]
    #[case("0 0 L * *", "day-of-month")]
    #[case("0 0 * 13 *", "month")]
    #[case("0 0 * * 7", "day-of-week")]
    #[case("0 0 * * 1#2", "day-of-week")]
    #[case("0 0 * * 5-1", "day-of-week")]
    #[case("*/0 * * * *", "minute")]
    #[case("1-2-3 * * * *", "minute")]
    #[case("1/2/3 * * * *", "minute")]
    #[case("-1 * * * *", "minute")]
    #[case("TZ=Mars/Olympus 0 9 * * *", "time zone")]
    fn keda_rejects(#[case] expression: &str, #[case] says: &str) {
        let error = parse(expression).expect_err(expression);
        assert!(
            error.to_string().contains(says),
            "{expression}: `{error}` should mention {says}"
        );
    }

    #[rstest]
    #[case("0 9 * * 1-5", true)]
    #[case("0 22 * * *", true)]
    #[case("@daily", false)]
    #[case("0 0 9 * * 1-5", false)]
    #[case("61 9 * * *", false)]
    #[case("0 9 * *", false)]
    fn cron_expressions_are_five_field(#[case] expression: &str, #[case] valid: bool) {
        assert_eq!(
            cron_problem(expression).is_none(),
            valid,
            "{expression}: {:?}",
            cron_problem(expression)
        );
    }
}
