use super::*;

const SECRET: &str = "p@ss:w/rd?%";

fn secret_url(rest: &str) -> String {
    // "p@ss:w/rd?%" percent-encoded
    format!("redis://app:p%40ss%3Aw%2Frd%3F%25@{rest}")
}

#[test]
fn reads_every_part() {
    let u =
        ConnectionUrl::parse(&secret_url("h1:7000,[::1]:7001,h3/0?seed=h4:7003&client_name=svc")).unwrap();
    assert!(!u.tls);
    assert_eq!(u.username.as_deref(), Some("app"));
    assert_eq!(u.password.as_ref().map(Password::expose), Some(SECRET));
    assert_eq!(
        u.seeds,
        vec![
            NodeAddr::new("h1", 7000),
            NodeAddr::new("::1", 7001),
            NodeAddr::new("h3", DEFAULT_PORT),
            NodeAddr::new("h4", 7003)
        ]
    );
    assert_eq!(u.options, vec![("client_name".to_owned(), "svc".to_owned())]);
    for scheme in ["rediss", "valkeys", "REDISS"] {
        assert!(ConnectionUrl::parse(&format!("{scheme}://h:1")).unwrap().tls, "{scheme}");
    }
    assert!(!ConnectionUrl::parse("valkey://h").unwrap().tls);
    let only_password = ConnectionUrl::parse("redis://:pw@h").unwrap();
    assert_eq!(
        (only_password.username, only_password.password.map(|p| p.expose().to_owned())),
        (None, Some("pw".into()))
    );
}

#[test]
fn errors_name_the_wrong_part() {
    let e = |u: &str| ConnectionUrl::parse(u).unwrap_err();
    assert!(matches!(e("http://h:1"), UrlError::Scheme { scheme } if scheme == "http"));
    assert!(matches!(e("h:1"), UrlError::Scheme { scheme } if scheme.is_empty()));
    assert!(matches!(e("redis://"), UrlError::Host { .. }));
    assert!(matches!(e("redis://h:1,"), UrlError::Host { .. }));
    assert!(matches!(e("redis://h:0"), UrlError::Port { port, .. } if port == "0"));
    assert!(matches!(e("redis://h:99999"), UrlError::Port { port, .. } if port == "99999"));
    assert!(matches!(e("redis://h:x"), UrlError::Port { port, .. } if port == "x"));
    assert!(matches!(e("redis://::1:7000"), UrlError::Host { .. }));
    assert!(matches!(e("redis://[::1:7000"), UrlError::Host { .. }));
    assert!(matches!(e("redis://h/3"), UrlError::Path { path } if path == "/3"));
    assert!(matches!(e("redis://u:%zz@h"), UrlError::Encoding { part: "password" }));
    assert!(matches!(e("redis://%ff@h"), UrlError::Encoding { part: "user" }));
    assert!(matches!(e("redis://h?seed=h:x"), UrlError::Port { .. }));
}

#[test]
fn the_password_never_shows() {
    let good = ConnectionUrl::parse(&secret_url("h:1")).unwrap();
    assert!(!format!("{good:?}").contains("p@ss") && !format!("{good:?}").contains("p%40ss"));
    // Every kind of error, on URLs carrying the password encoded or not.
    for tail in ["h:x", "h:0", "", "h/9", "[::1", "h?x=%zz"] {
        for url in
            [secret_url(tail), format!("redis://app:{SECRET}@{tail}"), format!("ftp://app:{SECRET}@{tail}")]
        {
            if let Err(e) = ConnectionUrl::parse(&url) {
                for shown in [e.to_string(), format!("{e:?}")] {
                    assert!(
                        !shown.contains("p@ss") && !shown.contains("p%40ss") && !shown.contains("w/rd"),
                        "{url}: {shown}"
                    );
                }
            }
        }
    }
}
