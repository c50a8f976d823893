//! Naming the field behind a parameter error. jsonrpsee reports a bad parameter with serde's
//! message ("invalid type ... at line 1 column 31"); this finds which named parameter that
//! position falls in, so the client gets `data.field`. Also the parameters of more than one
//! shape, read here so their errors name the field too (`stage.deploy`'s `update`).

use crate::core::stage::deploy_plan::UpdateModules;
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;

/// `update`: "changed", "all" or a list of module names (checked by the core).
pub fn update_modules(v: &Value) -> Result<UpdateModules, ErrorObjectOwned> {
    let bad = |m: &str| super::errors::invalid_params("update", m);
    match v {
        Value::String(s) if s == "changed" => Ok(UpdateModules::Changed),
        Value::String(s) if s == "all" => Ok(UpdateModules::All),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .map(UpdateModules::Named)
            .ok_or_else(|| bad("a list of update must hold module names (strings) only")),
        _ => Err(bad(
            "must be \"changed\", \"all\" or a list of module folder names",
        )),
    }
}

/// The parameter a serde message is about, given the raw params object it came from.
pub fn field_of_error(params: Option<&str>, message: &str) -> String {
    if let Some(name) = quoted_after(message, "missing field `") {
        return name;
    }
    let Some(params) = params else {
        return "params".into();
    };
    let Ok(map) = serde_json::from_str::<BTreeMap<String, &RawValue>>(params) else {
        return "params".into();
    };
    let Some(offset) = position(message).map(|(l, c)| offset_of(params, l, c)) else {
        return "params".into();
    };
    // serde points just past the bad value: pick the value whose span contains that offset.
    let base = params.as_ptr() as usize;
    map.into_iter()
        .find(|(_, v)| {
            let start = v.get().as_ptr() as usize - base;
            (start..=start + v.get().len()).contains(&offset)
        })
        .map_or_else(|| "params".into(), |(k, _)| k)
}

fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = &message[message.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('`')?].to_string())
}

/// "... at line L column C" → (L, C).
fn position(message: &str) -> Option<(usize, usize)> {
    let rest = &message[message.rfind(" at line ")? + 9..];
    let (line, rest) = rest.split_once(" column ")?;
    Some((line.trim().parse().ok()?, rest.trim().parse().ok()?))
}

fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    line_start + column
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_for(params: &str) -> String {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct P {
            id: String,
            stage_limit: u32,
            settings: Option<BTreeMap<String, String>>,
        }
        serde_json::from_str::<P>(params).unwrap_err().to_string()
    }

    #[test]
    fn finds_the_field() {
        for (params, field) in [
            (r#"{"id":"acme","stage_limit":"three"}"#, "stage_limit"),
            (r#"{"stage_limit":3,"id":5}"#, "id"),
            (r#"{"id":"a","stage_limit":-1}"#, "stage_limit"),
            (
                "{\n \"id\": \"a\",\n \"stage_limit\": 3,\n \"settings\": {\"x\": 1}\n}",
                "settings",
            ),
            (r#"{"id":"acme"}"#, "stage_limit"),
        ] {
            let msg = err_for(params);
            assert_eq!(
                field_of_error(Some(params), &msg),
                field,
                "{params} → {msg}"
            );
        }
        assert_eq!(field_of_error(Some("[1,2]"), "invalid type"), "params");
        assert_eq!(field_of_error(None, "invalid type: null"), "params");
    }

    #[test]
    fn update_takes_three_shapes() {
        use serde_json::json;
        assert_eq!(
            update_modules(&json!("changed")).unwrap(),
            UpdateModules::Changed
        );
        assert_eq!(update_modules(&json!("all")).unwrap(), UpdateModules::All);
        assert_eq!(
            update_modules(&json!(["a", "b"])).unwrap(),
            UpdateModules::Named(vec!["a".into(), "b".into()])
        );
        for bad in [
            json!("some"),
            json!(3),
            json!(["a", 1]),
            json!({"a": 1}),
            json!(null),
        ] {
            let e = update_modules(&bad).unwrap_err();
            assert_eq!(e.code(), -32602, "{bad}");
            assert!(
                e.data().unwrap().get().contains("\"field\":\"update\""),
                "{bad}"
            );
        }
    }
}
