//! Evaluating CloudFormation's intrinsic functions where their value can
//! be known on this box: parameters, pseudo parameters, conditions,
//! mappings, and the names and ARNs of the template's own functions. What
//! only a real deployment could tell (a table's name, an import) is
//! [`EvalError::Unknown`], so the caller can leave that one property out
//! and say so, instead of failing the whole template.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

/// Why a value could not be evaluated.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EvalError {
    /// Only AWS could tell (another service's resource, an import).
    #[error("{0} has no value on lambdabox")]
    Unknown(String),
    /// The template is wrong (CloudFormation would refuse it too).
    #[error("{0}")]
    Invalid(String),
}

/// What a template's values may refer to.
#[derive(Debug, Default)]
pub struct Scope {
    pub parameters: HashMap<String, Value>,
    /// Pseudo parameters (`AWS::Region`, …).
    pub pseudo: HashMap<String, Value>,
    pub conditions: HashMap<String, bool>,
    pub mappings: Map<String, Value>,
    /// `!Ref` of a resource that has a local value (a function's name).
    pub refs: HashMap<String, Value>,
    /// `!GetAtt RESOURCE.ATTR` values known here (a function's `Arn`).
    pub attributes: BTreeMap<(String, String), Value>,
}

/// The result of evaluating a value that may vanish (`AWS::NoValue`).
pub type Evaluated = Result<Option<Value>, EvalError>;

impl Scope {
    /// `value` with every intrinsic evaluated; `None` for `AWS::NoValue`.
    pub fn eval(&self, value: &Value) -> Evaluated {
        match value {
            Value::Object(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one entry");
                match k.as_str() {
                    "Ref" => self.reference(v),
                    "Condition" => Ok(Some(Value::Bool(self.condition(v)?))),
                    k if k.starts_with("Fn::") => self.function(&k[4..], v),
                    _ => self.object(m),
                }
            }
            Value::Object(m) => self.object(m),
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(self.eval(item)?);
                }
                Ok(Some(Value::Array(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// `value` evaluated, `AWS::NoValue` being an error here.
    pub fn value(&self, value: &Value) -> Result<Value, EvalError> {
        self.eval(value)?.ok_or_else(|| EvalError::Invalid("AWS::NoValue where a value is required".into()))
    }

    fn object(&self, m: &Map<String, Value>) -> Evaluated {
        let mut out = Map::new();
        for (k, v) in m {
            if let Some(v) = self.eval(v)? {
                out.insert(k.clone(), v);
            }
        }
        Ok(Some(Value::Object(out)))
    }

    fn reference(&self, name: &Value) -> Evaluated {
        let name = self.text(name)?;
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        let found = self.parameters.get(&name).or_else(|| self.pseudo.get(&name)).or_else(|| self.refs.get(&name));
        match found {
            Some(v) => Ok(Some(v.clone())),
            None => Err(EvalError::Unknown(format!("!Ref {name}"))),
        }
    }

    /// The value of condition `name` (a string naming one).
    pub fn condition(&self, name: &Value) -> Result<bool, EvalError> {
        let name = self.text(name)?;
        self.conditions.get(&name).copied().ok_or_else(|| EvalError::Invalid(format!("no condition named {name}")))
    }

    fn function(&self, name: &str, args: &Value) -> Evaluated {
        let list = || args.as_array().ok_or_else(|| EvalError::Invalid(format!("Fn::{name} takes a list")));
        match name {
            "Sub" => self.sub(args).map(Some),
            "GetAtt" => self.get_att(args),
            "If" => match list()?.as_slice() {
                [c, yes, no] => self.eval(if self.condition(c)? { yes } else { no }),
                _ => Err(EvalError::Invalid("Fn::If takes [CONDITION, IF_TRUE, IF_FALSE]".into())),
            },
            "Join" => match list()?.as_slice() {
                [sep, items] => {
                    let sep = self.text(sep)?;
                    let items = self.list(items)?;
                    let parts = items.iter().map(|i| scalar_text(i, "Fn::Join")).collect::<Result<Vec<_>, _>>()?;
                    Ok(Some(Value::String(parts.join(&sep))))
                }
                _ => Err(EvalError::Invalid("Fn::Join takes [DELIMITER, LIST]".into())),
            },
            "Select" => match list()?.as_slice() {
                [i, items] => {
                    let i: usize = self.text(i)?.parse().map_err(|_| EvalError::Invalid("Fn::Select index".into()))?;
                    let items = self.list(items)?;
                    items
                        .get(i)
                        .cloned()
                        .map(Some)
                        .ok_or_else(|| EvalError::Invalid(format!("Fn::Select {i}: no such item")))
                }
                _ => Err(EvalError::Invalid("Fn::Select takes [INDEX, LIST]".into())),
            },
            "Split" => match list()?.as_slice() {
                [sep, s] => {
                    let (sep, s) = (self.text(sep)?, self.text(s)?);
                    Ok(Some(Value::Array(s.split(sep.as_str()).map(|p| Value::String(p.into())).collect())))
                }
                _ => Err(EvalError::Invalid("Fn::Split takes [DELIMITER, STRING]".into())),
            },
            "Equals" => match list()?.as_slice() {
                [a, b] => Ok(Some(Value::Bool(loose(&self.value(a)?) == loose(&self.value(b)?)))),
                _ => Err(EvalError::Invalid("Fn::Equals takes two values".into())),
            },
            "And" | "Or" => {
                let values = list()?.iter().map(|c| self.truth(c)).collect::<Result<Vec<_>, _>>()?;
                let all = if name == "And" { values.iter().all(|b| *b) } else { values.iter().any(|b| *b) };
                Ok(Some(Value::Bool(all)))
            }
            "Not" => match list()?.as_slice() {
                [c] => Ok(Some(Value::Bool(!self.truth(c)?))),
                _ => Err(EvalError::Invalid("Fn::Not takes one condition".into())),
            },
            "FindInMap" => self.find_in_map(list()?).map(Some),
            "Base64" => Ok(Some(Value::String(base64_text(&self.text(args)?)))),
            "GetAZs" => {
                let region = self.pseudo.get("AWS::Region").and_then(Value::as_str).unwrap_or("us-east-1").to_owned();
                Ok(Some(Value::Array(["a", "b", "c"].iter().map(|z| Value::String(format!("{region}{z}"))).collect())))
            }
            "ToJsonString" => Ok(Some(Value::String(self.value(args)?.to_string()))),
            "Length" => Ok(Some(Value::from(self.list(args)?.len()))),
            other => Err(EvalError::Unknown(format!("Fn::{other}"))),
        }
    }

    /// A condition's truth: `{"Condition": NAME}`, an `Fn::` that yields a
    /// boolean, or the text `true`/`false`.
    pub fn truth(&self, value: &Value) -> Result<bool, EvalError> {
        match self.value(value)? {
            Value::Bool(b) => Ok(b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            other => Err(EvalError::Invalid(format!("{other} is not a condition"))),
        }
    }

    fn list(&self, value: &Value) -> Result<Vec<Value>, EvalError> {
        match self.value(value)? {
            Value::Array(items) => Ok(items),
            other => Err(EvalError::Invalid(format!("expected a list, got {other}"))),
        }
    }

    /// A value that must evaluate to text (numbers are text to CloudFormation).
    pub fn text(&self, value: &Value) -> Result<String, EvalError> {
        scalar_text(&self.value(value)?, "this position")
    }

    fn get_att(&self, args: &Value) -> Evaluated {
        let (resource, attribute) = match args {
            Value::Array(p) if p.len() == 2 => (self.text(&p[0])?, self.text(&p[1])?),
            Value::String(s) => match s.split_once('.') {
                Some((r, a)) => (r.to_owned(), a.to_owned()),
                None => return Err(EvalError::Invalid(format!("Fn::GetAtt {s}: expected RESOURCE.ATTRIBUTE"))),
            },
            _ => return Err(EvalError::Invalid("Fn::GetAtt takes [RESOURCE, ATTRIBUTE]".into())),
        };
        match self.attributes.get(&(resource.clone(), attribute.clone())) {
            Some(v) => Ok(Some(v.clone())),
            None => Err(EvalError::Unknown(format!("!GetAtt {resource}.{attribute}"))),
        }
    }

    fn find_in_map(&self, args: &[Value]) -> Result<Value, EvalError> {
        let [map, top, second] = args else {
            return Err(EvalError::Invalid("Fn::FindInMap takes [MAP, TOP_KEY, SECOND_KEY]".into()));
        };
        let (map, top, second) = (self.text(map)?, self.text(top)?, self.text(second)?);
        self.mappings
            .get(&map)
            .and_then(|m| m.get(&top))
            .and_then(|m| m.get(&second))
            .cloned()
            .ok_or_else(|| EvalError::Invalid(format!("Fn::FindInMap: no {map}.{top}.{second} in Mappings")))
    }

    /// `Fn::Sub`: a string, or `[string, {NAME: value}]`.
    fn sub(&self, args: &Value) -> Result<Value, EvalError> {
        let (template, vars) = match args {
            Value::String(s) => (s.clone(), Map::new()),
            Value::Array(p) if p.len() == 2 => {
                let vars = match self.value(&p[1])? {
                    Value::Object(m) => m,
                    _ => return Err(EvalError::Invalid("Fn::Sub's second item is a map of variables".into())),
                };
                (self.text(&p[0])?, vars)
            }
            _ => return Err(EvalError::Invalid("Fn::Sub takes a string or [STRING, VARIABLES]".into())),
        };
        let mut out = String::new();
        let mut rest = template.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end =
                after.find('}').ok_or_else(|| EvalError::Invalid(format!("Fn::Sub: unclosed ${{ in {template}")))?;
            let name = &after[..end];
            match name.strip_prefix('!') {
                Some(literal) => out.push_str(&format!("${{{literal}}}")),
                None => out.push_str(&self.sub_variable(name, &vars)?),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }

    fn sub_variable(&self, name: &str, vars: &Map<String, Value>) -> Result<String, EvalError> {
        let name = name.trim();
        if let Some(v) = vars.get(name) {
            return scalar_text(v, "Fn::Sub");
        }
        let value = match name.split_once('.') {
            Some((res, attr)) if !self.parameters.contains_key(name) => {
                self.get_att(&Value::Array(vec![res.into(), attr.into()]))?
            }
            _ => self.reference(&Value::String(name.into()))?,
        };
        scalar_text(&value.unwrap_or_default(), "Fn::Sub")
    }
}

/// Strings, numbers and booleans as CloudFormation prints them.
fn scalar_text(v: &Value, context: &str) -> Result<String, EvalError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(EvalError::Invalid(format!("{context} expects text, got {other}"))),
    }
}

/// Values compared as CloudFormation does: `1` equals `"1"`.
fn loose(v: &Value) -> Value {
    match v {
        Value::Number(_) | Value::Bool(_) => Value::String(v.to_string()),
        other => other.clone(),
    }
}

fn base64_text(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        let mut s = Scope::default();
        s.parameters.insert("Stage".into(), json!("dev"));
        s.parameters.insert("Size".into(), json!("256"));
        s.pseudo.insert("AWS::Region".into(), json!("eu-west-1"));
        s.conditions.insert("IsProd".into(), false);
        s.refs.insert("Fn".into(), json!("app-Fn"));
        s.attributes.insert(("Fn".into(), "Arn".into()), json!("arn:aws:lambda:eu-west-1:0:function:app-Fn"));
        s.mappings = json!({"Sizes": {"dev": {"Memory": 128}}}).as_object().unwrap().clone();
        s
    }

    #[test]
    fn refs_subs_and_attributes() {
        let s = scope();
        let v = json!({"Fn::Sub": "${Stage}-${AWS::Region}-${Fn}-${Fn.Arn}-${!Literal}"});
        assert_eq!(
            s.value(&v).unwrap(),
            json!("dev-eu-west-1-app-Fn-arn:aws:lambda:eu-west-1:0:function:app-Fn-${Literal}")
        );
        assert_eq!(s.value(&json!({"Fn::Sub": ["${a}/${Stage}", {"a": {"Ref": "Fn"}}]})).unwrap(), json!("app-Fn/dev"));
        assert_eq!(
            s.value(&json!({"Fn::GetAtt": ["Fn", "Arn"]})).unwrap(),
            json!("arn:aws:lambda:eu-west-1:0:function:app-Fn")
        );
        assert!(matches!(s.value(&json!({"Ref": "Table"})), Err(EvalError::Unknown(_))));
        assert!(matches!(s.value(&json!({"Fn::GetAtt": ["Table", "Arn"]})), Err(EvalError::Unknown(_))));
    }

    #[test]
    fn conditions_if_and_no_value() {
        let s = scope();
        let v = json!({"A": {"Fn::If": ["IsProd", 1, {"Ref": "AWS::NoValue"}]}, "B": [{"Ref": "AWS::NoValue"}, 2]});
        assert_eq!(s.value(&v).unwrap(), json!({"B": [2]}));
        assert_eq!(s.value(&json!({"Fn::Equals": [{"Ref": "Size"}, 256]})).unwrap(), json!(true));
        let v = json!({"Fn::And": [{"Fn::Not": [{"Condition": "IsProd"}]}, {"Fn::Equals": ["a", "a"]}]});
        assert_eq!(s.value(&v).unwrap(), json!(true));
        assert!(matches!(s.value(&json!({"Fn::If": ["Nope", 1, 2]})), Err(EvalError::Invalid(_))));
    }

    #[test]
    fn join_select_split_find_in_map() {
        let s = scope();
        assert_eq!(s.value(&json!({"Fn::Join": ["-", ["a", {"Ref": "Stage"}, 3]]})).unwrap(), json!("a-dev-3"));
        let v = json!({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]});
        assert_eq!(s.value(&v).unwrap(), json!("y"));
        let v = json!({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]});
        assert_eq!(s.value(&v).unwrap(), json!(128));
        assert_eq!(s.value(&json!({"Fn::Base64": "hi"})).unwrap(), json!("aGk="));
        assert_eq!(s.value(&json!({"Fn::GetAZs": ""})).unwrap()[0], json!("eu-west-1a"));
    }
}
