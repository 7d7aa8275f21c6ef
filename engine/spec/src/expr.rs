//! The expression language inside `${{ ... }}`: references to inputs, params, step outputs and the fan-out
//! item, literals, comparisons and Boolean logic.
//!
//! Hand-written rather than taken from a crate: the grammar is a dozen rules, errors must carry the
//! column inside the expression, and the reference structure must be visible to the validator and planner.

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
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let tokens = lex(text)?;
        let mut p = ExprParser {
            tokens,
            pos: 0,
            end: text.len(),
        };
        let e = p.or()?;
        match p.peek() {
            None => Ok(e),
            Some((off, t)) => Err(ExprError {
                offset: off,
                message: format!("unexpected {t} after the end of the expression"),
            }),
        }
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

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Number(f64),
    Str(String),
    Dot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Not,
    Op(BinaryOp),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Ident(s) => write!(f, "`{s}`"),
            Token::Number(n) => write!(f, "number {n}"),
            Token::Str(s) => write!(f, "string '{s}'"),
            Token::Dot => f.write_str("`.`"),
            Token::LBracket => f.write_str("`[`"),
            Token::RBracket => f.write_str("`]`"),
            Token::LParen => f.write_str("`(`"),
            Token::RParen => f.write_str("`)`"),
            Token::Not => f.write_str("`!`"),
            Token::Op(op) => write!(f, "`{}`", op.symbol()),
        }
    }
}

fn lex(text: &str) -> Result<Vec<(usize, Token)>, ExprError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let two = |s: &str| text[i..].starts_with(s);
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'.' => {
                i += 1;
                Token::Dot
            }
            b'[' => {
                i += 1;
                Token::LBracket
            }
            b']' => {
                i += 1;
                Token::RBracket
            }
            b'(' => {
                i += 1;
                Token::LParen
            }
            b')' => {
                i += 1;
                Token::RParen
            }
            _ if two("&&") => {
                i += 2;
                Token::Op(BinaryOp::And)
            }
            _ if two("||") => {
                i += 2;
                Token::Op(BinaryOp::Or)
            }
            _ if two("==") => {
                i += 2;
                Token::Op(BinaryOp::Eq)
            }
            _ if two("!=") => {
                i += 2;
                Token::Op(BinaryOp::Ne)
            }
            _ if two("<=") => {
                i += 2;
                Token::Op(BinaryOp::Le)
            }
            _ if two(">=") => {
                i += 2;
                Token::Op(BinaryOp::Ge)
            }
            b'<' => {
                i += 1;
                Token::Op(BinaryOp::Lt)
            }
            b'>' => {
                i += 1;
                Token::Op(BinaryOp::Gt)
            }
            b'!' => {
                i += 1;
                Token::Not
            }
            b'\'' | b'"' => {
                let quote = c;
                i += 1;
                let body_start = i;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                if i >= bytes.len() {
                    return Err(ExprError {
                        offset: start,
                        message: "unterminated string literal".into(),
                    });
                }
                let s = text[body_start..i].to_string();
                i += 1;
                Token::Str(s)
            }
            b'0'..=b'9' | b'-' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_digit() || matches!(bytes[i], b'.' | b'e' | b'E'))
                {
                    i += 1;
                }
                let s = &text[start..i];
                match s.parse::<f64>() {
                    Ok(n) => Token::Number(n),
                    Err(_) => {
                        return Err(ExprError {
                            offset: start,
                            message: format!("`{s}` is not a number"),
                        })
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-'))
                {
                    i += 1;
                }
                Token::Ident(text[start..i].to_string())
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(ExprError {
                    offset: start,
                    message: format!("unexpected character `{ch}`"),
                });
            }
        };
        out.push((start, tok));
    }
    Ok(out)
}

struct ExprParser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
}

impl ExprParser {
    fn peek(&self) -> Option<(usize, &Token)> {
        self.tokens.get(self.pos).map(|(o, t)| (*o, t))
    }

    fn next(&mut self) -> Option<(usize, Token)> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn error_here(&self, message: String) -> ExprError {
        ExprError {
            offset: self.peek().map(|(o, _)| o).unwrap_or(self.end),
            message,
        }
    }

    fn binary_level(
        &mut self,
        ops: &[BinaryOp],
        next: fn(&mut Self) -> Result<Expr, ExprError>,
    ) -> Result<Expr, ExprError> {
        let mut left = next(self)?;
        while let Some((_, Token::Op(op))) = self.peek() {
            let op = *op;
            if !ops.contains(&op) {
                break;
            }
            self.pos += 1;
            let right = next(self)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        self.binary_level(&[BinaryOp::Or], Self::and)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        self.binary_level(&[BinaryOp::And], Self::comparison)
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        let left = self.unary()?;
        if let Some((_, Token::Op(op))) = self.peek() {
            let op = *op;
            if op.is_comparison() {
                self.pos += 1;
                let right = self.unary()?;
                return Ok(Expr::Binary(op, Box::new(left), Box::new(right)));
            }
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        if let Some((_, Token::Not)) = self.peek() {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let Some((offset, tok)) = self.next() else {
            return Err(ExprError {
                offset: self.end,
                message: "expected a value, found the end of the expression".into(),
            });
        };
        match tok {
            Token::Number(n) => Ok(Expr::Literal(Value::Number(n))),
            Token::Str(s) => Ok(Expr::Literal(Value::String(s))),
            Token::LParen => {
                let e = self.or()?;
                match self.next() {
                    Some((_, Token::RParen)) => Ok(e),
                    _ => Err(ExprError {
                        offset,
                        message: "`(` is never closed".into(),
                    }),
                }
            }
            Token::Ident(name) => match name.as_str() {
                "true" => Ok(Expr::Literal(Value::Bool(true))),
                "false" => Ok(Expr::Literal(Value::Bool(false))),
                "null" => Ok(Expr::Literal(Value::Null)),
                _ => self.reference(offset, name).map(Expr::Ref),
            },
            other => Err(ExprError {
                offset,
                message: format!("expected a value, found {other}"),
            }),
        }
    }

    fn field(&mut self, what: &str) -> Result<String, ExprError> {
        match self.next() {
            Some((_, Token::Dot)) => {}
            _ => {
                self.pos -= 1;
                return Err(self.error_here(format!("expected `.{what}`")));
            }
        }
        match self.next() {
            Some((_, Token::Ident(s))) => Ok(s),
            _ => {
                self.pos -= 1;
                Err(self.error_here(format!("expected {what} after `.`")))
            }
        }
    }

    fn reference(&mut self, offset: usize, name: String) -> Result<Reference, ExprError> {
        let root = match name.as_str() {
            "inputs" => Root::Input(self.field("an input name")?),
            "params" => Root::Param(self.field("a parameter name")?),
            "steps" => {
                let step = self.field("a step id")?;
                let kw = self.field("`outputs`")?;
                if kw != "outputs" {
                    return Err(ExprError {
                        offset,
                        message: format!("expected `steps.{step}.outputs.NAME`, found `.{kw}`"),
                    });
                }
                let output = self.field("an output name")?;
                Root::StepOutput { step, output }
            }
            "item" => Root::Item,
            "index" => Root::Index,
            other => {
                return Err(ExprError {
                    offset,
                    message: format!(
                        "unknown name `{other}`: a reference starts with inputs, params, steps, item or index"
                    ),
                })
            }
        };
        let mut rest = Vec::new();
        loop {
            match self.peek() {
                Some((_, Token::Dot)) => rest.push(Segment::Field(self.field("a field name")?)),
                Some((_, Token::LBracket)) => {
                    self.pos += 1;
                    match self.next() {
                        Some((_, Token::Number(n))) if n >= 0.0 && n.fract() == 0.0 => {
                            rest.push(Segment::Index(n as usize))
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.error_here("expected a list index".into()));
                        }
                    }
                    match self.next() {
                        Some((_, Token::RBracket)) => {}
                        _ => {
                            self.pos -= 1;
                            return Err(self.error_here("expected `]`".into()));
                        }
                    }
                }
                _ => break,
            }
        }
        Ok(Reference { root, rest, offset })
    }
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
