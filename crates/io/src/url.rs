//! A disk image's URL as people may see it, and the name its outputs take from it: a URL's query
//! is a credential (an Azure SAS token), so it never reaches output, reports or errors. Shared by
//! the command line and the page.

/// The URL as people may see it: scheme, host and path, never the query (a SAS token) nor any
/// user and password.
pub fn shown(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or("");
    match without_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority.rsplit('@').next().unwrap_or(authority);
            let hidden = if url.contains('?') { "?…" } else { "" };
            format!("{scheme}://{host}/{path}{hidden}")
        }
        None => "(URL)".to_string(),
    }
}

/// The last segment of the URL's path (never the query): the name an image's outputs are named
/// after. `None` for a URL whose path ends without a name.
pub fn name(url: &str) -> Option<&str> {
    let without_query = url.split(['?', '#']).next().unwrap_or("");
    let (_, rest) = without_query.split_once("://")?;
    let (_, path) = rest.split_once('/')?;
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    (!last.is_empty()).then_some(last)
}

/// `text` (someone else's words, such as a browser's error message) with `url` in it shown as
/// [`shown`] shows it; a text that still holds a query after that is replaced whole, since the
/// query is a credential.
pub fn without_query(text: &str, url: &str) -> String {
    let scrubbed = text.replace(url, &shown(url));
    let query = url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(q));
    let leaks = query.is_some_and(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('=').map(|(_, v)| v))
            .any(|v| v.len() >= 8 && scrubbed.contains(v))
    });
    if leaks || scrubbed.contains("sig=") {
        "(the text named the URL with its query, so it is not shown)".to_string()
    } else {
        scrubbed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_never_shown() {
        assert_eq!(
            shown("https://acct.blob.core.windows.net/vhds/disk.vhd?sv=2022&sig=SECRET"),
            "https://acct.blob.core.windows.net/vhds/disk.vhd?…"
        );
        assert_eq!(
            shown("https://user:pw@host/x.vhd#frag"),
            "https://host/x.vhd"
        );
        assert_eq!(shown("http://host"), "http://host/");
        assert!(!shown("https://h/p?sig=abc%2F").contains("sig"));
    }

    #[test]
    fn someone_elses_words_lose_the_query() {
        let url =
            "https://acct.blob.core.windows.net/vhds/disk.vhd?sv=2022-11-02&sig=SECRETSIGNATURE%3D";
        assert_eq!(
            without_query(&format!("Failed to load '{url}'."), url),
            "Failed to load 'https://acct.blob.core.windows.net/vhds/disk.vhd?…'."
        );
        // The URL written differently (decoded), or a part of the query alone: not shown at all.
        let decoded = url.replace("%3D", "=");
        assert!(!without_query(&format!("at {decoded}"), url).contains("SECRET"));
        assert!(!without_query("token SECRETSIGNATURE%3D", url).contains("SECRET"));
        assert_eq!(without_query("NetworkError", url), "NetworkError");
    }

    #[test]
    fn the_name_is_the_last_path_segment() {
        assert_eq!(
            name("https://acct.blob.core.windows.net/vhds/disk.vhd?sv=1&sig=S"),
            Some("disk.vhd")
        );
        assert_eq!(
            name("http://127.0.0.1:10000/devstoreaccount1/disks/a.vhd"),
            Some("a.vhd")
        );
        assert_eq!(name("https://host/"), None);
        assert_eq!(name("https://host"), None);
        assert_eq!(name("not a url"), None);
    }
}
