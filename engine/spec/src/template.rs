//! Values written in a workflow that may hold `${{ ... }}` expressions: a whole-value expression keeps its
//! type (a number stays a number, an artifact stays an artifact); text around an expression makes a string.

use crate::diagnostic::Span;
use crate::expr::{EvalError, Expr, Reference, Scope};
use crate::value::Value;

/// One piece of an interpolated string.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Expr(Expr),
}

/// A workflow value that is evaluated at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    Literal(Value),
    Expr { expr: Expr, span: Span },
    Interpolated { parts: Vec<Part>, span: Span },
    List(Vec<Template>),
    Map(Vec<(String, Template)>),
}

/// A problem in the `${{ }}` syntax of a string: byte offset in the string and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

const OPEN: &str = "${{";
const CLOSE: &str = "}}";

/// Splits a string into text and expressions. Returns `Ok(None)` when it holds no `${{`.
pub fn parse_string(text: &str, span: Span) -> Result<Option<Template>, TemplateError> {
    if !text.contains(OPEN) {
        return Ok(None);
    }
    let mut parts = Vec::new();
    let mut rest = text;
    let mut base = 0;
    while let Some(start) = rest.find(OPEN) {
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_string()));
        }
        let body_start = start + OPEN.len();
        let Some(len) = rest[body_start..].find(CLOSE) else {
            return Err(TemplateError {
                offset: base + start,
                message: "`${{` is never closed with `}}`".into(),
            });
        };
        let body = &rest[body_start..body_start + len];
        let expr = Expr::parse(body).map_err(|e| TemplateError {
            offset: base + body_start + e.offset,
            message: e.message,
        })?;
        parts.push(Part::Expr(expr));
        let consumed = body_start + len + CLOSE.len();
        base += consumed;
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    if parts.len() == 1 {
        if let Part::Expr(expr) = &parts[0] {
            return Ok(Some(Template::Expr {
                expr: expr.clone(),
                span,
            }));
        }
    }
    Ok(Some(Template::Interpolated { parts, span }))
}

impl Template {
    /// Every reference in the template, with the span of the YAML value it was written in.
    pub fn references(&self) -> Vec<(&Reference, Span)> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<(&'a Reference, Span)>) {
        match self {
            Template::Literal(_) => {}
            Template::Expr { expr, span } => {
                out.extend(expr.references().into_iter().map(|r| (r, *span)))
            }
            Template::Interpolated { parts, span } => {
                for p in parts {
                    if let Part::Expr(e) = p {
                        out.extend(e.references().into_iter().map(|r| (r, *span)));
                    }
                }
            }
            Template::List(items) => items.iter().for_each(|t| t.collect(out)),
            Template::Map(pairs) => pairs.iter().for_each(|(_, t)| t.collect(out)),
        }
    }

    pub fn eval(&self, scope: &dyn Scope) -> Result<Value, EvalError> {
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Expr { expr, .. } => expr.eval(scope)?,
            Template::Interpolated { parts, .. } => {
                let mut s = String::new();
                for p in parts {
                    match p {
                        Part::Text(t) => s.push_str(t),
                        Part::Expr(e) => s.push_str(&e.eval(scope)?.to_string()),
                    }
                }
                Value::String(s)
            }
            Template::List(items) => Value::List(
                items
                    .iter()
                    .map(|t| t.eval(scope))
                    .collect::<Result<_, _>>()?,
            ),
            Template::Map(pairs) => Value::Map(
                pairs
                    .iter()
                    .map(|(k, t)| Ok((k.clone(), t.eval(scope)?)))
                    .collect::<Result<_, EvalError>>()?,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_expression_keeps_type() {
        let t = parse_string("${{ params.x }}", Span::new(1, 1))
            .unwrap()
            .unwrap();
        assert!(matches!(t, Template::Expr { .. }));
        let t = parse_string("a ${{ params.x }} b", Span::new(1, 1))
            .unwrap()
            .unwrap();
        assert!(matches!(t, Template::Interpolated { ref parts, .. } if parts.len() == 3));
        assert_eq!(parse_string("plain", Span::new(1, 1)).unwrap(), None);
    }

    #[test]
    fn offsets_point_into_the_string() {
        let err = parse_string("x ${{ params.a > }}", Span::new(1, 1)).unwrap_err();
        assert_eq!(err.offset, 17);
        let err = parse_string("x ${{ params.a", Span::new(1, 1)).unwrap_err();
        assert_eq!(err.offset, 2);
    }
}
