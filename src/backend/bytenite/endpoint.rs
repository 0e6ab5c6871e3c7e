//! Where the ByteNite API lives: `[bytenite] url` as the user pasted it,
//! reduced to the API root that `/v1/dev/…` and `/v1/auth/…` hang off.
//!
//! ByteNite's OpenAPI document names its server `https://api.bytenite.com/v1/dev`,
//! the docs name the root `https://api.bytenite.com`, and people paste both,
//! with or without a trailing slash. All of them mean the same API.

/// Path suffixes that name a part of the API rather than its root.
const API_SUFFIXES: &[&str] = &["/v1/dev", "/v1/auth", "/v1"];

/// The API root, e.g. `https://api.bytenite.com`, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRoot {
    root: String,
    /// The user gave a server URL (`…/v1/dev`), not the root.
    trimmed: bool,
}

impl ApiRoot {
    /// Reads a configured URL; `None` when it is empty.
    pub fn parse(url: &str) -> Option<ApiRoot> {
        let mut root = url.trim().trim_end_matches('/');
        let mut trimmed = false;
        for suffix in API_SUFFIXES {
            let cut = root.len().checked_sub(suffix.len());
            let matches = cut.is_some_and(|at| {
                root.is_char_boundary(at) && root[at..].eq_ignore_ascii_case(suffix)
            });
            if let (true, Some(at)) = (matches, cut) {
                root = root[..at].trim_end_matches('/');
                trimmed = true;
                break;
            }
        }
        (!root.is_empty()).then(|| ApiRoot {
            root: root.to_string(),
            trimmed,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.root
    }

    /// Whether the configured URL ended in an API path (`/v1/dev`).
    pub fn was_trimmed(&self) -> bool {
        self.trimmed
    }

    /// A developer API URL: `dev("/apps")` is `{root}/v1/dev/apps`.
    pub fn dev(&self, path: &str) -> String {
        format!("{}/v1/dev{path}", self.root)
    }

    /// An auth API URL: `auth("/access_token")` is `{root}/v1/auth/access_token`.
    pub fn auth(&self, path: &str) -> String {
        format!("{}/v1/auth{path}", self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_server_urls_name_the_same_api() {
        for url in [
            "https://api.bytenite.com",
            "https://api.bytenite.com/",
            "https://api.bytenite.com/v1/dev",
            "https://api.bytenite.com/v1/dev/",
            " https://api.bytenite.com/v1/dev// ",
            "https://api.bytenite.com/V1/Dev",
            "https://api.bytenite.com/v1/auth",
            "https://api.bytenite.com/v1",
        ] {
            let api = ApiRoot::parse(url).unwrap();
            assert_eq!(api.as_str(), "https://api.bytenite.com", "{url}");
            assert_eq!(api.dev("/apps"), "https://api.bytenite.com/v1/dev/apps");
            assert_eq!(
                api.auth("/access_token"),
                "https://api.bytenite.com/v1/auth/access_token"
            );
        }
        assert!(!ApiRoot::parse("http://h:1/").unwrap().was_trimmed());
        assert!(ApiRoot::parse("http://h:1/v1/dev").unwrap().was_trimmed());
    }

    #[test]
    fn a_prefix_path_is_kept_and_empty_urls_are_none() {
        let api = ApiRoot::parse("http://proxy/bytenite/v1/dev/").unwrap();
        assert_eq!(api.dev("/apps"), "http://proxy/bytenite/v1/dev/apps");
        assert_eq!(ApiRoot::parse("  "), None);
        assert_eq!(ApiRoot::parse("/"), None);
        assert_eq!(ApiRoot::parse("/v1/dev"), None);
    }
}
