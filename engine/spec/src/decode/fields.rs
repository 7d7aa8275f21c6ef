//! The pieces every part of a workflow is decoded with: the fields of one mapping (unknown ones reported
//! with a did-you-mean), scalars of each type, durations, templates and `${{ }}` expressions pointed at by
//! line and column, and plain YAML values.

use std::time::Duration;

use super::Decoder;
use crate::diagnostic::{Diagnostics, Span, Spanned};
use crate::expr::Expr;
use crate::template::{parse_string, Template};
use crate::value::Value;
use crate::yaml::{Node, NodeKind, ScalarValue};

/// Reads the fields of one YAML mapping; whatever is not taken is reported as unknown by `finish`.
pub(super) struct Fields<'a> {
    what: &'a str,
    node: &'a Node,
    pairs: &'a [(Node, Node)],
    taken: Vec<bool>,
}

impl<'a> Fields<'a> {
    pub(super) fn new(node: &'a Node, what: &'a str, d: &mut Diagnostics) -> Option<Self> {
        match node.as_mapping() {
            Some(pairs) => Some(Fields {
                what,
                node,
                pairs,
                taken: vec![false; pairs.len()],
            }),
            None => {
                d.error(
                    node.span,
                    format!("{what} must be a mapping, found {}", node.describe()),
                );
                None
            }
        }
    }

    pub(super) fn get(&mut self, key: &str) -> Option<&'a Node> {
        let pos = self
            .pairs
            .iter()
            .position(|(k, _)| k.as_str() == Some(key))?;
        self.taken[pos] = true;
        Some(&self.pairs[pos].1)
    }

    pub(super) fn required(&mut self, key: &str, d: &mut Diagnostics) -> Option<&'a Node> {
        let node = self.get(key);
        if node.is_none() {
            d.error(
                self.node.span,
                format!("{} is missing the required field `{key}`", self.what),
            );
        }
        node
    }

    pub(super) fn finish(self, allowed: &[&str], d: &mut Diagnostics) {
        for (i, (k, _)) in self.pairs.iter().enumerate() {
            if self.taken[i] {
                continue;
            }
            let name = k.as_str().unwrap_or("?");
            let hint = suggestion(name, allowed)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!("; expected one of: {}", allowed.join(", ")));
            d.error(
                k.span,
                format!("unknown field `{name}` in {}{hint}", self.what),
            );
        }
    }
}

/// The closest allowed name, if it is close enough to be a likely typo.
pub(crate) fn suggestion<'s>(name: &str, allowed: &[&'s str]) -> Option<&'s str> {
    allowed
        .iter()
        .map(|a| (edit_distance(name, a), *a))
        .filter(|(dist, a)| *dist <= 2.max(a.len() / 4))
        .min_by_key(|(dist, _)| *dist)
        .map(|(_, a)| a)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Readers of scalars, templates and expressions, reporting a wrong shape at the node.
impl Decoder<'_> {
    pub(super) fn string(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        match node.scalar_value() {
            Some(ScalarValue::Str(s)) => Some(Spanned::new(s.to_string(), node.span)),
            _ => {
                self.d.error(
                    node.span,
                    format!("{what} must be a string, found {}", node.describe()),
                );
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        match node.scalar_value() {
            Some(ScalarValue::Bool(b)) => Some(b),
            _ => {
                self.d.error(
                    node.span,
                    format!("{what} must be true or false, found {}", node.describe()),
                );
                None
            }
        }
    }

    pub(super) fn number(&mut self, node: &Node, what: &str) -> Option<f64> {
        match node.scalar_value() {
            Some(ScalarValue::Int(i)) => Some(i as f64),
            Some(ScalarValue::Float(f)) if f.is_finite() => Some(f),
            _ => {
                self.d.error(
                    node.span,
                    format!("{what} must be a number, found {}", node.describe()),
                );
                None
            }
        }
    }

    pub(super) fn positive_int(&mut self, node: &Node, what: &str) -> Option<u64> {
        match node.scalar_value() {
            Some(ScalarValue::Int(i)) if i >= 1 => Some(i as u64),
            _ => {
                self.d.error(
                    node.span,
                    format!(
                        "{what} must be a whole number of at least 1, found {}",
                        describe_scalar(node)
                    ),
                );
                None
            }
        }
    }

    pub(super) fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = match node.scalar_value() {
            Some(ScalarValue::Str(s)) => s.to_string(),
            _ => {
                self.d.error(
                    node.span,
                    format!(
                        "{what} must be a duration such as 30s, 10m or 1h30m, found {}",
                        describe_scalar(node)
                    ),
                );
                return None;
            }
        };
        match humantime::parse_duration(&text) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                self.d
                    .error(node.span, format!("{what} must be longer than zero"));
                None
            }
            Err(e) => {
                self.d.error(
                    node.span,
                    format!(
                        "{what}: `{text}` is not a duration ({e}); write e.g. 30s, 10m or 1h30m"
                    ),
                );
                None
            }
        }
    }

    /// Column of byte `offset` inside a one-line scalar, for pointing into an expression.
    fn span_inside(&self, node: &Node, offset: usize) -> Span {
        let NodeKind::Scalar { text, .. } = &node.kind else {
            return node.span;
        };
        if text.contains('\n') {
            return node.span;
        }
        let line = self
            .source
            .lines()
            .nth(node.span.line.saturating_sub(1))
            .unwrap_or("");
        let col0 = line
            .char_indices()
            .nth(node.span.column.saturating_sub(1))
            .map(|(i, _)| i)
            .unwrap_or(0);
        let opener = line[col0..].chars().next();
        let skip = match opener {
            Some('\'') | Some('"') => 1,
            Some('|') | Some('>') => return node.span,
            _ => 0,
        };
        let prefix = &text[..offset.min(text.len())];
        Span::new(
            node.span.line,
            node.span.column + skip + prefix.chars().count(),
        )
    }

    pub fn template(&mut self, node: &Node) -> Option<Template> {
        match &node.kind {
            NodeKind::Scalar { text, .. } => {
                if let Some(ScalarValue::Str(_)) = node.scalar_value() {
                    match parse_string(text, node.span) {
                        Ok(Some(t)) => return Some(t),
                        Ok(None) => {}
                        Err(e) => {
                            let span = self.span_inside(node, e.offset);
                            self.d.error(span, format!("bad expression: {}", e.message));
                            return None;
                        }
                    }
                }
                Some(Template::Literal(literal(node)))
            }
            NodeKind::Sequence(items) => {
                let mut out = Vec::new();
                for i in items {
                    out.push(self.template(i)?);
                }
                Some(Template::List(out))
            }
            NodeKind::Mapping(pairs) => {
                let mut out = Vec::new();
                for (k, v) in pairs {
                    let key = self.string(k, "a mapping key")?;
                    out.push((key.value, self.template(v)?));
                }
                Some(Template::Map(out))
            }
        }
    }

    /// An expression written either as `${{ expr }}` or bare (`when: params.x > 0`).
    pub(super) fn expression(&mut self, node: &Node, what: &str) -> Option<Spanned<Expr>> {
        let text = match node.scalar_value() {
            Some(ScalarValue::Str(s)) => s.to_string(),
            Some(ScalarValue::Bool(b)) => {
                return Some(Spanned::new(Expr::Literal(Value::Bool(b)), node.span))
            }
            _ => {
                self.d.error(
                    node.span,
                    format!("{what} must be an expression such as \"${{{{ params.x > 0 }}}}\", found {}", node.describe()),
                );
                return None;
            }
        };
        let trimmed = text.trim();
        let (body, offset) = match trimmed
            .strip_prefix("${{")
            .and_then(|r| r.strip_suffix("}}"))
        {
            Some(inner) => (inner, text.find("${{").unwrap_or(0) + 3),
            None if trimmed.contains("${{") => {
                self.d.error(
                    node.span,
                    format!("{what} must be a single expression `${{{{ ... }}}}` with no text around it"),
                );
                return None;
            }
            None => (text.as_str(), 0),
        };
        match Expr::parse(body) {
            Ok(e) => Some(Spanned::new(e, node.span)),
            Err(e) => {
                let span = self.span_inside(node, offset + e.offset);
                self.d
                    .error(span, format!("bad expression in {what}: {}", e.message));
                None
            }
        }
    }
}

fn describe_scalar(node: &Node) -> String {
    match &node.kind {
        NodeKind::Scalar { text, .. } => format!("`{text}`"),
        _ => node.describe().to_string(),
    }
}

/// A YAML node as a plain value (no expressions).
pub(super) fn literal(node: &Node) -> Value {
    match &node.kind {
        NodeKind::Scalar { .. } => match node.scalar_value() {
            Some(ScalarValue::Null) | None => Value::Null,
            Some(ScalarValue::Bool(b)) => Value::Bool(b),
            Some(ScalarValue::Int(i)) => Value::Number(i as f64),
            Some(ScalarValue::Float(f)) => Value::Number(f),
            Some(ScalarValue::Str(s)) => Value::String(s.to_string()),
        },
        NodeKind::Sequence(items) => Value::List(items.iter().map(literal).collect()),
        NodeKind::Mapping(pairs) => Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), literal(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos() {
        assert_eq!(suggestion("depends", &["needs", "when"]), None);
        assert_eq!(suggestion("retyr", &["retry", "timeout"]), Some("retry"));
        assert_eq!(
            suggestion("time_out", &["retry", "timeout"]),
            Some("timeout")
        );
    }
}
