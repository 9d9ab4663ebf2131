//! RFC 9449 rules both the authorization server and resource verifiers apply.

/// The form in which a DPoP proof's `htu` is compared with the request URL: query and
/// fragment removed (RFC 9449 §4.3 step 9), scheme and host lower-cased.
pub fn normalize_htu(url: &str) -> String {
    let without = url.split(['?', '#']).next().unwrap_or(url);
    match without.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            format!(
                "{}://{}/{path}",
                scheme.to_ascii_lowercase(),
                authority.to_ascii_lowercase()
            )
        }
        None => without.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_htu;

    #[test]
    fn query_fragment_and_case_of_scheme_and_host_are_ignored_but_not_of_the_path() {
        assert_eq!(
            normalize_htu("HTTP://Example.COM/token?x=1#f"),
            "http://example.com/token"
        );
        assert_eq!(normalize_htu("https://a.example"), "https://a.example/");
        assert_ne!(
            normalize_htu("http://example.com/Token"),
            normalize_htu("http://example.com/token")
        );
    }
}
