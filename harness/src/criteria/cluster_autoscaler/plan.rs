//! What the `cluster-autoscaler` probe asks of the autoscaler, read from the submission
//! alone: the work no node fits (and its node group), the node groups' sizes and the
//! unneeded time the submission configures (capped), the pod whose protection from
//! scale-down (`safe-to-evict: "false"`, a PodDisruptionBudget) is put to the test, and
//! the serving workload that must stay off the GPU nodes the autoscaler adds.

use crate::cluster::GPU_RESOURCE;
use crate::cluster::autoscaler::{CPU_GROUP, GPU_GROUP, GroupSize};
use crate::submission::quantity::parse_quantity;
use crate::submission::{Object, Submission, Typed};
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;
use std::time::Duration;

/// The unneeded time when the submission configures none: one minute.
pub const DEFAULT_UNNEEDED: Duration = Duration::from_secs(60);
/// The longest unneeded time the probe waits out (a student's 10 or 30 minutes would
/// hold the cluster's one autoscaler that long).
pub const MAX_UNNEEDED: Duration = Duration::from_secs(120);
/// Pods that need at least this much CPU go to the CPU pool's nodes (4 CPU): more than
/// the real nodes give a probe.
pub const LARGE_CPU_CORES: f64 = 2.0;
/// The most nodes the probe lets a group have (each is a simulated node, but the work
/// it takes is real scheduling, and the probe holds the cluster's one autoscaler).
pub const MAX_GROUP_NODES: u32 = 3;
/// The annotation that keeps the autoscaler from draining a pod's node.
pub const SAFE_TO_EVICT: &str = "cluster-autoscaler.kubernetes.io/safe-to-evict";

/// The work the probe gives the autoscaler.
pub struct Plan<'a> {
    pub workload: &'a Object,
    pub group: &'static str,
    pub unneeded_time: Duration,
    /// The work's group's sizes, as the probe configures them.
    pub size: GroupSize,
    pub protection: Option<Protection<'a>>,
    /// A serving workload (no GPU) to place beside the GPU work, when the work is a GPU's.
    pub serving: Option<&'a Object>,
    pub notes: Vec<String>,
}

/// The pod whose protection from scale-down is put to the test: one pod carrying the
/// pod-template metadata (labels, annotations) of `source`, left alone on a node the
/// autoscaler added once the work has ended.
pub struct Protection<'a> {
    pub source: &'a Object,
    /// Its pod template carries `safe-to-evict: "false"`.
    pub annotated: bool,
    /// The submission's PodDisruptionBudgets that select its pods.
    pub budgets: Vec<&'a Object>,
    /// Where the submission wrote `safe-to-evict: "false"` on the workload's own metadata
    /// instead of its pod template (no pod ever carries it there).
    pub misplaced_annotation: Option<String>,
}

impl<'a> Plan<'a> {
    pub fn pick(submission: &'a Submission) -> Result<Plan<'a>, String> {
        let (workload, group) = workloads(submission)
            .find(|o| requests(o, GPU_RESOURCE) > 0.0)
            .map(|o| (o, GPU_GROUP))
            .or_else(|| {
                workloads(submission)
                    .find(|o| requests(o, "cpu") >= LARGE_CPU_CORES)
                    .map(|o| (o, CPU_GROUP))
            })
            .ok_or_else(|| {
                format!(
                    "expected a workload that needs a node the cluster does not have yet (Task 6.1: GPU training, or pods requesting {LARGE_CPU_CORES} CPU or more); found none, so nothing would make a Cluster Autoscaler add a node"
                )
            })?;
        let mut notes = Vec::new();
        let unneeded_time = unneeded_time(submission, &mut notes);
        let size = group_size(submission, group, &mut notes)?;
        let protection = protection(submission, workload);
        if protection.is_none() {
            notes.push(format!(
                "the submission protects no pod from scale-down (no pod template with {SAFE_TO_EVICT}: \"false\", no PodDisruptionBudget over a workload): that part is not checked"
            ));
        }
        let serving = (group == GPU_GROUP)
            .then(|| {
                submission.objects.iter().find(|o| {
                    matches!(o.typed, Typed::Deployment(_)) && requests(o, GPU_RESOURCE) == 0.0
                })
            })
            .flatten();
        Ok(Plan {
            workload,
            group,
            unneeded_time,
            size,
            protection,
            serving,
            notes,
        })
    }

    /// How many pods of the work go beyond the existing nodes: one node more than the
    /// group's minimum, so that scale-down has a node to remove (none beyond the max).
    pub fn beyond_existing(&self) -> usize {
        (self.size.min + 1).min(self.size.max).max(1) as usize
    }
}

fn workloads(submission: &Submission) -> impl Iterator<Item = &Object> {
    submission.objects.iter().filter(|o| {
        matches!(
            o.typed,
            Typed::Deployment(_) | Typed::StatefulSet(_) | Typed::Job(_)
        )
    })
}

/// What one pod of `workload` requests of `resource` (summed over its containers).
pub fn requests(workload: &Object, resource: &str) -> f64 {
    workload.pod_template().map_or(0.0, |t| {
        t.spec
            .containers
            .iter()
            .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get(resource))
            .filter_map(|q| parse_quantity(&q.0).ok())
            .sum()
    })
}

fn unneeded_time(submission: &Submission, notes: &mut Vec<String>) -> Duration {
    match configured_unneeded_time(submission) {
        Some((time, at)) if time > MAX_UNNEEDED => {
            notes.push(format!(
                "the submission's scale-down unneeded time ({}s, {at}) is capped at {}s for the probe",
                time.as_secs(),
                MAX_UNNEEDED.as_secs()
            ));
            MAX_UNNEEDED
        }
        Some((time, at)) => {
            notes.push(format!(
                "scale-down unneeded time {}s, from {at}",
                time.as_secs()
            ));
            time
        }
        None => {
            notes.push(format!(
                "the submission sets no --scale-down-unneeded-time: the probe uses {}s",
                DEFAULT_UNNEEDED.as_secs()
            ));
            DEFAULT_UNNEEDED
        }
    }
}

/// Every text of the submission with where it is: scripts, other text, docs, and each
/// object as JSON.
fn texts(submission: &Submission) -> Vec<(String, String)> {
    submission
        .scripts
        .iter()
        .chain(&submission.other_text)
        .chain(&submission.docs)
        .map(|f| (f.path.clone(), f.text.clone()))
        .chain(submission.objects.iter().map(|o| {
            (
                o.location().file.clone(),
                serde_json::to_string(o.value()).unwrap_or_default(),
            )
        }))
        .collect()
}

static UNNEEDED_FLAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"scale-down-unneeded-time[\s=:]+\W?(\d+)\s*(h|m|s)?\b").expect("static regex")
});

/// `--scale-down-unneeded-time` as the submission sets it (a CA Deployment's args, Helm
/// values, a script), and where.
fn configured_unneeded_time(submission: &Submission) -> Option<(Duration, String)> {
    texts(submission)
        .into_iter()
        .find_map(|(path, text)| unneeded_in(&text).map(|time| (time, path)))
}

/// The first `scale-down-unneeded-time` with a value in `text`; a bare number is taken
/// as minutes, as guides write it (the flag itself wants a unit).
pub fn unneeded_in(text: &str) -> Option<Duration> {
    let found = UNNEEDED_FLAG.captures(text)?;
    let number: u64 = found[1].parse().ok()?;
    let seconds = match found.get(2).map(|m| m.as_str()) {
        Some("h") => number.saturating_mul(3600),
        Some("s") => number,
        _ => number.saturating_mul(60),
    };
    Some(Duration::from_secs(seconds))
}

/// `--nodes=MIN:MAX:NAME` (a Cluster Autoscaler's static node groups).
static NODES_FLAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"--nodes[=\s]+(\d+):(\d+):([A-Za-z0-9._/-]+)").expect("static regex")
});
/// "Min: 2 nodes, Max: 20 nodes", "min 0, max 10 nodes", as guides write a pool's size.
static MIN_MAX_PROSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bmin(?:imum)?\b\W{0,3}(\d+)\b[^\n]{0,30}?\bmax(?:imum)?\b\W{0,3}(\d+)\b")
        .expect("static regex")
});
static GPU_WORDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)gpu|nvidia|accelerator").expect("static regex"));
static CPU_WORDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bcpu\b").expect("static regex"));

/// A node group's size as the submission configures it, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredSize {
    pub min: u32,
    pub max: u32,
    pub at: String,
}

/// The submission's size of `group`: a `--nodes` flag first (its name says GPU or not),
/// else a guide's "Min N, Max M" under the pool it describes.
pub fn configured_size(submission: &Submission, group: &str) -> Option<ConfiguredSize> {
    let texts = texts(submission);
    let is_gpu = group == GPU_GROUP;
    let flag = texts.iter().find_map(|(path, text)| {
        NODES_FLAG.captures_iter(text).find_map(|c| {
            (GPU_WORDS.is_match(&c[3]) == is_gpu).then(|| ConfiguredSize {
                min: c[1].parse().unwrap_or(u32::MAX),
                max: c[2].parse().unwrap_or(u32::MAX),
                at: format!("{path} (--nodes={}:{}:{})", &c[1], &c[2], &c[3]),
            })
        })
    });
    flag.or_else(|| {
        submission.docs.iter().find_map(|doc| {
            prose_sizes(&doc.text)
                .into_iter()
                .find(|(gpu, _, _, _)| *gpu == is_gpu)
                .map(|(_, min, max, line)| ConfiguredSize {
                    min,
                    max,
                    at: format!("{}:{line}", doc.path),
                })
        })
    })
}

/// Each "Min N, Max M" in a guide: whether it describes the GPU pool, its numbers and its
/// line. The pool is the nearest mention of GPU or CPU on its line or, going up, on the
/// list items and headings it sits under (a GPU mention wins on one line: "8 vCPU, 1x
/// NVIDIA T4" is a GPU node).
pub fn prose_sizes(text: &str) -> Vec<(bool, u32, u32, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(c) = MIN_MAX_PROSE.captures(line) else {
            continue;
        };
        let (Ok(min), Ok(max)) = (c[1].parse::<u32>(), c[2].parse::<u32>()) else {
            continue;
        };
        let pool = context_lines(&lines, i).into_iter().find_map(|l| {
            if GPU_WORDS.is_match(l) {
                Some(true)
            } else if CPU_WORDS.is_match(l) {
                Some(false)
            } else {
                None
            }
        });
        if let Some(gpu) = pool {
            found.push((gpu, min, max, i + 1));
        }
    }
    found
}

/// Line `i` and, nearest first, the lines it belongs to: the rest of its paragraph
/// above it, then each less-indented list item or heading above.
fn context_lines<'t>(lines: &[&'t str], i: usize) -> Vec<&'t str> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let starts_item = |l: &str| {
        let t = l.trim_start();
        t.starts_with("- ") || t.starts_with("* ") || t.starts_with('#')
    };
    let mut context = vec![lines[i]];
    let mut level = if starts_item(lines[i]) {
        indent(lines[i])
    } else {
        usize::MAX
    };
    for line in lines[..i].iter().rev() {
        if line.trim().is_empty() {
            if level == usize::MAX {
                break;
            }
            continue;
        }
        let heading = line.trim_start().starts_with('#');
        if level == usize::MAX {
            // Still in the paragraph or item of line i.
            context.push(line);
            if starts_item(line) {
                level = if heading { 0 } else { indent(line) };
            }
        } else if heading || (starts_item(line) && indent(line) < level) {
            context.push(line);
            level = if heading { 0 } else { indent(line) };
        }
        if level == 0 && heading {
            break;
        }
    }
    context
}

/// The size the probe gives `group`: the submission's (capped: at most
/// [`MAX_GROUP_NODES`], a min below the max so that one node can go), else 0 to the cap.
fn group_size(
    submission: &Submission,
    group: &'static str,
    notes: &mut Vec<String>,
) -> Result<GroupSize, String> {
    let Some(configured) = configured_size(submission, group) else {
        notes.push(format!(
            "the submission gives the {group} group no min/max: the probe uses 0..{MAX_GROUP_NODES}"
        ));
        return Ok(GroupSize {
            group,
            min: 0,
            max: MAX_GROUP_NODES,
        });
    };
    if configured.min > configured.max {
        return Err(format!(
            "the {group} node group's min ({}) is above its max ({}) at {}: a Cluster Autoscaler refuses such a group",
            configured.min, configured.max, configured.at
        ));
    }
    let max = configured.max.min(MAX_GROUP_NODES);
    let min = configured.min.min(MAX_GROUP_NODES - 1).min(max);
    if (min, max) == (configured.min, configured.max) {
        notes.push(format!(
            "{group} group: min {min}, max {max}, from {}",
            configured.at
        ));
    } else {
        notes.push(format!(
            "{group} group: the submission's min {}, max {} ({}) are capped at min {min}, max {max} for the probe",
            configured.min, configured.max, configured.at
        ));
    }
    Ok(GroupSize { group, min, max })
}

/// The pod-template annotations of a workload.
fn template_annotations(workload: &Object) -> Option<&serde_json::Map<String, Value>> {
    let pointer = workload.pod_template()?.pointer;
    let metadata = pointer.strip_suffix("/spec")?;
    workload
        .value()
        .pointer(&format!("{metadata}/metadata/annotations"))?
        .as_object()
}

fn says_not_safe(annotations: Option<&serde_json::Map<String, Value>>) -> bool {
    annotations
        .and_then(|a| a.get(SAFE_TO_EVICT))
        .and_then(Value::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case("false"))
}

/// The pod whose protection is tested: the work's own if it is protected, else the first
/// protected workload (by annotation, then by a PodDisruptionBudget), else one whose
/// annotation sits on its own metadata, where it protects nothing.
fn protection<'a>(submission: &'a Submission, work: &'a Object) -> Option<Protection<'a>> {
    let budgets_of = |w: &Object| -> Vec<&'a Object> {
        let labels = w
            .pod_template()
            .and_then(|t| t.labels.cloned())
            .unwrap_or_default();
        submission
            .objects
            .iter()
            .filter(|o| {
                matches!(&o.typed, Typed::PodDisruptionBudget(pdb)
                if o.same_namespace(w.namespace.as_deref())
                    && pdb.spec.as_ref().and_then(|s| s.selector.as_ref()).is_some_and(|s| {
                        !crate::submission::selector::is_empty(s)
                            && crate::submission::selector::matches(s, &labels)
                    }))
            })
            .collect()
    };
    let candidates = || {
        std::iter::once(work).chain(workloads(submission).filter(move |o| !std::ptr::eq(*o, work)))
    };
    let annotated = candidates().find(|w| says_not_safe(template_annotations(w)));
    let chosen = annotated.map(|w| (w, true)).or_else(|| {
        candidates()
            .find(|w| !budgets_of(w).is_empty())
            .map(|w| (w, false))
    });
    if let Some((source, annotated)) = chosen {
        return Some(Protection {
            source,
            annotated,
            budgets: budgets_of(source),
            misplaced_annotation: None,
        });
    }
    candidates()
        .find(|w| says_not_safe(w.value().pointer("/metadata/annotations").and_then(Value::as_object)))
        .map(|source| Protection {
            source,
            annotated: false,
            budgets: Vec::new(),
            misplaced_annotation: Some(format!(
                "{} carries {SAFE_TO_EVICT}: \"false\" on its own metadata ({}), not on its pod template: its pods never do",
                source.describe(),
                source.locate("/metadata/annotations")
            )),
        })
}

#[cfg(test)]
mod tests;
