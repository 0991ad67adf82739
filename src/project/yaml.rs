//! Template text to a JSON value tree, keeping what CloudFormation's YAML
//! means: short-form intrinsic tags (`!Ref X`, `!Sub …`, `!GetAtt A.B`)
//! become their long forms (`{"Ref": "X"}`, `{"Fn::Sub": …}`,
//! `{"Fn::GetAtt": ["A", "B"]}`), so the evaluator sees one form only; and
//! the line of every mapping key is kept, so errors and warnings can point
//! at the template. Built on saphyr-parser's event stream because a
//! document model would drop the tags or the positions.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use serde_json::{Map, Number, Value};

/// A parsed template: its value tree, and where each key was.
#[derive(Debug, Default)]
pub struct Document {
    pub root: Value,
    /// Line (1-based) of each mapping key, by dotted path
    /// (`Resources.Fn.Properties.Runtime`; list items as `Events.0`).
    lines: HashMap<String, usize>,
}

impl Document {
    /// The line of `path`, or of its nearest ancestor that has one.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            p = &p[..p.rfind('.')?];
        }
    }
}

/// Why a template is no YAML we can read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}, column {column}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl YamlError {
    fn at(span: Span, message: impl Into<String>) -> YamlError {
        YamlError { line: span.start.line(), column: span.start.col() + 1, message: message.into() }
    }
}

/// Parse the first document of `text`.
pub fn parse(text: &str) -> Result<Document, YamlError> {
    let mut loader = Loader { events: Parser::new_from_str(text), anchors: HashMap::new(), lines: HashMap::new() };
    loop {
        match loader.next()? {
            (Event::StreamEnd, _) => return Ok(Document::default()),
            (Event::StreamStart | Event::DocumentStart(_), _) => {}
            (event, span) => {
                let root = loader.node(event, span, "")?;
                return Ok(Document { root, lines: loader.lines });
            }
        }
    }
}

struct Loader<'a> {
    events: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Value>,
    lines: HashMap<String, usize>,
}

impl<'a> Loader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.events.next_event() {
            Some(Ok(e)) => Ok(e),
            Some(Err(e)) => {
                Err(YamlError { line: e.marker().line(), column: e.marker().col() + 1, message: e.info().to_owned() })
            }
            None => Err(YamlError { line: 0, column: 0, message: "unexpected end of the document".into() }),
        }
    }

    /// The value that starts with `event`, at dotted `path`.
    fn node(&mut self, event: Event<'a>, span: Span, path: &str) -> Result<Value, YamlError> {
        let (value, anchor, tag) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = match &tag {
                    Some(t) if !is_core(t) => Value::String(text.into_owned()),
                    _ => scalar(&text, style, tag.as_deref()),
                };
                (value, anchor, tag)
            }
            Event::SequenceStart(anchor, tag) => (self.sequence(path)?, anchor, tag),
            Event::MappingStart(anchor, tag) => (self.mapping(path)?, anchor, tag),
            Event::Alias(id) => {
                return self.anchors.get(&id).cloned().ok_or_else(|| YamlError::at(span, "unknown alias"));
            }
            other => return Err(YamlError::at(span, format!("unexpected {other:?}"))),
        };
        let value = match tag.filter(|t| !is_core(t)) {
            Some(t) => intrinsic(&t, value).map_err(|m| YamlError::at(span, m))?,
            None => value,
        };
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok(value)
    }

    fn sequence(&mut self, path: &str) -> Result<Value, YamlError> {
        let mut items = Vec::new();
        loop {
            match self.next()? {
                (Event::SequenceEnd, _) => return Ok(Value::Array(items)),
                (event, span) => {
                    let here = join(path, &items.len().to_string());
                    self.lines.insert(here.clone(), span.start.line());
                    items.push(self.node(event, span, &here)?);
                }
            }
        }
    }

    fn mapping(&mut self, path: &str) -> Result<Value, YamlError> {
        let mut map = Map::new();
        loop {
            let (event, span) = self.next()?;
            let key = match event {
                Event::MappingEnd => return Ok(Value::Object(map)),
                Event::Scalar(text, ..) => text.into_owned(),
                _ => return Err(YamlError::at(span, "mapping keys must be plain text")),
            };
            let here = join(path, &key);
            if map.contains_key(&key) {
                return Err(YamlError::at(span, format!("duplicate key {key}")));
            }
            self.lines.insert(here.clone(), span.start.line());
            let (event, span) = self.next()?;
            let value = self.node(event, span, &here)?;
            map.insert(key, value);
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `!!str`, `!!int`…: YAML's own types, not intrinsics.
fn is_core(tag: &Tag) -> bool {
    tag.handle == "!!" || tag.handle.starts_with("tag:yaml.org")
}

/// A scalar by YAML 1.2's core schema (quoted text is always a string).
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(t) = tag {
        return match t.suffix.as_str() {
            "int" | "float" => number(text).unwrap_or_else(|| Value::String(text.into())),
            "bool" => Value::Bool(text == "true"),
            "null" => Value::Null,
            _ => Value::String(text.into()),
        };
    }
    if style != ScalarStyle::Plain {
        return Value::String(text.into());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => number(text).unwrap_or_else(|| Value::String(text.into())),
    }
}

fn number(text: &str) -> Option<Value> {
    let plain = text.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    if !plain || !text.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Ok(i) = text.parse::<i64>() {
        // Leading zeros (`0123`, account ids) are text to CloudFormation.
        if text.len() > 1 && text.trim_start_matches(['+', '-']).starts_with('0') {
            return None;
        }
        return Some(Value::Number(i.into()));
    }
    text.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number)
}

/// A short-form tag to its long form.
fn intrinsic(tag: &Tag, value: Value) -> Result<Value, String> {
    let name = tag.suffix.as_str();
    let long = match name {
        "Ref" => "Ref",
        "Condition" => "Condition",
        "GetAtt" => {
            let value = match value {
                Value::String(s) => match s.split_once('.') {
                    Some((res, attr)) => Value::Array(vec![res.into(), attr.into()]),
                    None => return Err(format!("!GetAtt {s}: expected RESOURCE.ATTRIBUTE")),
                },
                other => other,
            };
            return Ok(single("Fn::GetAtt", value));
        }
        "Sub" | "If" | "Join" | "Select" | "Split" | "Equals" | "And" | "Or" | "Not" | "FindInMap" | "Base64"
        | "GetAZs" | "ImportValue" | "Cidr" | "Transform" | "ToJsonString" | "Length" => {
            return Ok(single(&format!("Fn::{name}"), value))
        }
        _ => return Err(format!("unknown tag {}{name}", tag.handle)),
    };
    Ok(single(long, value))
}

fn single(key: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_owned(), value);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_forms_become_long_forms() {
        let doc = parse(
            "A: !Ref X\nB: !GetAtt Fn.Arn\nC: !Sub 'x-${AWS::Region}'\nD: !If [Cond, 1, !Ref AWS::NoValue]\n\
             E: !Join ['-', [a, !Select [0, !Split [',', 'p,q']]]]\nF: !Sub\n  - '${a}'\n  - a: b\n",
        )
        .unwrap();
        assert_eq!(
            doc.root,
            json!({
                "A": {"Ref": "X"},
                "B": {"Fn::GetAtt": ["Fn", "Arn"]},
                "C": {"Fn::Sub": "x-${AWS::Region}"},
                "D": {"Fn::If": ["Cond", 1, {"Ref": "AWS::NoValue"}]},
                "E": {"Fn::Join": ["-", ["a", {"Fn::Select": [0, {"Fn::Split": [",", "p,q"]}]}]]},
                "F": {"Fn::Sub": ["${a}", {"a": "b"}]},
            })
        );
    }

    #[test]
    fn scalars_follow_the_core_schema_and_lines_are_kept() {
        let doc = parse("a: 1\nb: '1'\nc: true\nd: 0123\ne: 1.5\nf: ~\ng:\n  h: &x [1]\n  i: *x\n").unwrap();
        assert_eq!(
            doc.root,
            json!({"a": 1, "b": "1", "c": true, "d": "0123", "e": 1.5, "f": null,
                                    "g": {"h": [1], "i": [1]}})
        );
        assert_eq!(doc.line("g.i"), Some(9));
        assert_eq!(doc.line("g.i.0.deeper"), Some(9));
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.line >= 2, "{err}");
        let err = parse("a: 1\n  b: 2\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert_eq!(parse("a: !Bogus x\n").unwrap_err().line, 1);
        assert!(parse("a: 1\na: 2\n").unwrap_err().message.contains("duplicate"));
    }
}
