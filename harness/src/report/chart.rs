//! The replica timeline of a probe as a picture: a Mermaid `xychart-beta` that GitHub
//! renders in a step summary or a Markdown file (no image hosting), and an SVG drawn with
//! plotters (its SVG backend alone: no fonts or system libraries) written beside the
//! report. One chart per scale target of a timeline: `spec.replicas` (what was asked
//! for) and the ready replicas, stepped, over the probe's seconds.
//!
//! Names in a timeline (the Deployment's, the criterion's) are the student's: labels keep
//! letters, digits and ` ._:/()-` and nothing else, so they can end neither a Mermaid
//! string nor the code fence around it, and the SVG backend escapes its text again.

use super::RenderError;
use super::markdown::text;
use crate::timeline::{Observation, Timeline};
use std::fmt::Write as _;

/// The most points a Mermaid chart gets: the step function is sampled evenly.
pub const MAX_MERMAID_POINTS: usize = 60;

/// One scale target's replicas over one probe's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaChart {
    /// The criterion (or test) whose probe recorded the timeline.
    pub criterion: String,
    /// The scale target (`Deployment/fraud-detector`, as the timeline names it).
    pub target: String,
    /// Every observation of the target: (seconds, `spec.replicas`, ready replicas).
    pub points: Vec<(f64, i32, i32)>,
    /// The timeline's last second (the chart's right edge).
    pub end: f64,
}

impl ReplicaChart {
    /// One chart per scale target seen in `timeline`, in the order they were first seen.
    pub fn from_timeline(criterion: &str, timeline: &Timeline) -> Vec<ReplicaChart> {
        let end = timeline
            .samples
            .iter()
            .map(|s| s.t)
            .filter(|t| t.is_finite())
            .fold(0.0_f64, f64::max);
        let mut charts: Vec<ReplicaChart> = Vec::new();
        for sample in &timeline.samples {
            let Observation::Scale {
                target,
                replicas,
                ready_replicas,
                ..
            } = &sample.what
            else {
                continue;
            };
            // The suite's own workloads (a KEDA probe's queue) are not the student's.
            let name = target.rsplit('/').next().unwrap_or(target);
            if !sample.t.is_finite() || name.starts_with(crate::cluster::RESERVED_NAME_PREFIX) {
                continue;
            }
            let point = (sample.t.max(0.0), *replicas, *ready_replicas);
            match charts.iter_mut().find(|c| &c.target == target) {
                Some(chart) => chart.points.push(point),
                None => charts.push(ReplicaChart {
                    criterion: criterion.to_string(),
                    target: target.clone(),
                    points: vec![point],
                    end,
                }),
            }
        }
        for chart in &mut charts {
            chart
                .points
                .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        }
        charts
    }

    /// `(replicas, ready)` at `t`: the last observation at or before it (the first one
    /// before the first).
    fn at(&self, t: f64) -> (i32, i32) {
        let mut value = self.points.first().map_or((0, 0), |p| (p.1, p.2));
        for point in &self.points {
            if point.0 > t {
                break;
            }
            value = (point.1, point.2);
        }
        value
    }

    fn highest(&self) -> i32 {
        self.points
            .iter()
            .map(|p| p.1.max(p.2))
            .max()
            .unwrap_or(0)
            .max(1)
    }

    /// The chart's title: criterion and target, as a label.
    pub fn title(&self) -> String {
        label(&format!("{}: {} replicas", self.criterion, self.target))
    }

    /// A file name for its SVG: `<criterion>--<target>.svg`, safe characters only.
    pub fn file_name(&self) -> String {
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(60)
                .collect()
        };
        format!("{}--{}.svg", safe(&self.criterion), safe(&self.target))
    }

    /// A fenced Mermaid `xychart-beta`: replicas and ready replicas sampled at up to
    /// [`MAX_MERMAID_POINTS`] evenly spaced seconds from 0 to the timeline's end.
    pub fn to_mermaid(&self) -> String {
        let end = self.end.max(1.0);
        let n = MAX_MERMAID_POINTS;
        let samples: Vec<(i32, i32)> = (0..n)
            .map(|i| self.at(end * i as f64 / (n - 1) as f64))
            .collect();
        let series = |pick: fn(&(i32, i32)) -> i32| {
            samples
                .iter()
                .map(|s| pick(s).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = String::from("```mermaid\nxychart-beta\n");
        let _ = writeln!(out, "    title \"{}\"", self.title());
        let _ = writeln!(out, "    x-axis \"seconds\" 0 --> {}", end.ceil() as u64);
        let _ = writeln!(out, "    y-axis \"replicas\" 0 --> {}", self.highest() + 1);
        let _ = writeln!(out, "    line [{}]", series(|s| s.0));
        let _ = writeln!(out, "    line [{}]", series(|s| s.1));
        out.push_str("```\n");
        out
    }

    /// The chart as an SVG document: both series stepped, every observation kept.
    pub fn to_svg(&self) -> Result<String, RenderError> {
        use plotters::prelude::*;
        let error = |e: &dyn std::fmt::Display| RenderError {
            format: "SVG",
            message: e.to_string(),
        };
        let end = self.end.max(1.0);
        // Room above the highest line for the legend.
        let top = self.highest() + 1 + (self.highest() + 2) / 3;
        let stepped = |pick: fn(&(f64, i32, i32)) -> i32| {
            let mut line: Vec<(f64, i32)> = Vec::new();
            for point in &self.points {
                if let Some(&(_, previous)) = line.last() {
                    line.push((point.0, previous));
                }
                line.push((point.0, pick(point)));
            }
            if let Some(&(_, last)) = line.last() {
                line.push((end, last));
            }
            line
        };
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (800, 360)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| error(&e))?;
            let mut chart = ChartBuilder::on(&root)
                .caption(self.title(), ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(44)
                .build_cartesian_2d(0.0..end, 0..top)
                .map_err(|e| error(&e))?;
            chart
                .configure_mesh()
                .x_desc("seconds since the probe started")
                .y_desc("replicas")
                .draw()
                .map_err(|e| error(&e))?;
            // Ready first, wide and light; spec.replicas over it, narrow and dark: where
            // they are equal both stay visible.
            let ready = RGBColor(120, 200, 120);
            chart
                .draw_series(LineSeries::new(stepped(|p| p.2), ready.stroke_width(5)))
                .map_err(|e| error(&e))?
                .label("ready replicas")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], ready.stroke_width(5))
                });
            chart
                .draw_series(LineSeries::new(stepped(|p| p.1), BLUE.stroke_width(2)))
                .map_err(|e| error(&e))?
                .label("spec.replicas")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(|e| error(&e))?;
            root.present().map_err(|e| error(&e))?;
        }
        Ok(svg)
    }
}

/// A step-summary section: per chart a heading, the Mermaid chart and, when given, a
/// link to its SVG (`svg_dir` relative to the Markdown file).
pub fn charts_markdown(charts: &[ReplicaChart], svg_dir: Option<&str>) -> String {
    if charts.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n### Replica timelines\n\n");
    out.push_str(
        "First line: `spec.replicas` (what was asked for); second line: ready replicas.\n",
    );
    for chart in charts {
        let _ = writeln!(
            out,
            "\n#### {}: {}\n",
            text(&chart.criterion),
            text(&chart.target)
        );
        out.push_str(&chart.to_mermaid());
        if let Some(dir) = svg_dir {
            let _ = writeln!(out, "\nSVG: `{}/{}`", label(dir), chart.file_name());
        }
    }
    out
}

/// Text for a chart label: letters, digits and ` ._:/()-` kept, anything else `_`, at
/// most 100 characters.
pub fn label(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._:/()-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Timeline {
        let mut timeline = Timeline::new("hpa-cpu", "2026-11-30T00:00:00Z");
        let scale = |replicas, ready| Observation::Scale {
            target: "Deployment/fraud-detector".into(),
            replicas,
            ready_replicas: ready,
            manager: None,
        };
        timeline.push(0.0, scale(1, 1));
        timeline.push(
            10.0,
            Observation::Marker {
                label: "load-start".into(),
            },
        );
        timeline.push(40.0, scale(4, 1));
        timeline.push(70.0, scale(4, 4));
        timeline.push(400.0, scale(1, 1));
        timeline.push(
            420.0,
            Observation::Marker {
                label: "end".into(),
            },
        );
        timeline
    }

    #[test]
    fn the_suites_own_workloads_are_not_charted() {
        let mut timeline = known();
        timeline.push(
            5.0,
            Observation::Scale {
                target: "autoscale-conformance-sandbox-queue".into(),
                replicas: 1,
                ready_replicas: 1,
                manager: None,
            },
        );
        let charts = ReplicaChart::from_timeline("keda-scale-to-zero", &timeline);
        let targets: Vec<&str> = charts.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(targets, ["Deployment/fraud-detector"]);
    }

    #[test]
    fn a_known_timeline_charts_its_steps() {
        let charts = ReplicaChart::from_timeline("hpa-cpu", &known());
        assert_eq!(charts.len(), 1);
        let chart = &charts[0];
        assert_eq!(chart.end, 420.0);
        assert_eq!(chart.at(0.0), (1, 1));
        assert_eq!(chart.at(39.9), (1, 1));
        assert_eq!(chart.at(50.0), (4, 1));
        assert_eq!(chart.at(100.0), (4, 4));
        assert_eq!(chart.at(410.0), (1, 1));
        let mermaid = chart.to_mermaid();
        assert!(
            mermaid.starts_with("```mermaid\nxychart-beta\n"),
            "{mermaid}"
        );
        assert!(mermaid.contains("    title \"hpa-cpu: Deployment/fraud-detector replicas\"\n"));
        assert!(mermaid.contains("    x-axis \"seconds\" 0 --> 420\n"));
        assert!(mermaid.contains("    y-axis \"replicas\" 0 --> 5\n"));
        let lines: Vec<&str> = mermaid
            .lines()
            .filter(|l| l.starts_with("    line ["))
            .collect();
        assert_eq!(lines.len(), 2);
        for line in &lines {
            assert_eq!(line.matches(',').count(), MAX_MERMAID_POINTS - 1);
        }
        // 420 s over 59 steps: sample 5 is at 35.6 s (1), sample 6 at 42.7 s (4).
        let replicas: Vec<&str> = lines[0]
            .trim_start_matches("    line [")
            .trim_end_matches(']')
            .split(", ")
            .collect();
        assert_eq!(&replicas[..7], ["1", "1", "1", "1", "1", "1", "4"]);
        assert_eq!(replicas.last(), Some(&"1"));
        assert!(mermaid.ends_with("```\n"));
        let svg = chart.to_svg().unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
        assert!(svg.contains("hpa-cpu: Deployment/fraud-detector replicas"));
        assert!(svg.contains("<polyline"), "no line drawn");
        assert_eq!(chart.file_name(), "hpa-cpu--Deployment_fraud-detector.svg");
    }

    #[test]
    fn hostile_names_stay_labels() {
        let mut timeline = Timeline::new("t", "");
        timeline.push(
            0.0,
            Observation::Scale {
                target: "x\"]\n```\n<script>alert(1)</script>%%{init}%%".into(),
                replicas: 2,
                ready_replicas: 0,
                manager: None,
            },
        );
        timeline.push(f64::NAN, Observation::Marker { label: "x".into() });
        let charts = ReplicaChart::from_timeline("crit`\n## h", &timeline);
        assert_eq!(charts.len(), 1);
        let mermaid = charts[0].to_mermaid();
        // The fence opens and closes once; the title is one quoted string on one line.
        assert_eq!(mermaid.matches("```").count(), 2, "{mermaid}");
        let title = mermaid.lines().find(|l| l.contains("title")).unwrap();
        assert_eq!(title.matches('"').count(), 2, "{title}");
        assert!(!mermaid.contains('<') && !mermaid.contains('%') && !mermaid.contains('{'));
        let section = charts_markdown(&charts, Some("plots"));
        assert!(!section.lines().any(|l| l.starts_with("## h")), "{section}");
        let svg = charts[0].to_svg().unwrap();
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!charts[0].file_name().contains('/'));
    }

    #[test]
    fn a_timeline_without_scale_observations_has_no_chart() {
        let mut timeline = Timeline::new("t", "");
        timeline.push(1.0, Observation::Marker { label: "x".into() });
        assert!(ReplicaChart::from_timeline("c", &timeline).is_empty());
        assert_eq!(charts_markdown(&[], None), "");
    }
}
