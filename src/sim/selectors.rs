//! `labelSelector` and `fieldSelector` parsing and matching, with the grammar and error
//! messages of apimachinery's `labels.Parse` and `fields.ParseSelector`.

use super::errors::SimError;
use super::store::Stored;
use super::validation;
use std::collections::BTreeMap;

/// One label requirement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Requirement {
    /// `key`
    Exists(String),
    /// `!key`
    NotExists(String),
    /// `key=v`, `key==v`
    Equals(String, String),
    /// `key!=v`
    NotEquals(String, String),
    /// `key in (a,b)`
    In(String, Vec<String>),
    /// `key notin (a,b)`
    NotIn(String, Vec<String>),
    /// `key>n`
    Gt(String, i64),
    /// `key<n`
    Lt(String, i64),
}

/// A parsed label selector (all requirements must hold).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(pub Vec<Requirement>);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    In,
    NotIn,
    Open,
    Close,
    Comma,
}

fn tok_name(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => s.clone(),
        Tok::Not => "!".into(),
        Tok::Eq => "=".into(),
        Tok::DoubleEq => "==".into(),
        Tok::NotEq => "!=".into(),
        Tok::Gt => ">".into(),
        Tok::Lt => "<".into(),
        Tok::In => "in".into(),
        Tok::NotIn => "notin".into(),
        Tok::Open => "(".into(),
        Tok::Close => ")".into(),
        Tok::Comma => ",".into(),
    }
}

fn lex(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::NotEq);
                i += 2
            }
            '!' => {
                out.push(Tok::Not);
                i += 1
            }
            '=' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::DoubleEq);
                i += 2
            }
            '=' => {
                out.push(Tok::Eq);
                i += 1
            }
            '>' => {
                out.push(Tok::Gt);
                i += 1
            }
            '<' => {
                out.push(Tok::Lt);
                i += 1
            }
            '(' => {
                out.push(Tok::Open);
                i += 1
            }
            ')' => {
                out.push(Tok::Close);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            _ => {
                let start = i;
                while i < chars.len() && !" \t\n\r!=><(),".contains(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(match word.as_str() {
                    "in" => Tok::In,
                    "notin" => Tok::NotIn,
                    _ => Tok::Ident(word),
                });
            }
        }
    }
    out
}

fn parse_err(msg: String) -> SimError {
    SimError::bad_request(format!("unable to parse requirement: {msg}"))
}

fn check_key(key: &str) -> Result<(), SimError> {
    let errs = validation::qualified_name(key);
    if let Some(e) = errs.first() {
        return Err(parse_err(format!("key: Invalid value: {key:?}: {e}")));
    }
    Ok(())
}

fn check_value(i: usize, key: &str, v: &str) -> Result<(), SimError> {
    if let Some(e) = validation::label_value(v).first() {
        return Err(parse_err(format!(
            "values[{i}][{key}]: Invalid value: {v:?}: {e}"
        )));
    }
    Ok(())
}

impl LabelSelector {
    /// Parses a selector; malformed input is a 400 BadRequest.
    pub(crate) fn parse(s: &str) -> Result<LabelSelector, SimError> {
        let toks = lex(s);
        let mut reqs = Vec::new();
        let mut i = 0;
        let expect_end = |i: usize, toks: &[Tok]| -> Result<(), SimError> {
            match toks.get(i) {
                None | Some(Tok::Comma) => Ok(()),
                Some(t) => Err(parse_err(format!(
                    "found '{}', expected: ',' or 'end of string'",
                    tok_name(t)
                ))),
            }
        };
        while i < toks.len() {
            let req = match &toks[i] {
                Tok::Not => {
                    let key = match toks.get(i + 1) {
                        Some(Tok::Ident(k)) => k.clone(),
                        Some(t) => {
                            return Err(parse_err(format!(
                                "found '{}', expected: identifier",
                                tok_name(t)
                            )))
                        }
                        None => {
                            return Err(parse_err("found '', expected: identifier".to_string()))
                        }
                    };
                    check_key(&key)?;
                    i += 2;
                    Requirement::NotExists(key)
                }
                Tok::Ident(key) => {
                    let key = key.clone();
                    check_key(&key)?;
                    i += 1;
                    match toks.get(i) {
                        None | Some(Tok::Comma) => Requirement::Exists(key),
                        Some(op @ (Tok::Eq | Tok::DoubleEq | Tok::NotEq)) => {
                            let op = op.clone();
                            i += 1;
                            let value = match toks.get(i) {
                                Some(Tok::Ident(v)) => {
                                    i += 1;
                                    v.clone()
                                }
                                Some(Tok::In) | Some(Tok::NotIn) => {
                                    let v = tok_name(&toks[i]);
                                    i += 1;
                                    v
                                }
                                None | Some(Tok::Comma) => String::new(),
                                Some(t) => {
                                    return Err(parse_err(format!(
                                        "found '{}', expected: identifier",
                                        tok_name(t)
                                    )))
                                }
                            };
                            check_value(0, &key, &value)?;
                            if op == Tok::NotEq {
                                Requirement::NotEquals(key, value)
                            } else {
                                Requirement::Equals(key, value)
                            }
                        }
                        Some(op @ (Tok::Gt | Tok::Lt)) => {
                            let op = op.clone();
                            i += 1;
                            let n = match toks.get(i) {
                                Some(Tok::Ident(v)) => v.parse::<i64>().map_err(|_| {
                                    parse_err(
                                        "for 'Gt', 'Lt' operators, the value must be an integer"
                                            .to_string(),
                                    )
                                })?,
                                _ => {
                                    return Err(parse_err(
                                        "found '', expected: identifier".to_string(),
                                    ))
                                }
                            };
                            i += 1;
                            if op == Tok::Gt {
                                Requirement::Gt(key, n)
                            } else {
                                Requirement::Lt(key, n)
                            }
                        }
                        Some(op @ (Tok::In | Tok::NotIn)) => {
                            let op = op.clone();
                            i += 1;
                            if toks.get(i) != Some(&Tok::Open) {
                                return Err(parse_err(format!(
                                    "found '{}', expected: '('",
                                    toks.get(i).map(tok_name).unwrap_or_default()
                                )));
                            }
                            i += 1;
                            let mut values = Vec::new();
                            loop {
                                match toks.get(i) {
                                    Some(Tok::Ident(v)) => {
                                        values.push(v.clone());
                                        i += 1;
                                    }
                                    Some(Tok::Comma) | Some(Tok::Close) => {
                                        // An empty value.
                                        values.push(String::new());
                                    }
                                    Some(t) => {
                                        return Err(parse_err(format!(
                                            "found '{}', expected: ',', ')' or identifier",
                                            tok_name(t)
                                        )))
                                    }
                                    None => {
                                        return Err(parse_err(
                                            "found '', expected: ')'".to_string(),
                                        ))
                                    }
                                }
                                match toks.get(i) {
                                    Some(Tok::Comma) => i += 1,
                                    Some(Tok::Close) => {
                                        i += 1;
                                        break;
                                    }
                                    Some(t) => {
                                        return Err(parse_err(format!(
                                            "found '{}', expected: ',' or ')'",
                                            tok_name(t)
                                        )))
                                    }
                                    None => {
                                        return Err(parse_err(
                                            "found '', expected: ')'".to_string(),
                                        ))
                                    }
                                }
                            }
                            for (n, v) in values.iter().enumerate() {
                                check_value(n, &key, v)?;
                            }
                            if op == Tok::In {
                                Requirement::In(key, values)
                            } else {
                                Requirement::NotIn(key, values)
                            }
                        }
                        Some(t) => {
                            return Err(parse_err(format!(
                                "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                                tok_name(t)
                            )))
                        }
                    }
                }
                t => {
                    return Err(parse_err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        tok_name(t)
                    )))
                }
            };
            expect_end(i, &toks)?;
            reqs.push(req);
            if toks.get(i) == Some(&Tok::Comma) {
                i += 1;
                if i == toks.len() {
                    return Err(parse_err(
                        "found '', expected: !, identifier, or 'end of string'".into(),
                    ));
                }
            }
        }
        Ok(LabelSelector(reqs))
    }

    /// Whether the selector selects everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub(crate) fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k));
        self.0.iter().all(|r| match r {
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
            Requirement::Equals(k, v) => get(k) == Some(v),
            Requirement::NotEquals(k, v) => get(k) != Some(v),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(x)),
            Requirement::Gt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Requirement::Lt(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

/// One field requirement: `field` equal (or not) to `value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldRequirement {
    /// `metadata.name`, ...
    pub field: String,
    /// The value compared.
    pub value: String,
    /// `!=`.
    pub negate: bool,
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector(pub Vec<FieldRequirement>);

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push('\\');
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if escaped {
        cur.push('\\');
    }
    parts.push(cur);
    parts
}

fn unescape(s: &str) -> Result<String, SimError> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('\\' | ',' | '=' | '!')) => out.push(e),
                Some(e) => {
                    return Err(SimError::bad_request(format!(
                        "invalid field selector: invalid escape sequence: \\{e}"
                    )))
                }
                None => {
                    return Err(SimError::bad_request(
                        "invalid field selector: invalid escape sequence at end of string",
                    ))
                }
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

impl FieldSelector {
    /// Parses a selector, allowing only the fields in `known` (400 otherwise).
    pub(crate) fn parse(s: &str, known: &[&str]) -> Result<FieldSelector, SimError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector(reqs));
        }
        for part in split_unescaped(s, ',') {
            let (field, value, negate) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, false)
            } else {
                return Err(SimError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim().to_string();
            if !known.contains(&field.as_str()) {
                let list: Vec<String> = known.iter().map(|k| format!("{k:?}")).collect();
                return Err(SimError::bad_request(format!(
                    "{field:?} is not a known field selector: only {}",
                    list.join(", ")
                )));
            }
            reqs.push(FieldRequirement {
                field,
                value: unescape(value)?,
                negate,
            });
        }
        Ok(FieldSelector(reqs))
    }

    /// Whether the selector selects everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The name the selector pins (`metadata.name=x`), if any.
    pub(crate) fn pinned(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|r| r.field == field && !r.negate)
            .map(|r| r.value.as_str())
    }

    /// Whether `object` satisfies every requirement.
    pub(crate) fn matches(&self, object: &Stored) -> bool {
        self.0.iter().all(|r| {
            let v = object.field(&r.field).unwrap_or_default();
            (v == r.value) != r.negate
        })
    }
}

/// Both selectors of a list or watch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selectors {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Whether `object` is selected.
    pub(crate) fn matches(&self, object: &Stored) -> bool {
        self.labels.matches(object.labels()) && self.fields.matches(object)
    }

    /// Whether nothing is filtered.
    pub(crate) fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_operator() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "app in (web, db)",
            "tier notin (back)",
            "app",
            "!missing",
            "app=web,tier=front",
            "n>3",
            "n<9",
            "missing!=x",
            "",
        ];
        for s in yes {
            assert!(
                LabelSelector::parse(s).unwrap().matches(Some(&l)),
                "{s} should match"
            );
        }
        let no = [
            "app=db",
            "app!=web",
            "app in (db)",
            "tier notin (front)",
            "missing",
            "!app",
            "n>5",
        ];
        for s in no {
            assert!(
                !LabelSelector::parse(s).unwrap().matches(Some(&l)),
                "{s} should not match"
            );
        }
    }

    #[test]
    fn malformed_selectors_are_400() {
        for s in [
            "app in (web",
            "app=web=x",
            "=x",
            "app in web",
            "bad key=1",
            "a=b,",
            "app=bad value!",
        ] {
            let e = LabelSelector::parse(s).unwrap_err();
            assert_eq!(e.code, 400, "{s}");
        }
    }

    #[test]
    fn field_selectors() {
        let known = ["metadata.name", "metadata.namespace"];
        let f = FieldSelector::parse("metadata.name=web,metadata.namespace!=kube-system", &known)
            .unwrap();
        assert_eq!(f.0.len(), 2);
        assert_eq!(f.pinned("metadata.name"), Some("web"));
        assert!(FieldSelector::parse("spec.foo=1", &known)
            .unwrap_err()
            .message
            .contains("not a known field selector"));
        assert!(FieldSelector::parse("metadata.name", &known).is_err());
        let f = FieldSelector::parse("metadata.name==a\\,b", &known).unwrap();
        assert_eq!(f.0[0].value, "a,b");
    }
}
