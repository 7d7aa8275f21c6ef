//! The lexer and the recursive-descent parser of the expression language: text -> tokens -> `Expr`.

use std::fmt;

use super::{BinaryOp, Expr, ExprError, Reference, Root, Segment};
use crate::value::Value;

/// The expression in `text`, or the first syntax error with its offset.
pub(super) fn parse(text: &str) -> Result<Expr, ExprError> {
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
