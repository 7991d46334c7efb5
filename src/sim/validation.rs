//! Generic validators with apimachinery's messages: DNS names, label keys and values, port
//! numbers and names, IP addresses and CIDRs, and object metadata.

use super::errors::Cause;
use super::model::ObjectMeta;
use serde_json::json;

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
/// The message for an invalid IP address.
pub(crate) const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
/// The message for a port number out of range.
pub(crate) const PORT_MSG: &str = "must be between 1 and 65535, inclusive";

fn is_label_chars(s: &str, first_alpha: bool) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && (if first_alpha {
            b[0].is_ascii_lowercase()
        } else {
            b[0].is_ascii_alphanumeric()
        })
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn too_long(max: usize) -> String {
    format!("must be no more than {max} characters")
}

/// The errors of a name limited to `max` characters and of the form `well_formed` says.
fn length_and_form(s: &str, max: usize, well_formed: bool, form_msg: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > max {
        errs.push(too_long(max));
    }
    if !well_formed {
        errs.push(form_msg.into());
    }
    errs
}

/// RFC 1123 label (namespace names, port names).
pub(crate) fn dns1123_label(s: &str) -> Vec<String> {
    length_and_form(s, 63, is_label_chars(s, false), DNS1123_LABEL_MSG)
}

/// RFC 1035 label (Service names).
pub(crate) fn dns1035_label(s: &str) -> Vec<String> {
    length_and_form(s, 63, is_label_chars(s, true), DNS1035_LABEL_MSG)
}

/// RFC 1123 subdomain (externalName, label key prefixes).
pub(crate) fn dns1123_subdomain(s: &str) -> Vec<String> {
    let well_formed = !s.is_empty() && s.split('.').all(|l| is_label_chars(l, false));
    length_and_form(s, 253, well_formed, DNS1123_SUBDOMAIN_MSG)
}

fn is_label_value_chars(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A label value (may be empty).
pub(crate) fn label_value(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    length_and_form(s, 63, is_label_value_chars(s), LABEL_VALUE_MSG)
}

/// A qualified name (`prefix/name` label and annotation keys).
pub(crate) fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".into());
        } else {
            for e in dns1123_subdomain(p) {
                errs.push(format!("prefix part {e}"));
            }
        }
    }
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
        return errs;
    }
    if name.len() > 63 {
        errs.push(format!("name part {}", too_long(63)));
    }
    if !is_label_value_chars(name) || name.contains('/') {
        errs.push(QUALIFIED_NAME_MSG.into());
    }
    errs
}

/// An IANA service name (named ports).
pub(crate) fn port_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 15 {
        errs.push(too_long(15));
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// Whether `s` is an IP address.
pub(crate) fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// Whether `s` is a CIDR.
pub(crate) fn is_cidr(s: &str) -> bool {
    s.parse::<ipnet::IpNet>().is_ok()
}

/// Validates labels and annotations of `meta`.
pub(crate) fn labels_and_annotations(meta: &ObjectMeta, causes: &mut Vec<Cause>) {
    if let Some(labels) = &meta.labels {
        for (k, v) in labels {
            for e in qualified_name(k) {
                causes.push(Cause::invalid("metadata.labels", &json!(k), &e));
            }
            for e in label_value(v) {
                causes.push(Cause::invalid("metadata.labels", &json!(v), &e));
            }
        }
    }
    if let Some(ann) = &meta.annotations {
        let mut total = 0;
        for (k, v) in ann {
            for e in qualified_name(&k.to_lowercase()) {
                causes.push(Cause::invalid("metadata.annotations", &json!(k), &e));
            }
            total += k.len() + v.len();
        }
        if total > 256 * 1024 {
            causes.push(Cause {
                reason: "FieldValueTooLong".into(),
                message: "Too long: must have at most 262144 bytes".into(),
                field: "metadata.annotations".into(),
            });
        }
    }
}

/// Validates the name of a new object: `name_check` is the kind's name rule.
pub(crate) fn object_name(
    meta: &ObjectMeta,
    name_check: fn(&str) -> Vec<String>,
    causes: &mut Vec<Cause>,
) {
    match meta.name.as_deref() {
        None | Some("") => causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(name) => {
            for e in name_check(name) {
                causes.push(Cause::invalid("metadata.name", &json!(name), &e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns1035_label("web-1").is_empty());
        assert!(!dns1035_label("1web").is_empty());
        assert!(!dns1035_label("Web").is_empty());
        assert!(dns1123_label("1web").is_empty());
        assert!(dns1123_subdomain("db.example.com").is_empty());
        assert!(!dns1123_subdomain("db..example").is_empty());
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert!(!qualified_name("bad key").is_empty());
        assert!(label_value("").is_empty());
        assert!(!label_value("-x").is_empty());
        assert!(port_name("http").is_empty());
        assert!(!port_name("8080").is_empty());
        assert!(!port_name("a--b").is_empty());
    }

    #[test]
    fn length_and_form_errors_are_reported_together() {
        assert_eq!(dns1035_label("1web"), vec![DNS1035_LABEL_MSG.to_string()]);
        let long = "a".repeat(64);
        assert_eq!(dns1123_label(&long), vec![too_long(63)]);
        assert_eq!(
            dns1035_label(&format!("{long}-")),
            vec![too_long(63), DNS1035_LABEL_MSG.to_string()]
        );
        assert_eq!(
            dns1123_subdomain(&format!("{}.", "a.".repeat(127))),
            vec![too_long(253), DNS1123_SUBDOMAIN_MSG.to_string()]
        );
        assert_eq!(
            dns1123_subdomain(""),
            vec![DNS1123_SUBDOMAIN_MSG.to_string()]
        );
        assert_eq!(label_value(&long), vec![too_long(63)]);
        assert_eq!(label_value("-x"), vec![LABEL_VALUE_MSG.to_string()]);
    }
}
