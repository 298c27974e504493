//! A small RSQL subset for Jamf `filter=`: `field==value`, `!=`, `=in=(a,b)`, `=out=(..)`,
//! quoted or bare values, `*` wildcards, `;`/` and ` for AND, `,`/` or ` for OR.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Cmp {
        field: String,
        negate: bool,
        values: Vec<String>,
    },
}

/// Splits at a separator outside quotes and parentheses.
fn split_top(s: &str, seps: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut cur = String::new();
    let mut i = 0;
    let chars: Vec<char> = s.chars().collect();
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            cur.push(c);
            if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            let rest: String = chars[i..].iter().collect();
            if let Some(sep) = seps.iter().find(|sep| rest.starts_with(**sep)) {
                out.push(std::mem::take(&mut cur));
                i += sep.chars().count();
                continue;
            }
        }
        cur.push(c);
        i += 1;
    }
    out.push(cur);
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        v[1..v.len() - 1].to_owned()
    } else {
        v.to_owned()
    }
}

pub(crate) fn parse(s: &str) -> Result<Expr, String> {
    let ors = split_top(s, &[",", " or "]);
    let mut alts = Vec::new();
    for o in ors {
        let ands = split_top(&o, &[";", " and "]);
        let mut all = Vec::new();
        for a in ands {
            all.push(parse_cmp(a.trim())?);
        }
        alts.push(Expr::And(all));
    }
    Ok(Expr::Or(alts))
}

fn parse_cmp(s: &str) -> Result<Expr, String> {
    for (op, negate, list) in [
        ("=in=", false, true),
        ("=out=", true, true),
        ("==", false, false),
        ("!=", true, false),
    ] {
        if let Some((f, v)) = s.split_once(op) {
            let field = f.trim().to_owned();
            if field.is_empty() {
                return Err(format!("missing field in {s:?}"));
            }
            let values = if list {
                let v = v.trim();
                let inner = v
                    .strip_prefix('(')
                    .and_then(|v| v.strip_suffix(')'))
                    .ok_or_else(|| format!("{op} needs a (list) in {s:?}"))?;
                split_top(inner, &[","])
                    .iter()
                    .map(|x| unquote(x))
                    .collect()
            } else {
                vec![unquote(v)]
            };
            return Ok(Expr::Cmp {
                field,
                negate,
                values,
            });
        }
    }
    Err(format!("unsupported RSQL comparison {s:?}"))
}

fn glob(pattern: &str, s: &str) -> bool {
    if !pattern.contains('*') {
        return pattern.eq_ignore_ascii_case(s);
    }
    let p = pattern.to_lowercase();
    let s = s.to_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    let mut rest = s.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !rest.starts_with(part) {
                return false;
            }
            rest = &rest[part.len()..];
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    rest.is_empty()
}

impl Expr {
    /// Evaluates against a record; `get` returns `None` for an unknown field.
    pub fn eval(&self, get: &dyn Fn(&str) -> Option<String>) -> Result<bool, String> {
        Ok(match self {
            Expr::Or(v) => {
                for e in v {
                    if e.eval(get)? {
                        return Ok(true);
                    }
                }
                false
            }
            Expr::And(v) => {
                for e in v {
                    if !e.eval(get)? {
                        return Ok(false);
                    }
                }
                true
            }
            Expr::Cmp {
                field,
                negate,
                values,
            } => {
                let actual = get(field).ok_or_else(|| format!("unknown filter field {field:?}"))?;
                values.iter().any(|v| glob(v, &actual)) != *negate
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsql_subset_parses_and_evaluates() {
        let get = |f: &str| match f {
            "hardware.serialNumber" => Some("C02ABC".to_owned()),
            "id" => Some("7".to_owned()),
            _ => None,
        };
        let t = |s: &str| parse(s).unwrap().eval(&get).unwrap();
        assert!(t(r#"hardware.serialNumber=="C02ABC""#));
        assert!(t("hardware.serialNumber==C02ABC"));
        assert!(t("hardware.serialNumber=in=(X,C02ABC)"));
        assert!(!t("hardware.serialNumber=out=(X,C02ABC)"));
        assert!(t("id==8,id==7"));
        assert!(!t("id==8;hardware.serialNumber==C02ABC"));
        assert!(t("hardware.serialNumber==C02*"));
        assert!(parse("nonsense").is_err());
        assert!(parse("x==1").unwrap().eval(&get).is_err());
    }
}
