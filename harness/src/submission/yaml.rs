//! YAML (and JSON) documents into `serde_json::Value`, with positions and limits.
//!
//! Why `saphyr-parser`: it is maintained, event-level, reports a line/column
//! `Marker` for every event and does *not* expand aliases itself. Expansion is done
//! here under a node budget, so an alias bomb ("billion laughs") is refused after a
//! bounded amount of work and memory instead of being materialised. serde_yaml is
//! unmaintained, and value-level parsers expand aliases before we could count them.
//!
//! Scalars are resolved with the YAML 1.2 core schema (what a Kubernetes manifest
//! author expects: `200m` stays a string, `3` is a number, `"3"` is a string).

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// Bounds on what one file may cost to load.
#[derive(Debug, Clone, Copy)]
pub struct YamlLimits {
    /// Nodes produced per file, counting every node an alias expands to.
    pub max_nodes: usize,
    /// Nesting depth of mappings and sequences.
    pub max_depth: usize,
}

impl Default for YamlLimits {
    fn default() -> Self {
        // A large Grafana dashboard is ~20k nodes; a billion-laughs bomb is 10^9.
        YamlLimits {
            max_nodes: 250_000,
            max_depth: 128,
        }
    }
}

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    fn from_span(span: &Span) -> Self {
        Position {
            line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
            column: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
        }
    }
}

/// One document of a stream.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    /// Where the document's content starts.
    pub start: Position,
    /// JSON pointer (`/spec/minReplicas`) → where that key or item is written.
    pub positions: HashMap<String, Position>,
    /// Plain scalars that YAML 1.2 reads as strings but YAML 1.1 as booleans (`Off`,
    /// `yes`, `on`): the pointer and its boolean. This loader follows YAML 1.2; kubectl
    /// (sigs.k8s.io/yaml) follows YAML 1.1, so the API server gets these as booleans.
    pub yaml11_booleans: Vec<(String, bool)>,
}

impl Document {
    /// The position of the deepest written ancestor of `pointer` (or the document start).
    pub fn locate(&self, pointer: &str) -> Position {
        let mut current = pointer;
        loop {
            if let Some(position) = self.positions.get(current) {
                return *position;
            }
            match current.rfind('/') {
                Some(cut) => current = &current[..cut],
                None => return self.start,
            }
        }
    }
}

/// Why a stream could not be (fully) loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum YamlProblemKind {
    /// Not YAML: the parser's message.
    Syntax,
    /// Alias expansion exceeded the node budget.
    AliasBomb,
    /// Nesting exceeded the depth limit.
    TooDeep,
    /// The same key twice in one mapping (kubectl rejects it); the last value is kept.
    DuplicateKey,
    /// An alias to an anchor that was never defined, or a complex mapping key.
    Unsupported,
}

#[derive(Debug, Clone, PartialEq)]
pub struct YamlProblem {
    pub kind: YamlProblemKind,
    pub position: Position,
    pub message: String,
    /// Fatal problems stop the stream; the documents before them are kept.
    pub fatal: bool,
}

/// The documents of a stream and what went wrong loading it.
#[derive(Debug, Default)]
pub struct Loaded {
    pub documents: Vec<Document>,
    pub problems: Vec<YamlProblem>,
}

enum Frame {
    Sequence {
        items: Vec<Value>,
        anchor: usize,
        pointer: String,
        nodes_before: usize,
    },
    Mapping {
        entries: Map<String, Value>,
        pending_key: Option<(String, Position)>,
        merges: Vec<Value>,
        anchor: usize,
        pointer: String,
        nodes_before: usize,
    },
}

struct Builder {
    limits: YamlLimits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    document: Option<Document>,
    loaded: Loaded,
}

/// A key as one JSON pointer token (RFC 6901: `~` as `~0`, `/` as `~1`).
pub fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Resolves a plain scalar with the YAML 1.2 core schema.
fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => {
            // JSON has no infinities; keep the text so nothing is silently lost.
            return Value::String(text.to_string());
        }
        _ => {}
    }
    let bytes = text.as_bytes();
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(int) = text.parse::<i64>()
    {
        return Value::Number(int.into());
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(int) = i64::from_str_radix(hex, 16)
    {
        return Value::Number(int.into());
    }
    if let Some(octal) = text.strip_prefix("0o")
        && let Ok(int) = i64::from_str_radix(octal, 8)
    {
        return Value::Number(int.into());
    }
    let looks_float = !digits.is_empty()
        && (bytes[0].is_ascii_digit() || matches!(bytes[0], b'-' | b'+' | b'.'))
        && digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if looks_float
        && let Ok(float) = text.parse::<f64>()
        && let Some(number) = Number::from_f64(float)
    {
        return Value::Number(number);
    }
    Value::String(text.to_string())
}

/// The boolean YAML 1.1 (go-yaml v2, which kubectl's sigs.k8s.io/yaml uses) reads in a
/// plain scalar that YAML 1.2 reads as a string.
pub(super) fn yaml11_boolean(text: &str) -> Option<bool> {
    match text {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag
        && (tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!")
    {
        match tag.suffix.as_str() {
            "str" => return Value::String(text.to_string()),
            "null" => return Value::Null,
            "bool" | "int" | "float" => return resolve_plain(text),
            _ => {}
        }
    }
    match style {
        ScalarStyle::Plain => resolve_plain(text),
        _ => Value::String(text.to_string()),
    }
}

fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null => Some("null".to_string()),
        _ => None,
    }
}

impl Builder {
    fn problem(&mut self, kind: YamlProblemKind, position: Position, message: String, fatal: bool) {
        self.loaded.problems.push(YamlProblem {
            kind,
            position,
            message,
            fatal,
        });
    }

    /// The pointer a new child node gets, and records where it is written.
    fn child_pointer(&mut self, position: Position) -> String {
        let pointer = match self.stack.last() {
            None => String::new(),
            Some(Frame::Sequence { items, pointer, .. }) => format!("{pointer}/{}", items.len()),
            Some(Frame::Mapping {
                pending_key: Some((key, _)),
                pointer,
                ..
            }) => {
                format!("{pointer}/{}", escape_pointer(key))
            }
            // A mapping key itself: not addressable.
            Some(Frame::Mapping {
                pending_key: None, ..
            }) => return String::new(),
        };
        let recorded = match self.stack.last() {
            Some(Frame::Mapping {
                pending_key: Some((_, key_position)),
                ..
            }) => *key_position,
            _ => position,
        };
        if let Some(document) = self.document.as_mut() {
            document
                .positions
                .entry(pointer.clone())
                .or_insert(recorded);
        }
        pointer
    }

    fn count(&mut self, nodes: usize, position: Position) -> Result<(), ()> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > self.limits.max_nodes {
            let message = format!(
                "alias expansion exceeds {} nodes; refusing to expand (a YAML \"billion laughs\" bomb?)",
                self.limits.max_nodes
            );
            self.problem(YamlProblemKind::AliasBomb, position, message, true);
            return Err(());
        }
        Ok(())
    }

    /// Attaches a finished node to its parent (or ends the document's root).
    fn push_value(&mut self, value: Value, position: Position) {
        match self.stack.last_mut() {
            None => {
                if let Some(document) = self.document.as_mut() {
                    document.value = value;
                }
            }
            Some(Frame::Sequence { items, .. }) => items.push(value),
            Some(Frame::Mapping {
                entries,
                pending_key,
                merges,
                ..
            }) => match pending_key.take() {
                None => match key_text(&value) {
                    Some(key) => *pending_key = Some((key, position)),
                    None => {
                        let message = "complex mapping keys are not supported".to_string();
                        // Use a placeholder key so the structure stays aligned.
                        *pending_key = Some(("<complex key>".to_string(), position));
                        self.loaded.problems.push(YamlProblem {
                            kind: YamlProblemKind::Unsupported,
                            position,
                            message,
                            fatal: false,
                        });
                    }
                },
                Some((key, key_position)) => {
                    if key == "<<" {
                        merges.push(value);
                    } else if entries.insert(key.clone(), value).is_some() {
                        self.loaded.problems.push(YamlProblem {
                            kind: YamlProblemKind::DuplicateKey,
                            position: key_position,
                            message: format!("duplicate key `{key}` in one mapping"),
                            fatal: false,
                        });
                    }
                }
            },
        }
    }

    fn remember_anchor(&mut self, anchor: usize, value: &Value, nodes_before: usize) {
        if anchor != 0 {
            let size = self.nodes - nodes_before;
            self.anchors.insert(anchor, (value.clone(), size.max(1)));
        }
    }

    fn handle(&mut self, event: Event<'_>, span: Span) -> Result<(), ()> {
        let position = Position::from_span(&span);
        match event {
            Event::DocumentStart(_) => {
                self.stack.clear();
                self.document = Some(Document {
                    value: Value::Null,
                    start: position,
                    positions: HashMap::new(),
                    yaml11_booleans: Vec::new(),
                });
            }
            Event::DocumentEnd => {
                if let Some(document) = self.document.take() {
                    self.loaded.documents.push(document);
                }
                self.anchors.clear();
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.scalar(&text, style, tag.as_deref(), anchor, position)?
            }
            Event::Alias(anchor) => self.alias(anchor, position)?,
            Event::SequenceStart(anchor, _) => self.start_collection(anchor, true, position)?,
            Event::MappingStart(anchor, _) => self.start_collection(anchor, false, position)?,
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    let (value, anchor, nodes_before) = frame.finish();
                    self.remember_anchor(anchor, &value, nodes_before);
                    self.push_value(value, position);
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }

    /// Whether the next node is a mapping's key (its value gets the position).
    fn expects_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Mapping {
                pending_key: None,
                ..
            })
        )
    }

    fn scalar(
        &mut self,
        text: &str,
        style: ScalarStyle,
        tag: Option<&Tag>,
        anchor: usize,
        position: Position,
    ) -> Result<(), ()> {
        self.count(1, position)?;
        if self.expects_key() {
            // A mapping key: positions are recorded for its value.
            self.push_value(Value::String(text.to_string()), position);
            return Ok(());
        }
        if let Some(document) = self.document.as_mut()
            && self.stack.is_empty()
        {
            document.start = position;
        }
        let pointer = self.child_pointer(position);
        let value = resolve_scalar(text, style, tag);
        if style == ScalarStyle::Plain
            && tag.is_none()
            && let Some(boolean) = yaml11_boolean(text)
            && let Some(document) = self.document.as_mut()
        {
            document.yaml11_booleans.push((pointer, boolean));
        }
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), 1));
        }
        self.push_value(value, position);
        Ok(())
    }

    fn alias(&mut self, anchor: usize, position: Position) -> Result<(), ()> {
        let Some((value, size)) = self.anchors.get(&anchor).cloned() else {
            self.problem(
                YamlProblemKind::Unsupported,
                position,
                "alias to an undefined anchor".to_string(),
                true,
            );
            return Err(());
        };
        // Count before cloning: a bomb is refused before it is built.
        self.count(size, position)?;
        if !self.expects_key() {
            self.child_pointer(position);
        }
        self.push_value(value, position);
        Ok(())
    }

    fn start_collection(
        &mut self,
        anchor: usize,
        is_sequence: bool,
        position: Position,
    ) -> Result<(), ()> {
        self.count(1, position)?;
        if self.stack.len() >= self.limits.max_depth {
            let message = format!("nesting deeper than {} levels", self.limits.max_depth);
            self.problem(YamlProblemKind::TooDeep, position, message, true);
            return Err(());
        }
        if self.stack.is_empty()
            && let Some(document) = self.document.as_mut()
        {
            document.start = position;
        }
        let pointer = self.child_pointer(position);
        let nodes_before = self.nodes - 1;
        let frame = if is_sequence {
            Frame::Sequence {
                items: Vec::new(),
                anchor,
                pointer,
                nodes_before,
            }
        } else {
            Frame::Mapping {
                entries: Map::new(),
                pending_key: None,
                merges: Vec::new(),
                anchor,
                pointer,
                nodes_before,
            }
        };
        self.stack.push(frame);
        Ok(())
    }
}

impl Frame {
    /// The finished node, with its anchor and the node count before it.
    fn finish(self) -> (Value, usize, usize) {
        match self {
            Frame::Sequence {
                items,
                anchor,
                nodes_before,
                ..
            } => (Value::Array(items), anchor, nodes_before),
            Frame::Mapping {
                mut entries,
                merges,
                anchor,
                nodes_before,
                ..
            } => {
                // `<<` merge keys: explicit keys win, earlier merges win over later ones.
                for merge in merges {
                    let sources = match merge {
                        Value::Array(items) => items,
                        other => vec![other],
                    };
                    for source in sources {
                        if let Value::Object(map) = source {
                            for (key, value) in map {
                                entries.entry(key).or_insert(value);
                            }
                        }
                    }
                }
                (Value::Object(entries), anchor, nodes_before)
            }
        }
    }
}

/// Loads every document of a YAML (or JSON) stream. Never panics; stops at the
/// first fatal problem and keeps the documents completed before it.
pub fn load(text: &str, limits: YamlLimits) -> Loaded {
    let mut builder = Builder {
        limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        document: None,
        loaded: Loaded::default(),
    };
    let parser = Parser::new_from_str(text);
    for item in parser {
        match item {
            Ok((event, span)) => {
                if builder.handle(event, span).is_err() {
                    break;
                }
            }
            Err(error) => {
                let marker = error.marker();
                let mut position = Position {
                    line: u32::try_from(marker.line()).unwrap_or(u32::MAX),
                    column: u32::try_from(marker.col() + 1).unwrap_or(u32::MAX),
                };
                // The scanner stops after a tab; point at the tab itself.
                if error.info().contains("tab") {
                    let line_text = text
                        .lines()
                        .nth(marker.line().saturating_sub(1))
                        .unwrap_or("");
                    if let Some(tab) = line_text.chars().position(|c| c == '\t') {
                        position.column = u32::try_from(tab + 1).unwrap_or(u32::MAX);
                    }
                }
                builder.problem(
                    YamlProblemKind::Syntax,
                    position,
                    error.info().to_string(),
                    true,
                );
                break;
            }
        }
    }
    // Empty documents (`---` with nothing, or only comments) are not objects.
    builder
        .loaded
        .documents
        .retain(|document| !document.value.is_null());
    builder.loaded
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn only(text: &str) -> Document {
        let loaded = load(text, YamlLimits::default());
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(loaded.documents.len(), 1);
        loaded.documents.into_iter().next().unwrap()
    }

    #[rstest]
    #[case("a: 200m", json!({"a": "200m"}))]
    #[case("a: 3", json!({"a": 3}))]
    #[case("a: \"3\"", json!({"a": "3"}))]
    #[case("a: 0.5", json!({"a": 0.5}))]
    #[case("a: true\nb: ~\nc:", json!({"a": true, "b": null, "c": null}))]
    #[case("a: 0 9 * * 1-5", json!({"a": "0 9 * * 1-5"}))]
    #[case("a: 30%", json!({"a": "30%"}))]
    #[case("a: 1e3", json!({"a": 1000.0}))]
    #[case("a: !!str 10", json!({"a": "10"}))]
    #[case("a: yes", json!({"a": "yes"}))]
    #[case("a: [1, x]", json!({"a": [1, "x"]}))]
    #[case("{\"a\": {\"b\": [1, 2]}}", json!({"a": {"b": [1, 2]}}))]
    #[case("a: |\n  line1\n  line2\n", json!({"a": "line1\nline2\n"}))]
    fn resolves_scalars_like_kubernetes_authors_expect(
        #[case] text: &str,
        #[case] expected: Value,
    ) {
        assert_eq!(only(text).value, expected);
    }

    #[test]
    fn records_where_kubectl_would_read_a_boolean() {
        let document = only("a: Off\nb: \"Off\"\nc: [yes, no]\nd: !!str on\ne: offline\n");
        assert_eq!(document.value["a"], "Off");
        assert_eq!(
            document.yaml11_booleans,
            [
                ("/a".to_string(), false),
                ("/c/0".to_string(), true),
                ("/c/1".to_string(), false)
            ]
        );
    }

    #[test]
    fn records_positions_of_keys_and_items() {
        let document = only("kind: X\nspec:\n  minReplicas: 2\n  list:\n  - a\n  - b\n");
        assert_eq!(document.start, Position { line: 1, column: 1 });
        assert_eq!(
            document.positions["/spec/minReplicas"],
            Position { line: 3, column: 3 }
        );
        assert_eq!(
            document.positions["/spec/list/1"],
            Position { line: 6, column: 5 }
        );
        assert_eq!(
            document.locate("/spec/minReplicas/deeper"),
            Position { line: 3, column: 3 }
        );
        assert_eq!(document.locate("/nothing"), Position { line: 1, column: 1 });
    }

    #[test]
    fn splits_multi_document_streams_and_drops_empty_ones() {
        let loaded = load(
            "a: 1\n---\n# only a comment\n---\nb: 2\n",
            YamlLimits::default(),
        );
        assert!(loaded.problems.is_empty());
        let values: Vec<_> = loaded.documents.iter().map(|d| d.value.clone()).collect();
        assert_eq!(values, vec![json!({"a": 1}), json!({"b": 2})]);
        assert_eq!(loaded.documents[1].start.line, 5);
    }

    #[test]
    fn expands_aliases_and_merge_keys() {
        let document = only("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nlist: [*b]\n");
        assert_eq!(
            document.value,
            json!({"base": {"x": 1, "y": 2}, "other": {"x": 1, "y": 3}, "list": [{"x": 1, "y": 2}]})
        );
    }

    #[test]
    fn refuses_an_alias_bomb_quickly() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let previous = level - 1;
            let refs = vec![format!("*a{previous}"); 10].join(", ");
            text.push_str(&format!("a{level}: &a{level} [{refs}]\n"));
        }
        let started = std::time::Instant::now();
        let loaded = load(&text, YamlLimits::default());
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let problem = loaded
            .problems
            .iter()
            .find(|p| p.kind == YamlProblemKind::AliasBomb)
            .unwrap();
        assert!(problem.fatal);
        assert!(problem.position.line >= 5, "{problem:?}");
        assert!(loaded.documents.is_empty());
    }

    #[test]
    fn reports_syntax_errors_with_line_and_column_and_keeps_earlier_documents() {
        let loaded = load("a: 1\n---\nb: [1, 2\nc: 3\n", YamlLimits::default());
        assert_eq!(loaded.documents.len(), 1);
        let problem = &loaded.problems[0];
        assert_eq!(problem.kind, YamlProblemKind::Syntax);
        assert!(problem.fatal);
        assert!(problem.position.line >= 3, "{problem:?}");
    }

    #[test]
    fn points_at_a_tab_used_for_indentation() {
        let loaded = load("kind: X\nspec:\n\treplicas: 2\n", YamlLimits::default());
        let problem = loaded.problems.iter().find(|p| p.fatal).unwrap();
        assert_eq!(
            problem.position,
            Position { line: 3, column: 1 },
            "{problem:?}"
        );
    }

    #[test]
    fn reports_duplicate_keys_and_keeps_the_last() {
        let loaded = load("a: 1\nb: 2\na: 3\n", YamlLimits::default());
        assert_eq!(loaded.documents[0].value, json!({"a": 3, "b": 2}));
        assert_eq!(loaded.problems.len(), 1);
        assert_eq!(loaded.problems[0].kind, YamlProblemKind::DuplicateKey);
        assert_eq!(loaded.problems[0].position.line, 3);
    }

    #[test]
    fn bounds_nesting_depth() {
        // Flow nesting: the parser's own recursion limit answers first.
        let loaded = load(&"[".repeat(5000), YamlLimits::default());
        assert!(
            loaded.problems.iter().any(|p| p.fatal),
            "{:?}",
            loaded.problems
        );
        // Block nesting: ours.
        let text: String = (0..300)
            .map(|depth| format!("{}k{depth}:\n", " ".repeat(depth)))
            .collect();
        let loaded = load(&text, YamlLimits::default());
        assert!(
            loaded
                .problems
                .iter()
                .any(|p| p.kind == YamlProblemKind::TooDeep),
            "{:?}",
            loaded.problems
        );
    }
}
