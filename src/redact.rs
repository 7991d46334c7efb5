//! Keeping secrets out of messages (SPEC §11): URLs are shown without userinfo, query or
//! fragment, wherever they reach a log line, an error body or `/readyz`.

/// `scheme://host:port/path` of `u`: userinfo, query and fragment removed.
pub(crate) fn url(u: &url::Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A URL as written in configuration, shown safely: parsed and redacted by [`url`] when it
/// parses; otherwise cut at the first `?` or `#` and with anything before an `@` in the
/// authority replaced by `***`.
pub(crate) fn url_text(s: &str) -> String {
    if let Ok(u) = url::Url::parse(s) {
        return url(&u);
    }
    let cut = s.find(['?', '#']).map_or(s, |i| &s[..i]);
    let (scheme, rest) = match cut.find("//") {
        Some(i) => cut.split_at(i + 2),
        None => ("", cut),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => format!("{scheme}{rest}"),
    }
}

/// A secret value from configuration (a token): compared and cloned like a string, but its
/// `Debug` output is `Secret([redacted])`; read it with [`Secret::expose`].
#[derive(Clone, Default)]
pub struct Secret(secrecy::SecretString);

impl Secret {
    /// The secret text, for the one place that sends it.
    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s.into())
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.into())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_do_not_debug() {
        let s = super::Secret::from("canary-value");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(s.expose(), "canary-value");
    }

    #[test]
    fn urls_lose_their_secrets() {
        let u = url::Url::parse("https://user:pw@h.example:6443/sub?access_token=x#f").unwrap();
        assert_eq!(super::url(&u), "https://h.example:6443/sub");
        assert_eq!(super::url_text("htp:/x?access_token=canary"), "htp:/x");
        assert_eq!(
            super::url_text("https://u:canary@[bad/p?q=1"),
            "https://***@[bad/p"
        );
    }
}
