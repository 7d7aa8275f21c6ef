//! The expression language inside `${{ ... }}`: references to inputs, params, step outputs and the fan-out
//! item, literals, comparisons and Boolean logic.
//!
//! Hand-written rather than taken from a crate: the grammar is a dozen rules, errors must carry the
//! column inside the expression, and the reference structure must be visible to the validator and planner.

mod parser;

use std::fmt;

use crate::value::Value;

/// Where a reference points.
#[derive(Debug, Clone, PartialEq)]
pub enum Root {
    Input(String),
    Param(String),
    StepOutput {
        step: String,
        output: String,
    },
    /// The current element of a `foreach`.
    Item,
    /// The position of the current element of a `foreach` (0-based).
    Index,
}

/// A field name or list index after the root of a reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Field(String),
    Index(usize),
}

/// A dotted reference such as `steps.load.outputs.volume` or `inputs.studies.files[0]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub root: Root,
    pub rest: Vec<Segment>,
    /// Byte offset of the reference inside the expression text.
    pub offset: usize,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            Root::Input(n) => write!(f, "inputs.{n}")?,
            Root::Param(n) => write!(f, "params.{n}")?,
            Root::StepOutput { step, output } => write!(f, "steps.{step}.outputs.{output}")?,
            Root::Item => f.write_str("item")?,
            Root::Index => f.write_str("index")?,
        }
        for s in &self.rest {
            match s {
                Segment::Field(n) => write!(f, ".{n}")?,
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinaryOp {
    fn symbol(self) -> &'static str {
        match self {
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
        }
    }

    pub fn is_comparison(self) -> bool {
        !matches!(self, BinaryOp::And | BinaryOp::Or)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    Ref(Reference),
    Not(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
}

/// A syntax error inside an expression, with its byte offset in the expression text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

/// An error while evaluating an expression at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

/// Resolves references while an expression is evaluated; implemented by the executor.
pub trait Scope {
    fn resolve(&self, reference: &Reference) -> Result<Value, EvalError>;
}

impl Expr {
    /// Parses the text inside `${{ }}`; a syntax error carries its byte offset in `text`.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        parser::parse(text)
    }

    /// Every reference in the expression, in source order.
    pub fn references(&self) -> Vec<&Reference> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Reference>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Ref(r) => out.push(r),
            Expr::Not(e) => e.collect(out),
            Expr::Binary(_, a, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }

    pub fn eval(&self, scope: &dyn Scope) -> Result<Value, EvalError> {
        match self {
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Ref(r) => scope.resolve(r),
            Expr::Not(e) => Ok(Value::Bool(!e.eval(scope)?.is_truthy())),
            Expr::Binary(BinaryOp::And, a, b) => {
                let l = a.eval(scope)?;
                if !l.is_truthy() {
                    return Ok(Value::Bool(false));
                }
                Ok(Value::Bool(b.eval(scope)?.is_truthy()))
            }
            Expr::Binary(BinaryOp::Or, a, b) => {
                let l = a.eval(scope)?;
                if l.is_truthy() {
                    return Ok(Value::Bool(true));
                }
                Ok(Value::Bool(b.eval(scope)?.is_truthy()))
            }
            Expr::Binary(op, a, b) => compare(*op, &a.eval(scope)?, &b.eval(scope)?),
        }
    }
}

fn compare(op: BinaryOp, l: &Value, r: &Value) -> Result<Value, EvalError> {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (l, r) {
        (Value::Number(a), Value::Number(b)) => a.partial_cmp(b),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    let result = match op {
        BinaryOp::Eq => l == r,
        BinaryOp::Ne => l != r,
        _ => {
            let Some(o) = ordering else {
                return Err(EvalError(format!(
                    "cannot compare {} with {} using `{}`",
                    l.type_name(),
                    r.type_name(),
                    op.symbol()
                )));
            };
            match op {
                BinaryOp::Lt => o == Ordering::Less,
                BinaryOp::Le => o != Ordering::Greater,
                BinaryOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }
        }
    };
    Ok(Value::Bool(result))
}

/// Follows `rest` into a value: fields of mappings, indexes of lists.
pub fn follow_segments(
    mut value: Value,
    rest: &[Segment],
    what: &dyn fmt::Display,
) -> Result<Value, EvalError> {
    for seg in rest {
        value = match (value, seg) {
            (Value::Map(mut m), Segment::Field(f)) => m
                .remove(f)
                .ok_or_else(|| EvalError(format!("{what} has no field `{f}`")))?,
            (Value::List(mut l), Segment::Index(i)) => {
                if *i >= l.len() {
                    return Err(EvalError(format!(
                        "{what}: index {i} is out of range (the list has {} items)",
                        l.len()
                    )));
                }
                l.swap_remove(*i)
            }
            (v, Segment::Field(f)) => {
                return Err(EvalError(format!(
                    "{what}: a {} has no field `{f}`",
                    v.type_name()
                )))
            }
            (v, Segment::Index(_)) => {
                return Err(EvalError(format!(
                    "{what}: a {} cannot be indexed",
                    v.type_name()
                )))
            }
        };
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Scope for Fixed {
        fn resolve(&self, r: &Reference) -> Result<Value, EvalError> {
            match &r.root {
                Root::Param(p) if p == "threshold" => Ok(Value::Number(0.5)),
                Root::Input(i) if i == "name" => Ok(Value::String("ct".into())),
                _ => Err(EvalError(format!("no {r}"))),
            }
        }
    }

    #[test]
    fn parses_references() {
        let e = Expr::parse("steps.load.outputs.volume").unwrap();
        let refs = e.references();
        assert_eq!(
            refs[0].root,
            Root::StepOutput {
                step: "load".into(),
                output: "volume".into()
            }
        );
        let e = Expr::parse("inputs.studies.files[2]").unwrap();
        assert_eq!(
            e.references()[0].rest,
            vec![Segment::Field("files".into()), Segment::Index(2)]
        );
    }

    #[test]
    fn evaluates_logic() {
        let e = Expr::parse("params.threshold > 0 && (inputs.name == 'ct' || false)").unwrap();
        assert_eq!(e.eval(&Fixed).unwrap(), Value::Bool(true));
        let e = Expr::parse("!(params.threshold >= 1)").unwrap();
        assert_eq!(e.eval(&Fixed).unwrap(), Value::Bool(true));
        let e = Expr::parse("inputs.name < 3").unwrap();
        assert!(e.eval(&Fixed).is_err());
    }

    #[test]
    fn errors_have_offsets() {
        let err = Expr::parse("params.x >").unwrap_err();
        assert_eq!(err.offset, 10);
        let err = Expr::parse("foo.bar").unwrap_err();
        assert!(err.message.contains("unknown name `foo`"));
        let err = Expr::parse("steps.a.output.x").unwrap_err();
        assert!(err.message.contains("outputs"), "{}", err.message);
        let err = Expr::parse("params.x $").unwrap_err();
        assert_eq!(err.offset, 9);
        assert!(Expr::parse("'abc").is_err());
        assert!(Expr::parse("(params.x").is_err());
    }
}
