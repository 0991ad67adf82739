//! `Globals.Function` merged into each `AWS::Serverless::Function` as SAM
//! merges it: a scalar the resource sets replaces the global one, maps
//! merge key by key (the resource winning), and lists are the global
//! items followed by the resource's. An intrinsic (`{"Ref": …}`) is one
//! value, never merged into.

use serde_json::{Map, Value};

/// `resource` over `globals`.
pub fn merge(globals: &Value, resource: &Value) -> Value {
    match (globals, resource) {
        (Value::Object(g), Value::Object(r)) if !is_intrinsic(g) && !is_intrinsic(r) => {
            let mut out: Map<String, Value> = g.clone();
            for (k, v) in r {
                let merged = match g.get(k) {
                    Some(gv) => merge(gv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(g), Value::Array(r)) => Value::Array(g.iter().chain(r).cloned().collect()),
        (_, r) => r.clone(),
    }
}

fn is_intrinsic(m: &Map<String, Value>) -> bool {
    m.len() == 1 && m.keys().next().is_some_and(|k| k == "Ref" || k == "Condition" || k.starts_with("Fn::"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_replace_maps_merge_lists_append() {
        let globals = json!({
            "Runtime": "python3.11", "Timeout": 10,
            "Environment": {"Variables": {"A": "g", "B": "g"}},
            "Layers": ["arn:g"],
            "Tags": {"Fn::If": ["C", {"x": 1}, {"y": 2}]},
        });
        let resource = json!({
            "Timeout": 30,
            "Environment": {"Variables": {"B": "r", "C": "r"}},
            "Layers": ["arn:r"],
            "Tags": {"z": 3},
        });
        assert_eq!(
            merge(&globals, &resource),
            json!({
                "Runtime": "python3.11", "Timeout": 30,
                "Environment": {"Variables": {"A": "g", "B": "r", "C": "r"}},
                "Layers": ["arn:g", "arn:r"],
                "Tags": {"z": 3},
            })
        );
    }
}
