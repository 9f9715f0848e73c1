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
