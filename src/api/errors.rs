//! The one mapping from core errors to JSON-RPC error objects (DESIGN.md, "Errors"), and back
//! for clients.

use crate::core::{Error, ErrorKind};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{json, Value};

/// The stable JSON-RPC code of each kind.
pub fn code(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::InvalidParams => -32602,
        ErrorKind::NotFound => -32001,
        ErrorKind::Conflict => -32002,
        ErrorKind::InvalidState => -32003,
        ErrorKind::LimitExceeded => -32004,
        ErrorKind::Forbidden => -32005,
        ErrorKind::Docker => -32010,
        ErrorKind::Nginx => -32011,
        ErrorKind::Database => -32012,
        ErrorKind::Git => -32013,
        ErrorKind::Backup => -32017,
        ErrorKind::Tls => -32015,
        ErrorKind::DeployFailed => -32014,
        ErrorKind::Internal => -32099,
    }
}

/// The kind of a code, for clients.
pub fn kind_of_code(code: i32) -> Option<ErrorKind> {
    ErrorKind::ALL.into_iter().find(|k| self::code(*k) == code)
}

/// `data` carries `kind` always, and the fields of the variant a client can act on.
pub fn to_object(err: &Error) -> ErrorObjectOwned {
    let kind = err.kind();
    let data = match err {
        Error::InvalidParams { field, .. } => json!({ "kind": kind.as_str(), "field": field }),
        Error::InvalidState { state, allowed, .. } => {
            json!({ "kind": kind.as_str(), "state": state, "allowed": allowed })
        }
        Error::DeployFailed { log_tail, .. } => {
            json!({ "kind": kind.as_str(), "log_tail": log_tail })
        }
        Error::NotFound { .. }
        | Error::Conflict { .. }
        | Error::LimitExceeded(_)
        | Error::Forbidden(_)
        | Error::Docker(_)
        | Error::Nginx(_)
        | Error::Database(_)
        | Error::Git(_)
        | Error::Backup(_)
        | Error::Tls(_)
        | Error::Internal { .. } => json!({ "kind": kind.as_str() }),
    };
    ErrorObjectOwned::owned(code(kind), err.to_string(), Some(data))
}

/// An `invalid_params` object for a field, built in the API layer itself.
pub fn invalid_params(field: &str, message: &str) -> ErrorObjectOwned {
    to_object(&Error::invalid(field, message))
}

impl From<Error> for ErrorObjectOwned {
    fn from(e: Error) -> Self {
        if e.kind() == ErrorKind::Internal {
            // The request span carries the method and request id.
            tracing::error!(error = %e, "internal error");
        }
        to_object(&e)
    }
}

/// Reads `data.field` of an error object, if any.
pub fn field_of(data: Option<&Value>) -> Option<String> {
    data?.get("field")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_code_and_round_trips() {
        let mut codes: Vec<i32> = ErrorKind::ALL.iter().map(|k| code(*k)).collect();
        for k in ErrorKind::ALL {
            assert_eq!(kind_of_code(code(k)), Some(k));
        }
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn objects_carry_kind_and_field() {
        let o = to_object(&Error::invalid("stage_limit", "must be at most 10000"));
        assert_eq!(o.code(), -32602);
        let data: Value = serde_json::from_str(o.data().unwrap().get()).unwrap();
        assert_eq!(
            data,
            json!({"kind": "invalid_params", "field": "stage_limit"})
        );
        let o = to_object(&Error::InvalidState {
            what: "stage acme/qa".into(),
            state: "running".into(),
            allowed: vec!["stopped".into()],
        });
        let data: Value = serde_json::from_str(o.data().unwrap().get()).unwrap();
        assert_eq!(data["allowed"], json!(["stopped"]));
        assert_eq!(o.code(), -32003);
    }
}
