//! Loading a submission directory: the walk (depth, file count and symlink
//! guards), each file's read (size, binary and UTF-8 guards), YAML and JSON
//! parsing, and the order of it all. What a file is, what kustomizations do to
//! it and how an object is typed are the sibling modules' business.

use super::classify::{self, FileKind};
use super::kustomize::Kustomizations;
use super::yaml::{self, Document, Position, YamlProblem, YamlProblemKind};
use super::{LoadOptions, Submission, TextFile, input_finding, monitoring, objects, relative};
use crate::verdict::Location;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Loads a submission directory. Problems with individual files are findings;
/// only an unreadable root is an error.
pub fn load(root: &Path, options: &LoadOptions) -> std::io::Result<Submission> {
    let root = root.canonicalize()?;
    if !root.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", root.display()),
        ));
    }
    let mut loader = Loader {
        options,
        submission: Submission {
            root: root.clone(),
            ..Submission::default()
        },
        kustomizations: Kustomizations::default(),
    };
    let mut files = Vec::new();
    loader.walk(&root, 0, &mut files);
    loader.kustomizations = Kustomizations::read(&root, &files, options);
    for path in files {
        loader.load_file(&path);
    }
    loader.report_duplicates();
    Ok(loader.submission)
}

struct Loader<'a> {
    options: &'a LoadOptions,
    submission: Submission,
    /// Read before any other file, so that patches are not loaded as objects.
    kustomizations: Kustomizations,
}

impl Loader<'_> {
    fn finding(&mut self, check: &str, location: Location, message: String, hint: &str) {
        self.submission
            .findings
            .push(input_finding(check, location, message, hint));
    }

    /// Collects regular files, sorted, without following symlinks.
    fn walk(&mut self, dir: &Path, depth: usize, files: &mut Vec<PathBuf>) {
        let root = self.submission.root.clone();
        if depth > self.options.max_dir_depth {
            self.finding(
                "input.too-large",
                Location::file(relative(&root, dir)),
                format!(
                    "directory nesting deeper than {} levels; not read",
                    self.options.max_dir_depth
                ),
                "flatten the repository layout",
            );
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if matches!(name.as_str(), ".git" | "node_modules" | "target") {
                continue;
            }
            let Ok(metadata) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if metadata.file_type().is_symlink() {
                self.report_symlink_outside(dir, &path);
                continue;
            }
            if metadata.is_dir() {
                self.walk(&path, depth + 1, files);
            } else if metadata.is_file() {
                if files.len() >= self.options.max_files {
                    self.finding(
                        "input.too-large",
                        Location::file(relative(&root, &path)),
                        format!(
                            "more than {} files; the rest are not read",
                            self.options.max_files
                        ),
                        "remove generated or vendored files from the submission",
                    );
                    return;
                }
                files.push(path);
            }
        }
    }

    /// Symbolic links are never followed. One that leaves the submission is
    /// worth telling.
    fn report_symlink_outside(&mut self, dir: &Path, path: &Path) {
        let root = &self.submission.root;
        let target = std::fs::read_link(path).unwrap_or_default();
        let resolved = if target.is_absolute() {
            target.clone()
        } else {
            path.parent().unwrap_or(dir).join(&target)
        };
        let inside = resolved
            .canonicalize()
            .map(|p| p.starts_with(root))
            .unwrap_or_else(|_| {
                // Dangling: judge lexically.
                !target.is_absolute()
                    && !target
                        .components()
                        .any(|c| c == std::path::Component::ParentDir)
            });
        if !inside {
            self.finding(
                "input.symlink-outside",
                Location::file(relative(root, path)),
                format!(
                    "symbolic link points outside the submission ({}); not read",
                    target.display()
                ),
                "commit the file itself instead of a link to a path outside the repository",
            );
        }
    }

    fn load_file(&mut self, path: &Path) {
        let rel = relative(&self.submission.root, path);
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if classify::is_media(&extension) {
            return;
        }
        let Some(text) = self.read_text(path, &rel) else {
            return;
        };
        match classify::classify(&self.submission.root, &rel, &extension, &text) {
            FileKind::Doc => self.submission.docs.push(TextFile { path: rel, text }),
            FileKind::Script => self.submission.scripts.push(TextFile { path: rel, text }),
            FileKind::CiWorkflow => {
                // CI steps are shell commands; keep the text for the script checks.
                self.submission.other_text.push(TextFile {
                    path: rel.clone(),
                    text: text.clone(),
                });
                self.load_structured(&rel, &text, false)
            }
            FileKind::HelmTemplate => self.finding(
                "input.helm-template",
                Location::file(rel),
                "a Helm chart template: it is not rendered here, so the objects it defines are not graded".to_string(),
                "commit the rendered manifests as well (`helm template <release> <chart> > rendered.yaml`) so that they are graded",
            ),
            FileKind::Structured { json } => self.load_structured(&rel, &text, json),
            FileKind::OtherText => self
                .submission
                .other_text
                .push(TextFile { path: rel, text }),
        }
    }

    /// The file's text without a byte-order mark; `None`, with a finding, when
    /// it is too large, unreadable, binary or not UTF-8.
    fn read_text(&mut self, path: &Path, rel: &str) -> Option<String> {
        let size = std::fs::symlink_metadata(path)
            .map(|m| m.len())
            .unwrap_or(0);
        if size > self.options.max_file_bytes {
            self.finding(
                "input.too-large",
                Location::file(rel),
                format!(
                    "{size} bytes is over the {} byte limit per file; not read",
                    self.options.max_file_bytes
                ),
                "split the file or remove generated content",
            );
            return None;
        }
        let Ok(bytes) = std::fs::read(path) else {
            self.finding(
                "input.parse-error",
                Location::file(rel),
                "cannot read the file".to_string(),
                "check file permissions",
            );
            return None;
        };
        self.submission.files_read += 1;
        if bytes.contains(&0) {
            self.finding(
                "input.binary",
                Location::file(rel),
                "binary content (NUL bytes) where text was expected; not read".to_string(),
                "commit manifests, scripts and docs as text; remove build artifacts",
            );
            return None;
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => {
                self.finding(
                    "input.not-utf8",
                    first_invalid_utf8(rel, &error),
                    "not valid UTF-8; not read".to_string(),
                    "save the file as UTF-8",
                );
                return None;
            }
        };
        Some(
            text.strip_prefix('\u{feff}')
                .map(str::to_string)
                .unwrap_or(text),
        )
    }

    fn load_structured(&mut self, rel: &str, text: &str, is_json: bool) {
        let Some((documents, problems)) = self.parse_structured(rel, text, is_json) else {
            return;
        };
        self.report_yaml_problems(rel, problems);
        if let Some(kustomization) = self.kustomizations.patch_files.get(rel).cloned() {
            // Syntax problems above still count: `kustomize build` fails on them.
            let location = documents.first().map_or_else(
                || Location::file(rel),
                |d| Location::at(rel, d.start.line, d.start.column),
            );
            self.finding(
                "input.kustomize-patch",
                location,
                format!("{kustomization} applies this file as a patch; it is read as a patch, not graded as an object"),
                "nothing to fix",
            );
            return;
        }
        let labels = self.kustomizations.file_labels.get(rel).cloned();
        for mut document in documents {
            if let Some(labels) = &labels {
                match document
                    .value
                    .get_mut("items")
                    .and_then(Value::as_array_mut)
                {
                    Some(items) => items.iter_mut().for_each(|item| labels.apply(item)),
                    None => labels.apply(&mut document.value),
                }
            }
            let document = Arc::new(document);
            self.load_document(rel, &document, "");
        }
    }

    /// The documents of a YAML or JSON file and the problems reading it;
    /// `None` when it is JSON that does not parse (reported here).
    fn parse_structured(
        &mut self,
        rel: &str,
        text: &str,
        is_json: bool,
    ) -> Option<(Vec<Document>, Vec<YamlProblem>)> {
        // kubectl decodes a document that starts with `{` as JSON, and so do we:
        // YAML would accept JSON mistakes such as a trailing comma.
        let as_json = is_json || text.trim_start().starts_with('{');
        if !as_json {
            let loaded = yaml::load(text, self.options.yaml);
            return Some((loaded.documents, loaded.problems));
        }
        match serde_json::from_str::<Value>(text) {
            Ok(value) => Some((self.json_documents(text, value), Vec::new())),
            Err(error) => {
                let location = Location::at(rel, error.line() as u32, error.column() as u32);
                if text.contains("\"panels\"") {
                    let dashboard = monitoring::unparsable_dashboard(
                        Location::file(rel),
                        rel.to_string(),
                        &error,
                        location,
                    );
                    self.submission.dashboards.push(dashboard);
                } else {
                    self.finding(
                        "input.parse-error",
                        location,
                        format!("not valid JSON: {error}"),
                        "fix the JSON syntax (`jq . <file>` shows the same error)",
                    );
                }
                None
            }
        }
    }

    /// A JSON file as one document. Positions come from the YAML reading of
    /// the same text when it agrees.
    fn json_documents(&self, text: &str, value: Value) -> Vec<Document> {
        let loaded = yaml::load(text, self.options.yaml);
        if loaded.problems.is_empty()
            && loaded.documents.len() == 1
            && loaded.documents[0].value == value
        {
            loaded.documents
        } else {
            vec![Document {
                value,
                start: Position { line: 1, column: 1 },
                positions: Default::default(),
                yaml11_booleans: Vec::new(),
            }]
        }
    }

    fn report_yaml_problems(&mut self, rel: &str, problems: Vec<YamlProblem>) {
        for problem in problems {
            let location = Location::at(rel, problem.position.line, problem.position.column);
            match problem.kind {
                YamlProblemKind::AliasBomb => self.finding(
                    "input.alias-bomb",
                    location,
                    format!("{}; the rest of the file is not read", problem.message),
                    "write the values out; do not nest aliases of aliases",
                ),
                _ => self.finding(
                    "input.parse-error",
                    location,
                    if problem.fatal {
                        format!("{}; the rest of the file is not read", problem.message)
                    } else {
                        problem.message
                    },
                    "fix the YAML syntax (`kubectl apply --dry-run=client -f <file>` shows the same error)",
                ),
            }
        }
    }

    /// The value at `pointer` of a document: a list of objects, an object, or
    /// data that may hold monitoring content.
    fn load_document(&mut self, rel: &str, document: &Arc<Document>, pointer: &str) {
        let Some(value) = document.value.pointer(pointer) else {
            return;
        };
        let api_version = value.get("apiVersion").and_then(Value::as_str);
        let kind = value.get("kind").and_then(Value::as_str);
        if let (Some(api_version), Some(kind)) = (api_version, kind) {
            if kind == "List"
                || (kind.ends_with("List") && value.get("items").is_some_and(Value::is_array))
            {
                let count = value["items"].as_array().map_or(0, Vec::len);
                for index in 0..count {
                    self.load_document(rel, document, &format!("{pointer}/items/{index}"));
                }
                return;
            }
            let submission = &mut self.submission;
            let limits = self.options.yaml;
            objects::load_object(
                submission,
                limits,
                rel,
                document,
                pointer,
                api_version,
                kind,
            );
            return;
        }
        let position = document.locate(pointer);
        let location = Location::at(rel, position.line, position.column);
        let matched = monitoring::collect(
            &mut self.submission,
            value,
            location,
            rel,
            Some(rel.to_string()),
            |p| document.locate(&format!("{pointer}{p}")),
        );
        if !matched {
            monitoring::collect_nested(&mut self.submission, rel, document, pointer, 6);
        }
    }

    /// Objects with the same group, kind, namespace and name: the later one
    /// replaces the earlier on apply.
    fn report_duplicates(&mut self) {
        let mut seen: BTreeMap<(String, String, String, String), Location> = BTreeMap::new();
        let mut findings = Vec::new();
        for object in &self.submission.objects {
            if object.name.is_empty() {
                continue;
            }
            let group = object
                .api_version
                .rsplit_once('/')
                .map(|(g, _)| g)
                .unwrap_or("")
                .to_string();
            let key = (
                group,
                object.kind.clone(),
                object.namespace.clone().unwrap_or_default(),
                object.name.clone(),
            );
            if let Some(first) = seen.get(&key) {
                findings.push(input_finding(
                    "input.duplicate-object",
                    object.location(),
                    format!(
                        "{} is defined twice; the first definition is at {first}",
                        object.describe()
                    ),
                    "keep one definition (the later one silently replaces the earlier on apply)",
                ));
            } else {
                seen.insert(key, object.location());
            }
        }
        self.submission.findings.extend(findings);
    }
}

/// Where the first byte that is not UTF-8 is.
fn first_invalid_utf8(rel: &str, error: &std::string::FromUtf8Error) -> Location {
    let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
    let line = u32::try_from(valid.iter().filter(|&&b| b == b'\n').count() + 1).unwrap_or(u32::MAX);
    let column = u32::try_from(valid.iter().rev().take_while(|&&b| b != b'\n').count() + 1)
        .unwrap_or(u32::MAX);
    Location::at(rel, line, column)
}

#[cfg(test)]
mod tests {
    use crate::submission::test_files::write;
    use crate::submission::{LoadOptions, Typed, load};

    #[test]
    fn loads_objects_with_locations_and_classifies_by_content() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "k8s/all.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ml\n---\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: h\n  namespace: ml\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: d}\n  minReplicas: 2\n  maxReplicas: 5\n",
        );
        write(
            dir.path(),
            "alerts.yml",
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n",
        );
        write(
            dir.path(),
            "dash.json",
            "{\"title\": \"D\", \"panels\": [{\"title\": \"p\", \"targets\": [{\"expr\": \"up\"}]}]}",
        );
        write(dir.path(), "run-tests", "#!/usr/bin/env bash\necho hi\n");
        write(dir.path(), "GUIDE.md", "# Guide\n");
        let submission = load(dir.path(), &LoadOptions::default()).unwrap();
        assert!(submission.findings.is_empty(), "{:?}", submission.findings);
        assert_eq!(submission.objects.len(), 2);
        let hpa = &submission.objects[1];
        assert!(matches!(hpa.typed, Typed::HorizontalPodAutoscaler(_)));
        assert_eq!(hpa.location().to_string(), "k8s/all.yaml:6:1");
        assert_eq!(
            hpa.locate("/spec/minReplicas").to_string(),
            "k8s/all.yaml:13:3"
        );
        assert_eq!(submission.rule_sources.len(), 1);
        assert_eq!(submission.dashboards.len(), 1);
        assert_eq!(submission.dashboards[0].queries[0].expr, "up");
        assert_eq!(submission.scripts.len(), 1);
        assert_eq!(submission.docs.len(), 1);
    }
}
