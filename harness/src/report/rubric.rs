//! The rubric: which checks and live criteria earn how many points, per rubric
//! line. It is data (`harness/rubric.toml`, compiled in), not code. Here it is
//! parsed and its arithmetic checked; that the names it uses exist is checked by
//! `grade`, which knows the checks and the criteria (the report does not).

use serde::Deserialize;
use thiserror::Error;

const RUBRIC_TOML: &str = include_str!("../../rubric.toml");

#[derive(Debug, Error)]
pub enum RubricError {
    #[error("rubric.toml does not parse: {0}")]
    Syntax(#[from] toml::de::Error),
    #[error("rubric.toml is inconsistent: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rubric {
    pub schema: u32,
    #[serde(rename = "line")]
    pub lines: Vec<RubricLine>,
    #[serde(default)]
    pub unscored: Unscored,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Unscored {
    #[serde(default)]
    pub checks: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RubricLine {
    pub id: String,
    pub title: String,
    pub points: f64,
    #[serde(rename = "static", default)]
    pub static_items: Vec<StaticItem>,
    #[serde(default)]
    pub live: Vec<LiveItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StaticItem {
    pub check: String,
    pub points: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LiveItem {
    pub criterion: String,
    pub points: f64,
}

impl Rubric {
    /// The compiled-in rubric, its points checked (not its names: see
    /// `grade::rubric`, which grading uses).
    pub fn builtin() -> Result<Rubric, RubricError> {
        let rubric: Rubric = toml::from_str(RUBRIC_TOML)?;
        rubric.validate_points()?;
        Ok(rubric)
    }

    /// The lines add up to 100, and each line's items to the line.
    pub fn validate_points(&self) -> Result<(), RubricError> {
        let total: f64 = self.lines.iter().map(|l| l.points).sum();
        if (total - 100.0).abs() > 1e-9 {
            return Err(RubricError::Invalid(format!(
                "lines add up to {total}, not 100"
            )));
        }
        for line in &self.lines {
            let sum: f64 = line.static_items.iter().map(|i| i.points).sum::<f64>()
                + line.live.iter().map(|i| i.points).sum::<f64>();
            if (sum - line.points).abs() > 1e-9 {
                return Err(RubricError::Invalid(format!(
                    "line {} has {} points but its items add up to {sum}",
                    line.id, line.points
                )));
            }
        }
        Ok(())
    }

    /// Every check the rubric names, scored first (in line order), then unscored.
    pub fn checks(&self) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .flat_map(|l| l.static_items.iter().map(|i| i.check.as_str()))
            .chain(self.unscored.checks.iter().map(String::as_str))
    }

    /// Every live criterion the rubric scores, in line order.
    pub fn live_criteria(&self) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .flat_map(|l| l.live.iter().map(|i| i.criterion.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_that_do_not_add_up_are_refused() {
        let mut rubric = Rubric::builtin().unwrap();
        rubric.lines[0].points += 1.0;
        assert!(rubric.validate_points().is_err());
    }
}
