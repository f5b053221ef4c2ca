//! PromQL as the tests read it: the series selectors of an expression, with their ranges.

use std::time::Duration;

use promql_parser::parser::{Expr, parse};

/// One series selector of an expression: its metric name and, for a range selector, its
/// range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// The metric name (`__name__`), empty if the selector has none.
    pub name: String,
    /// The range of `name{...}[range]`; `None` for an instant selector.
    pub range: Option<Duration>,
}

/// Every series selector of `expr`, or the parser's error.
pub fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    let ast = parse(expr)?;
    let mut out = Vec::new();
    walk(&ast, &mut out);
    Ok(out)
}

fn walk(e: &Expr, out: &mut Vec<Selector>) {
    match e {
        Expr::Aggregate(a) => {
            walk(&a.expr, out);
            if let Some(p) = &a.param {
                walk(p, out);
            }
        }
        Expr::Unary(u) => walk(&u.expr, out),
        Expr::Binary(b) => {
            walk(&b.lhs, out);
            walk(&b.rhs, out);
        }
        Expr::Paren(p) => walk(&p.expr, out),
        Expr::Subquery(s) => walk(&s.expr, out),
        Expr::VectorSelector(v) => out.push(Selector {
            name: v.name.clone().unwrap_or_default(),
            range: None,
        }),
        Expr::MatrixSelector(m) => out.push(Selector {
            name: m.vs.name.clone().unwrap_or_default(),
            range: Some(m.range),
        }),
        Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}
