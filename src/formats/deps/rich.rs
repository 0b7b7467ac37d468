//! RPM dependency text: `name [op evr]`, or a rich (boolean) dependency such
//! as `(a >= 1 or (b if c))` (rpm 4.13+), parsed and evaluated.

use super::{Cap, Kind, Op};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Atom(Cap),
    /// An operator and its operands (`a or b or c` keeps all three).
    Op(BoolOp, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolOp {
    And,
    Or,
    If,
    IfElse,
    Unless,
    UnlessElse,
    With,
    Without,
}

/// Parses one dependency as rpm writes it.
pub fn parse(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text);
    let mut pos = 0;
    let e = expr(&tokens, &mut pos)?;
    if pos != tokens.len() {
        return Err(format!("unexpected {:?}", tokens[pos]));
    }
    Ok(e)
}

fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            // A '(' inside a name (`perl(Foo)`, `libc.so.6()(64bit)`) is part of it.
            '(' if cur.is_empty() => {
                out.push("(".into());
            }
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' if depth > 0 => {
                depth -= 1;
                cur.push(c);
            }
            ')' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(")".into());
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn bool_op(t: &str) -> Option<BoolOp> {
    Some(match t {
        "and" => BoolOp::And,
        "or" => BoolOp::Or,
        "if" => BoolOp::If,
        "unless" => BoolOp::Unless,
        "with" => BoolOp::With,
        "without" => BoolOp::Without,
        _ => return None,
    })
}

/// An atom (`name [op evr]`) or a parenthesised boolean expression.
fn expr(t: &[String], pos: &mut usize) -> Result<Expr, String> {
    let Some(first) = t.get(*pos) else {
        return Err("empty dependency".into());
    };
    if first != "(" {
        return atom(t, pos);
    }
    *pos += 1;
    let mut parts = vec![expr(t, pos)?];
    let mut op: Option<BoolOp> = None;
    loop {
        match t.get(*pos).map(String::as_str) {
            Some(")") => {
                *pos += 1;
                break;
            }
            Some("else") => {
                op = match op {
                    Some(BoolOp::If) => Some(BoolOp::IfElse),
                    Some(BoolOp::Unless) => Some(BoolOp::UnlessElse),
                    _ => return Err("else without if or unless".into()),
                };
                *pos += 1;
                parts.push(expr(t, pos)?);
            }
            Some(w) => {
                let Some(o) = bool_op(w) else {
                    return Err(format!("unknown operator {w:?}"));
                };
                // `a or b or c` repeats one operator; mixing needs parentheses.
                if op.is_some_and(|cur| {
                    cur != o || !matches!(o, BoolOp::And | BoolOp::Or | BoolOp::With)
                }) {
                    return Err(format!("{w:?} after another operator needs parentheses"));
                }
                op = Some(o);
                *pos += 1;
                parts.push(expr(t, pos)?);
            }
            None => return Err("unbalanced parentheses".into()),
        }
    }
    Ok(match op {
        None => parts.pop().ok_or("empty parentheses")?,
        Some(o) => Expr::Op(o, parts),
    })
}

fn atom(t: &[String], pos: &mut usize) -> Result<Expr, String> {
    let name = t[*pos].clone();
    if name == ")" || bool_op(&name).is_some() || name == "else" {
        return Err(format!("expected a name, found {name:?}"));
    }
    *pos += 1;
    let rel = match t.get(*pos).and_then(|o| Op::parse(o, Kind::Rpm)) {
        Some(op) => {
            let evr = t
                .get(*pos + 1)
                .filter(|v| *v != ")")
                .ok_or("operator without version")?;
            *pos += 2;
            Some((op, evr.clone()))
        }
        None => None,
    };
    Ok(Expr::Atom(Cap { name, rel }))
}

/// Evaluates `e`: `atom` says whether one capability is met, `with` whether
/// one build meets two. `None`: a form this does not judge.
pub fn eval(
    e: &Expr,
    atom: &dyn Fn(&Cap) -> bool,
    with: &dyn Fn(&Cap, &Cap) -> Option<bool>,
) -> Option<bool> {
    let ev = |x: &Expr| eval(x, atom, with);
    match e {
        Expr::Atom(c) => Some(atom(c)),
        Expr::Op(op, parts) => match (op, parts.as_slice()) {
            (BoolOp::And, _) => all(parts.iter().map(ev)),
            (BoolOp::Or, _) => any(parts.iter().map(ev)),
            // The condition may simply never be installed: met when A is,
            // or when nothing could meet B.
            (BoolOp::If, [a, b]) => any([ev(a), ev(b).map(|x| !x)].into_iter()),
            (BoolOp::IfElse, [a, b, c]) => match ev(b)? {
                true => any([ev(a), ev(c)].into_iter()),
                false => ev(c),
            },
            (BoolOp::Unless, [a, b]) => any([ev(a), ev(b)].into_iter()),
            (BoolOp::UnlessElse, [a, b, c]) => any([ev(a), ev(b), ev(c)].into_iter()),
            (BoolOp::With, [Expr::Atom(a), Expr::Atom(b)]) => with(a, b),
            (BoolOp::Without, [Expr::Atom(a), Expr::Atom(_)]) => Some(atom(a)),
            _ => None,
        },
    }
}

/// `Some(true)` if every part is; `Some(false)` if any is `Some(false)`.
fn all(parts: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for p in parts {
        match p {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(true)
    }
}

fn any(parts: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for p in parts {
        match p {
            Some(true) => return Some(true),
            None => unknown = true,
            Some(false) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(false)
    }
}
