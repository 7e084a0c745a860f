//! The client family of a `User-Agent`, a label with few values.

use axum::http::{header, HeaderMap};

/// `firefox-desktop`, `firefox-ios`, `firefox-android`, `firefox`
/// (another Firefox) or `other`.
pub(super) fn family(headers: &HeaderMap) -> &'static str {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    of(agent)
}

fn of(agent: &str) -> &'static str {
    // Firefox for iOS: "Firefox-iOS-Sync/…" or "…FxiOS/…"; Android (Fenix,
    // through sync15): "Mobile-Android-Sync/…" or "…Android…Firefox/…".
    if agent.contains("iOS") || agent.contains("FxiOS") {
        "firefox-ios"
    } else if agent.contains("Android") {
        "firefox-android"
    } else if agent.contains("Firefox/")
        && (agent.contains(".desktop") || agent.starts_with("Mozilla/5.0"))
    {
        "firefox-desktop"
    } else if agent.contains("Firefox") || agent.contains("FxSync") {
        "firefox"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::of;

    #[test]
    fn families() {
        let desktop = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(of(desktop), "firefox-desktop");
        assert_eq!(
            of("Firefox/128.0 (Linux x86_64) FxSync/1.130.0.20240101000000.desktop"),
            "firefox-desktop"
        );
        assert_eq!(
            of("Firefox-iOS-Sync/131.0b42 (iPhone; iPhone OS 17.5) (Firefox)"),
            "firefox-ios"
        );
        assert_eq!(
            of("Mobile-Android-Sync/(Mobile; Android 14) (Firefox)"),
            "firefox-android"
        );
        assert_eq!(of("FxSync/1.2 other"), "firefox");
        assert_eq!(of("curl/8.0"), "other");
        assert_eq!(of(""), "other");
    }
}
