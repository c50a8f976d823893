//! How `stagectl` shows a domain's `tls`: one word for tables, one line for a stage, and the
//! answer of `stagectl tls renew`.

use super::output;
use crate::core::stage::model::StageView;
use crate::core::tls::{TlsState, TlsView};

/// `tls` in one word: the state, or the mode when it is off.
pub(super) fn tls_short(t: &TlsView) -> String {
    match t.state {
        TlsState::None => t.mode.clone(),
        s => format!("{s:?}").to_lowercase(),
    }
}

/// A domain's `tls` on one line: state, end, issuer, error and next attempt.
pub(super) fn tls_line(t: &TlsView) -> String {
    let mut s = format!("{} ({})", tls_short(t), t.mode);
    if let Some(end) = &t.not_after {
        s += &format!(", until {end}");
    }
    if let Some(i) = &t.issuer {
        s += &format!(", issuer {i}");
    }
    if let Some(e) = &t.last_error {
        s += &format!(", last error: {e}");
    }
    if let Some(n) = &t.next_attempt {
        s += &format!(", next attempt {n}");
    }
    s
}

/// `stagectl tls renew`'s answer: the stage and its domains' TLS.
pub(super) fn tls_text(s: &StageView) -> String {
    let mut pairs = vec![("stage", format!("{}/{}", s.subscription, s.name))];
    if let Some(t) = &s.tls {
        pairs.push(("tls", format!("{}: {}", s.domain, tls_line(t))));
    }
    if let Some((c, t)) = s
        .code_server
        .as_ref()
        .and_then(|c| c.tls.as_ref().map(|t| (c, t)))
    {
        pairs.push(("code server tls", format!("{}: {}", c.domain, tls_line(t))));
    }
    output::block(&pairs)
}
