//! When each request of a load run is due: constant rates, linear ramps and sequences of them.
//!
//! A schedule is a list of stages; each lasts a duration and moves the rate linearly from a
//! start to an end value (equal for a constant stage). Request `k` (from 0) is due at the
//! moment the integral of the rate reaches `k`, so a constant 200 rps for 5 s sends requests
//! at 0, 5 ms, 10 ms, … 4.995 s: exactly 1000.

use std::fmt;
use std::time::Duration;

/// Slack for floating-point sums when counting requests.
const EPSILON: f64 = 1e-9;

/// One stage: `duration` long, rate going linearly from `from_rps` to `to_rps`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub from_rps: f64,
    pub to_rps: f64,
}

impl Stage {
    /// Requests due during the stage (the integral of its rate).
    fn requests(&self) -> f64 {
        (self.from_rps + self.to_rps) / 2.0 * self.duration.as_secs_f64()
    }

    /// Seconds into the stage at which the integral of the rate reaches `count`.
    fn time_of(&self, count: f64) -> f64 {
        if count <= 0.0 {
            return 0.0;
        }
        let seconds = self.duration.as_secs_f64();
        let slope = (self.to_rps - self.from_rps) / seconds;
        // Root of from·t + slope·t²/2 = count, in the form that stays exact when slope → 0.
        let root = (self.from_rps * self.from_rps + 2.0 * slope * count)
            .max(0.0)
            .sqrt();
        2.0 * count / (self.from_rps + root)
    }
}

/// Why a schedule is not valid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the schedule is empty")]
    Empty,
    #[error("stage `{0}` is not DURATION@RATE or DURATION@FROM->TO (e.g. 30s@50 or 1m@0->200)")]
    Syntax(String),
    #[error("stage `{stage}` has an invalid duration: {reason}")]
    Duration { stage: String, reason: String },
    #[error("stage `{0}` has a rate that is not a non-negative number")]
    Rate(String),
    #[error("stage `{0}` lasts zero seconds")]
    ZeroDuration(String),
    #[error("the schedule sends no request (every rate is 0)")]
    NoRequests,
}

/// A sequence of stages.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    stages: Vec<Stage>,
}

impl Schedule {
    /// A constant `rps` for `duration`.
    pub fn constant(rps: f64, duration: Duration) -> Result<Self, ScheduleError> {
        Self::new(vec![Stage {
            duration,
            from_rps: rps,
            to_rps: rps,
        }])
    }

    /// Checks and wraps `stages`.
    pub fn new(stages: Vec<Stage>) -> Result<Self, ScheduleError> {
        if stages.is_empty() {
            return Err(ScheduleError::Empty);
        }
        for stage in &stages {
            let label = format!("{stage}");
            if stage.duration.is_zero() {
                return Err(ScheduleError::ZeroDuration(label));
            }
            for rate in [stage.from_rps, stage.to_rps] {
                if !rate.is_finite() || rate < 0.0 {
                    return Err(ScheduleError::Rate(label));
                }
            }
        }
        let schedule = Self { stages };
        if schedule.total_requests() == 0 {
            return Err(ScheduleError::NoRequests);
        }
        Ok(schedule)
    }

    /// Parses `30s@50,60s@200,1m@200->400`: comma-separated stages, each a humantime
    /// duration, `@`, and a rate or a `FROM->TO` ramp in requests per second.
    pub fn parse(text: &str) -> Result<Self, ScheduleError> {
        let mut stages = Vec::new();
        for part in text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
        {
            let (duration, rates) = part
                .split_once('@')
                .ok_or_else(|| ScheduleError::Syntax(part.to_owned()))?;
            let duration = humantime::parse_duration(duration.trim()).map_err(|error| {
                ScheduleError::Duration {
                    stage: part.to_owned(),
                    reason: error.to_string(),
                }
            })?;
            let rate = |text: &str| -> Result<f64, ScheduleError> {
                text.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|rate| rate.is_finite() && *rate >= 0.0)
                    .ok_or_else(|| ScheduleError::Rate(part.to_owned()))
            };
            let (from_rps, to_rps) = match rates.split_once("->") {
                Some((from, to)) => (rate(from)?, rate(to)?),
                None => {
                    let constant = rate(rates)?;
                    (constant, constant)
                }
            };
            stages.push(Stage {
                duration,
                from_rps,
                to_rps,
            });
        }
        Self::new(stages)
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// Total length of the schedule.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|stage| stage.duration).sum()
    }

    /// The schedule cut at `limit` (the last stage kept is shortened and its ramp cut where
    /// it stands at `limit`).
    pub fn truncated(&self, limit: Duration) -> Result<Self, ScheduleError> {
        let mut kept = Vec::new();
        let mut elapsed = Duration::ZERO;
        for stage in &self.stages {
            if elapsed >= limit {
                break;
            }
            let remaining = limit - elapsed;
            if stage.duration <= remaining {
                kept.push(*stage);
            } else {
                let fraction = remaining.as_secs_f64() / stage.duration.as_secs_f64();
                kept.push(Stage {
                    duration: remaining,
                    from_rps: stage.from_rps,
                    to_rps: stage.from_rps + (stage.to_rps - stage.from_rps) * fraction,
                });
            }
            elapsed += stage.duration;
        }
        Self::new(kept)
    }

    /// Requests the whole schedule sends: those due strictly before its end.
    pub fn total_requests(&self) -> u64 {
        let integral: f64 = self.stages.iter().map(Stage::requests).sum();
        (integral - EPSILON).ceil().max(0.0) as u64
    }

    /// Mean planned rate over the schedule.
    pub fn mean_rps(&self) -> f64 {
        let integral: f64 = self.stages.iter().map(Stage::requests).sum();
        integral / self.duration().as_secs_f64()
    }

    /// When request `index` (from 0) is due, relative to the start; `None` past the end.
    pub fn due_at(&self, index: u64) -> Option<Duration> {
        let mut remaining = index as f64;
        let mut offset = 0.0;
        for stage in &self.stages {
            let in_stage = stage.requests();
            if remaining < in_stage - EPSILON {
                let seconds = offset + stage.time_of(remaining);
                return Some(Duration::from_secs_f64(seconds));
            }
            remaining -= in_stage;
            offset += stage.duration.as_secs_f64();
        }
        None
    }

    /// How many requests are due at or before `elapsed`.
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        let mut count = 0.0;
        let mut left = elapsed.as_secs_f64();
        for stage in &self.stages {
            let seconds = stage.duration.as_secs_f64();
            if left >= seconds {
                count += stage.requests();
                left -= seconds;
            } else {
                let slope = (stage.to_rps - stage.from_rps) / seconds;
                count += stage.from_rps * left + slope * left * left / 2.0;
                left = 0.0;
                break;
            }
        }
        let reached_end = left > 0.0;
        let due = if reached_end {
            (count - EPSILON).ceil()
        } else {
            (count + EPSILON).floor() + 1.0
        };
        (due.max(0.0) as u64).min(self.total_requests())
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let duration = humantime::format_duration(self.duration);
        if self.from_rps == self.to_rps {
            write!(f, "{duration}@{}", self.from_rps)
        } else {
            write!(f, "{duration}@{}->{}", self.from_rps, self.to_rps)
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, stage) in self.stages.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{stage}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Duration, b: f64) -> bool {
        (a.as_secs_f64() - b).abs() < 1e-6
    }

    #[test]
    fn constant_rate_spaces_requests_evenly_and_counts_exactly() {
        let schedule = Schedule::constant(200.0, Duration::from_secs(5)).unwrap();
        assert_eq!(schedule.total_requests(), 1000);
        assert!(close(schedule.due_at(0).unwrap(), 0.0));
        assert!(close(schedule.due_at(1).unwrap(), 0.005));
        assert!(close(schedule.due_at(999).unwrap(), 4.995));
        assert_eq!(schedule.due_at(1000), None);
        assert_eq!(schedule.due_by(Duration::ZERO), 1);
        assert_eq!(schedule.due_by(Duration::from_millis(7)), 2);
        assert_eq!(schedule.due_by(Duration::from_secs(60)), 1000);
    }

    #[test]
    fn fractional_totals_round_up_to_requests_due_before_the_end() {
        // 0, 0.4, 0.8 s are due before 1 s; 1.2 s is not.
        let schedule = Schedule::constant(2.5, Duration::from_secs(1)).unwrap();
        assert_eq!(schedule.total_requests(), 3);
        assert!(close(schedule.due_at(2).unwrap(), 0.8));
        assert_eq!(schedule.due_at(3), None);
    }

    #[test]
    fn stages_parse_and_chain() {
        let schedule = Schedule::parse("30s@50, 1m@200->400,10s@0").unwrap();
        assert_eq!(schedule.stages().len(), 3);
        assert_eq!(schedule.duration(), Duration::from_secs(100));
        assert_eq!(schedule.total_requests(), 1500 + 18_000);
        // The first request of the ramp comes right at its start.
        assert!(close(schedule.due_at(1500).unwrap(), 30.0));
        assert_eq!(schedule.to_string(), "30s@50,1m@200->400,10s@0");
    }

    #[test]
    fn ramp_due_times_invert_the_integral() {
        let schedule = Schedule::parse("10s@0->100").unwrap();
        assert_eq!(schedule.total_requests(), 500);
        // Integral 5·t²: request 125 is due at t = 5 s.
        assert!(close(schedule.due_at(125).unwrap(), 5.0));
        assert_eq!(schedule.due_by(Duration::from_secs(5)), 126);
        let mut previous = Duration::ZERO;
        for index in 0..500 {
            let due = schedule.due_at(index).unwrap();
            assert!(due >= previous);
            previous = due;
        }
        assert!(previous < Duration::from_secs(10));
    }

    #[test]
    fn truncation_cuts_a_ramp_where_it_stands() {
        let schedule = Schedule::parse("10s@0->100,10s@100").unwrap();
        let cut = schedule.truncated(Duration::from_secs(5)).unwrap();
        assert_eq!(cut.stages().len(), 1);
        assert_eq!(cut.stages()[0].to_rps, 50.0);
        assert_eq!(cut.total_requests(), 125);
    }

    #[test]
    fn invalid_schedules_are_refused() {
        assert_eq!(Schedule::parse(""), Err(ScheduleError::Empty));
        assert!(matches!(
            Schedule::parse("30s"),
            Err(ScheduleError::Syntax(_))
        ));
        assert!(matches!(
            Schedule::parse("soon@5"),
            Err(ScheduleError::Duration { .. })
        ));
        assert!(matches!(
            Schedule::parse("5s@-1"),
            Err(ScheduleError::Rate(_))
        ));
        assert!(matches!(
            Schedule::parse("5s@fast"),
            Err(ScheduleError::Rate(_))
        ));
        assert!(matches!(
            Schedule::parse("0s@5"),
            Err(ScheduleError::ZeroDuration(_))
        ));
        assert_eq!(Schedule::parse("5s@0"), Err(ScheduleError::NoRequests));
    }
}
