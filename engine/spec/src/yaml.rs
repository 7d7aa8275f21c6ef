//! A YAML tree that keeps the line and column of every node.
//!
//! serde-based YAML readers stop at the first error and forget positions, but `voxflow validate` must report
//! every problem with its line and column, including semantic ones (a cycle, a dangling reference) found long
//! after parsing. So we build our own small tree from yaml-rust2's marked parser events.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diagnostic::Span;

/// Upper bound on nodes, so that alias expansion ("billion laughs") cannot exhaust memory.
const MAX_NODES: usize = 1_000_000;
/// Upper bound on nesting, so that deeply nested input cannot overflow the stack of later passes.
const MAX_DEPTH: usize = 200;

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar; `quoted` is true for single-, double-quoted and block scalars, which are always strings.
    Scalar {
        text: String,
        quoted: bool,
    },
    Sequence(Vec<Node>),
    /// Key/value pairs in source order (duplicate keys are reported by the parser below).
    Mapping(Vec<(Node, Node)>),
}

/// What a plain scalar means under the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum ScalarValue<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn as_mapping(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Mapping(pairs) => Some(pairs),
            _ => None,
        }
    }

    pub fn as_sequence(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Sequence(items) => Some(items),
            _ => None,
        }
    }

    /// The typed meaning of a scalar (quoted scalars are always strings).
    pub fn scalar_value(&self) -> Option<ScalarValue<'_>> {
        let NodeKind::Scalar { text, quoted } = &self.kind else {
            return None;
        };
        if *quoted {
            return Some(ScalarValue::Str(text));
        }
        Some(match text.as_str() {
            "" | "~" | "null" | "Null" | "NULL" => ScalarValue::Null,
            "true" | "True" | "TRUE" => ScalarValue::Bool(true),
            "false" | "False" | "FALSE" => ScalarValue::Bool(false),
            t => {
                if let Ok(i) = t.parse::<i64>() {
                    ScalarValue::Int(i)
                } else if looks_like_float(t) {
                    match t.parse::<f64>() {
                        Ok(f) => ScalarValue::Float(f),
                        Err(_) => ScalarValue::Str(t),
                    }
                } else {
                    match t {
                        ".inf" | ".Inf" | "+.inf" => ScalarValue::Float(f64::INFINITY),
                        "-.inf" | "-.Inf" => ScalarValue::Float(f64::NEG_INFINITY),
                        ".nan" | ".NaN" => ScalarValue::Float(f64::NAN),
                        _ => ScalarValue::Str(t),
                    }
                }
            }
        })
    }

    /// A short name of the node's shape for error messages.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Mapping(_) => "a mapping",
            NodeKind::Sequence(_) => "a list",
            NodeKind::Scalar { .. } => match self.scalar_value() {
                Some(ScalarValue::Null) => "null",
                Some(ScalarValue::Bool(_)) => "a boolean",
                Some(ScalarValue::Int(_)) => "an integer",
                Some(ScalarValue::Float(_)) => "a number",
                _ => "a string",
            },
        }
    }
}

fn looks_like_float(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    !body.is_empty()
        && body
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub span: Span,
    pub message: String,
}

/// Parses one YAML document into a positioned tree. Duplicate mapping keys are returned as extra errors
/// alongside the tree (the later value wins), since they do not stop the rest of the file from being checked.
pub fn parse_document(text: &str) -> Result<(Node, Vec<YamlError>), YamlError> {
    let mut builder = TreeBuilder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        let m = e.marker();
        return Err(YamlError {
            span: span_of(m),
            message: format!("YAML syntax error: {}", e.info()),
        });
    }
    if let Some(err) = builder.fatal {
        return Err(err);
    }
    match builder.root {
        Some(root) => Ok((root, builder.warnings)),
        None => Err(YamlError {
            span: Span::new(1, 1),
            message: "the file is empty: a workflow is a YAML mapping".into(),
        }),
    }
}

fn span_of(m: &Marker) -> Span {
    Span::new(m.line(), m.col() + 1)
}

enum Frame {
    Sequence {
        span: Span,
        anchor: usize,
        items: Vec<Node>,
    },
    Mapping {
        span: Span,
        anchor: usize,
        pairs: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    nodes: usize,
    fatal: Option<YamlError>,
    warnings: Vec<YamlError>,
    documents: usize,
}

impl TreeBuilder {
    fn fail(&mut self, span: Span, message: String) {
        if self.fatal.is_none() {
            self.fatal = Some(YamlError { span, message });
        }
    }

    fn count(&mut self, node: &Node) -> bool {
        self.nodes += count_nodes(node, MAX_NODES);
        if self.nodes > MAX_NODES {
            self.fail(
                node.span,
                format!("the document expands to more than {MAX_NODES} nodes (alias bomb?)"),
            );
            return false;
        }
        true
    }

    fn push_node(&mut self, node: Node, anchor: usize) {
        if self.fatal.is_some() || !self.count(&node) {
            return;
        }
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping {
                pairs, pending_key, ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    if let Some(k) = key.as_str() {
                        if let Some(pos) = pairs.iter().position(|(pk, _)| pk.as_str() == Some(k)) {
                            self.warnings.push(YamlError {
                                span: key.span,
                                message: format!(
                                    "duplicate key `{k}` (first defined at line {})",
                                    pairs[pos].0.span.line
                                ),
                            });
                            pairs.remove(pos);
                        }
                    }
                    pairs.push((key, node));
                }
            },
        }
    }
}

fn count_nodes(node: &Node, limit: usize) -> usize {
    match &node.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Sequence(items) => {
            let mut n = 1;
            for i in items {
                n += count_nodes(i, limit);
                if n > limit {
                    break;
                }
            }
            n
        }
        NodeKind::Mapping(pairs) => {
            let mut n = 1;
            for (k, v) in pairs {
                n += count_nodes(k, limit) + count_nodes(v, limit);
                if n > limit {
                    break;
                }
            }
            n
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.fatal.is_some() {
            return;
        }
        let span = span_of(&mark);
        match ev {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(
                        span,
                        "a workflow file holds one YAML document; found a second one".into(),
                    );
                }
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                self.push_node(
                    Node {
                        kind: NodeKind::Scalar { text, quoted },
                        span,
                    },
                    anchor,
                );
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.span = span;
                    self.push_node(node, 0);
                }
                None => self.fail(span, "alias refers to an unknown anchor".into()),
            },
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(span, format!("nesting deeper than {MAX_DEPTH} levels"));
                    return;
                }
                let frame = if matches!(ev, Event::SequenceStart(..)) {
                    Frame::Sequence {
                        span,
                        anchor,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Mapping {
                        span,
                        anchor,
                        pairs: Vec::new(),
                        pending_key: None,
                    }
                };
                self.stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    // A block collection's start event is marked after its first entry; the entry's own
                    // position is what a reader expects.
                    Some(Frame::Sequence {
                        span,
                        anchor,
                        items,
                    }) => (
                        Node {
                            span: items.first().map_or(span, |i| i.span.min(span)),
                            kind: NodeKind::Sequence(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Mapping {
                        span,
                        anchor,
                        pairs,
                        ..
                    }) => (
                        Node {
                            span: pairs.first().map_or(span, |(k, _)| k.span.min(span)),
                            kind: NodeKind::Mapping(pairs),
                        },
                        anchor,
                    ),
                    None => return,
                };
                self.push_node(node, anchor);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let (root, _) = parse_document("a: 1\nb:\n  - x\n  - 'y'\n").unwrap();
        let pairs = root.as_mapping().unwrap();
        assert_eq!(pairs[0].0.span, Span::new(1, 1));
        assert_eq!(pairs[1].0.span, Span::new(2, 1));
        let items = pairs[1].1.as_sequence().unwrap();
        assert_eq!(items[0].span, Span::new(3, 5));
        assert_eq!(items[1].scalar_value(), Some(ScalarValue::Str("y")));
        assert_eq!(pairs[0].1.scalar_value(), Some(ScalarValue::Int(1)));
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let (_, warnings) = parse_document("a: 1\na: 2\n").unwrap();
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].span, Span::new(2, 1));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse_document(&text).unwrap_err();
        assert!(err.message.contains("alias bomb"), "{}", err.message);
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse_document("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.starts_with("YAML syntax error"));
        assert!(err.span.line >= 1);
    }
}
