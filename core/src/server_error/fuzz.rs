//! Fuzz target body for server error classification (re-exported by `crate::fuzzing`; also run
//! by the unit tests). It asserts invariants and panics when one breaks, which is what a fuzzer
//! reports.

use std::sync::Arc;

use bytes::Bytes;

use super::{Endpoint, ErrorAction, ServerError, ServerErrorKind};
use crate::resp::{Limits, decode_slice};
use crate::{NodeAddr, Protocol, SLOT_COUNT, Value};

/// `redirect_parse`: arbitrary bytes as an error reply's text classify without a panic; the kind
/// depends on the first word only, and the action follows the kind; a `MOVED`/`ASK` that parses
/// has a slot below 16384 and a usable port, and its endpoint written back as
/// `MOVED <slot> <host>:<port>` (and as `ASK ...`, bracketed or not) parses to the same
/// endpoint. When the bytes are a RESP error frame, [`ServerError::from_value`] agrees with
/// [`ServerError::new`] on its text.
pub fn redirect_parse(data: &[u8]) {
    let e = ServerError::new(Bytes::copy_from_slice(data));
    let _ = e.to_string();
    assert_eq!(e.raw().as_ref(), data, "the raw text is kept as received");
    let code = e.code();
    assert!(data.starts_with(code) && !code.contains(&b' '), "the code is the first word");
    let action = e.action();
    match e.kind() {
        ServerErrorKind::Moved { slot, endpoint } => {
            assert_eq!(code, b"MOVED");
            assert_eq!(action, ErrorAction::Redirect { slot: *slot, endpoint: endpoint.clone() });
            check_redirect(slot.get(), endpoint);
        }
        ServerErrorKind::Ask { slot, endpoint } => {
            assert_eq!(code, b"ASK");
            assert_eq!(action, ErrorAction::Ask { slot: *slot, endpoint: endpoint.clone() });
            check_redirect(slot.get(), endpoint);
        }
        ServerErrorKind::MalformedRedirect => {
            assert!(code == b"MOVED" || code == b"ASK", "only MOVED and ASK can be malformed redirects");
            assert_eq!(action, ErrorAction::Fail, "a garbled redirect is not followed");
        }
        kind => {
            assert!(code != b"MOVED" && code != b"ASK", "{kind:?} from a redirect code");
            assert!(!matches!(action, ErrorAction::Redirect { .. } | ErrorAction::Ask { .. }));
            // Everything after the code is free text: it cannot change the kind.
            let bare = ServerError::new(Bytes::copy_from_slice(code));
            assert_eq!(bare.kind(), kind, "the text after the code changed the kind");
        }
    }
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        if let Ok(Some((value @ Value::Error(_), _))) = decode_slice(data, protocol, &Limits::default()) {
            let Value::Error(text) = &value else { continue };
            assert_eq!(ServerError::from_value(&value), Some(ServerError::new(text.clone())));
        }
    }
}

/// A parsed redirect: slot in range, port usable, and the endpoint written back (in every
/// spelling a server could use) parses to the same endpoint and resolves consistently.
fn check_redirect(slot: u16, endpoint: &Endpoint) {
    assert!(slot < SLOT_COUNT, "slot {slot} out of range");
    assert_ne!(endpoint.port, 0, "port 0 is not an address");
    let host = endpoint.host.as_deref().unwrap_or("");
    assert!(host != "?" && !host.contains(['[', ']', ' ']), "host {host:?} should have been refused");
    let mut spellings = vec![endpoint.to_string(), format!("{host}:{}", endpoint.port)];
    if !host.is_empty() {
        spellings.push(format!("[{host}]:{}", endpoint.port));
    }
    for spelling in spellings {
        for word in ["MOVED", "ASK"] {
            let text = format!("{word} {slot} {spelling}");
            let back = ServerError::new(text.clone());
            let (ServerErrorKind::Moved { slot: s, endpoint: e }
            | ServerErrorKind::Ask { slot: s, endpoint: e }) = back.kind()
            else {
                panic!("{text:?} does not parse back: {:?}", back.kind());
            };
            assert_eq!((s.get(), e), (slot, endpoint), "{text:?} parsed to another redirect");
            assert_eq!(matches!(back.kind(), ServerErrorKind::Moved { .. }), word == "MOVED");
        }
    }
    let origin = NodeAddr::new("10.0.0.5", 7000);
    let resolved = endpoint.resolve(&origin);
    assert_eq!(resolved.port(), endpoint.port);
    let want: Arc<str> = endpoint.host.clone().unwrap_or_else(|| Arc::from(origin.host()));
    assert_eq!(resolved.host(), &*want, "an empty host resolves to the origin's");
    assert_eq!(
        NodeAddr::parse(&resolved.to_string()).as_ref(),
        Some(&resolved),
        "the target renders and parses"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_like_inputs() {
        for data in [
            &b"MOVED 3999 127.0.0.1:6381"[..],
            b"MOVED 3999 :6381",
            b"ASK 0 ::1:7001",
            b"MOVED 16383 [2001:db8::1]:7000",
            b"MOVED 16384 a:1",
            b"ASK 1 ?:1",
            b"MOVED 1 a:0",
            b"-MOVED 12 h:1\r\n",
            b"!9\r\nASK 1 h:2\r\n",
            b"TRYAGAIN Multiple keys request during rehashing of slot",
            b"CLUSTERDOWN Hash slot not served",
            b"",
            b" ",
            b"MOVED",
            b"MOVED 1 [::1]]:7",
            include_bytes!("../../../fuzz/corpus/redirect_parse/moved_ipv6_unbracketed"),
            include_bytes!("../../../fuzz/corpus/redirect_parse/resp3_blob_error"),
        ] {
            redirect_parse(data);
        }
    }
}
