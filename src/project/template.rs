//! A SAM / CloudFormation template read into what lambdabox can deploy:
//! parameters resolved (defaults, then `--parameter-overrides`), pseudo
//! parameters, conditions and mappings evaluated, `Globals.Function`
//! merged, and each function and layer turned into a [`FunctionSpec`] or
//! [`LayerSpec`]. Whatever the box cannot honour becomes one
//! [`Warning`] per property; only a template CloudFormation would refuse
//! too is an error.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::function::{self, FunctionSpec, LayerSpec};
use super::intrinsics::{EvalError, Scope};
use super::{globals, yaml};

/// Where and as what the template is deployed.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub stack: String,
    pub region: String,
    pub account: String,
    /// `--parameter-overrides`, by parameter name.
    pub overrides: BTreeMap<String, String>,
}

/// A template that cannot be deployed, with the line that says why.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct TemplateError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// Something in the template that lambdabox does not do; printed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: Option<usize>,
    /// The dotted path of the property (`Resources.Fn.Properties.Tracing`).
    pub path: String,
    pub message: String,
}

/// A template, ready to deploy.
#[derive(Debug)]
pub struct Project {
    pub file: PathBuf,
    /// The folder paths in the template are relative to.
    pub dir: PathBuf,
    pub stack: String,
    pub functions: Vec<FunctionSpec>,
    pub layers: Vec<LayerSpec>,
    pub warnings: Vec<Warning>,
}

impl Project {
    /// `file:line: path: message`, for printing.
    pub fn warning_text(&self, w: &Warning) -> String {
        let name =
            self.file.file_name().map_or_else(|| self.file.display().to_string(), |n| n.to_string_lossy().into());
        match w.line {
            Some(l) => format!("{name}:{l}: {}: {}", w.path, w.message),
            None => format!("{name}: {}: {}", w.path, w.message),
        }
    }
}

/// What reading one template needs along the way.
pub(super) struct Reader<'a> {
    pub doc: &'a yaml::Document,
    pub file: String,
    pub dir: PathBuf,
    pub scope: Scope,
    pub options: &'a LoadOptions,
    pub warnings: Vec<Warning>,
    /// Logical ids of the template's layer resources.
    pub layer_ids: Vec<String>,
}

impl Reader<'_> {
    pub fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(Warning { line: self.doc.line(path), path: path.to_owned(), message: message.into() });
    }

    pub fn error(&self, path: &str, message: impl std::fmt::Display) -> TemplateError {
        TemplateError { file: self.file.clone(), line: self.doc.line(path), message: format!("{path}: {message}") }
    }

    /// The value at `path` (raw `value`) evaluated: `None` when it is
    /// `AWS::NoValue` or unknowable here (then with a warning).
    pub fn eval(&mut self, path: &str, value: &Value) -> Result<Option<Value>, TemplateError> {
        match self.scope.eval(value) {
            Ok(v) => Ok(v),
            Err(EvalError::Unknown(what)) => {
                self.warn(path, format!("left out: it uses {what}, which has no value on lambdabox"));
                Ok(None)
            }
            Err(e @ EvalError::Invalid(_)) => Err(self.error(path, e)),
        }
    }
}

/// Read `file` into a [`Project`].
pub fn load(file: &Path, options: &LoadOptions) -> Result<Project, TemplateError> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| TemplateError {
        file: name.clone(),
        line: None,
        message: format!("cannot read it: {e}"),
    })?;
    let doc = yaml::parse(&text).map_err(|e| TemplateError {
        file: name.clone(),
        line: Some(e.line),
        message: format!("not valid YAML (column {}): {}", e.column, e.message),
    })?;
    let dir = file.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut reader = Reader {
        doc: &doc,
        file: name,
        dir,
        scope: Scope::default(),
        options,
        warnings: Vec::new(),
        layer_ids: Vec::new(),
    };
    let root = doc.root.as_object().ok_or_else(|| reader.error("", "a template is a mapping"))?;
    let resources = root
        .get("Resources")
        .and_then(Value::as_object)
        .ok_or_else(|| reader.error("Resources", "the template has no Resources mapping"))?;
    reader.scope.parameters = parameters(&reader, root.get("Parameters"))?;
    reader.scope.pseudo = pseudo(options);
    reader.scope.mappings = root.get("Mappings").and_then(Value::as_object).cloned().unwrap_or_default();
    reader.scope.conditions = conditions(&reader, root.get("Conditions"))?;
    name_resources(&mut reader, resources)?;
    let globals = root.get("Globals").cloned().unwrap_or(Value::Null);
    warn_other_globals(&mut reader, &globals);
    let (functions, layers) = resources_of(&mut reader, resources, globals.get("Function"))?;
    Ok(Project {
        file: file.to_path_buf(),
        dir: reader.dir,
        stack: options.stack.clone(),
        functions,
        layers,
        warnings: reader.warnings,
    })
}

/// Each parameter's value: its override, else its default.
fn parameters(reader: &Reader<'_>, declared: Option<&Value>) -> Result<HashMap<String, Value>, TemplateError> {
    let mut out = HashMap::new();
    let declared = declared.and_then(Value::as_object).cloned().unwrap_or_default();
    for (name, spec) in &declared {
        let path = format!("Parameters.{name}");
        let text = match (reader.options.overrides.get(name), spec.get("Default")) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => reader.scope.text(d).map_err(|e| reader.error(&path, e))?,
            (None, None) => {
                return Err(reader.error(&path, "has no Default: give it with --parameter-overrides NAME=VALUE"))
            }
        };
        if let Some(allowed) = spec.get("AllowedValues").and_then(Value::as_array) {
            if !allowed.iter().any(|a| a.as_str() == Some(&text) || a.as_u64().is_some_and(|n| n.to_string() == text)) {
                return Err(reader.error(&path, format!("{text:?} is not one of its AllowedValues")));
            }
        }
        let is_list = spec.get("Type").and_then(Value::as_str).is_some_and(|t| t.contains("List"));
        let value = if is_list {
            Value::Array(text.split(',').map(|s| Value::String(s.trim().into())).collect())
        } else {
            Value::String(text)
        };
        out.insert(name.clone(), value);
    }
    if let Some(name) = reader.options.overrides.keys().find(|k| !declared.contains_key(*k)) {
        return Err(TemplateError {
            file: reader.file.clone(),
            line: None,
            message: format!("--parameter-overrides {name}: the template declares no such parameter"),
        });
    }
    Ok(out)
}

fn pseudo(o: &LoadOptions) -> HashMap<String, Value> {
    let stack_id = format!("arn:aws:cloudformation:{}:{}:stack/{}/lambdabox", o.region, o.account, o.stack);
    HashMap::from([
        ("AWS::Region".into(), Value::String(o.region.clone())),
        ("AWS::AccountId".into(), Value::String(o.account.clone())),
        ("AWS::StackName".into(), Value::String(o.stack.clone())),
        ("AWS::StackId".into(), Value::String(stack_id)),
        ("AWS::Partition".into(), Value::String("aws".into())),
        ("AWS::URLSuffix".into(), Value::String("amazonaws.com".into())),
        ("AWS::NotificationARNs".into(), Value::Array(Vec::new())),
    ])
}

/// Conditions may name each other: evaluate in passes until all are known.
fn conditions(reader: &Reader<'_>, declared: Option<&Value>) -> Result<HashMap<String, bool>, TemplateError> {
    let declared = declared.and_then(Value::as_object).cloned().unwrap_or_default();
    let mut scope = Scope {
        parameters: reader.scope.parameters.clone(),
        pseudo: reader.scope.pseudo.clone(),
        mappings: reader.scope.mappings.clone(),
        ..Scope::default()
    };
    let mut pending: Vec<&String> = declared.keys().collect();
    while !pending.is_empty() {
        let mut last_error = None;
        let before = pending.len();
        pending.retain(|name| match scope.truth(&declared[name.as_str()]) {
            Ok(b) => {
                scope.conditions.insert((*name).clone(), b);
                false
            }
            Err(e) => {
                last_error = Some((name.to_string(), e));
                true
            }
        });
        if pending.len() == before {
            let (name, e) = last_error.expect("a condition failed");
            return Err(reader.error(&format!("Conditions.{name}"), e));
        }
    }
    Ok(scope.conditions)
}

/// What `!Ref` and `!GetAtt` of the template's own resources give.
fn name_resources(reader: &mut Reader<'_>, resources: &Map<String, Value>) -> Result<(), TemplateError> {
    for (id, resource) in resources {
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
                let path = format!("Resources.{id}.Properties.FunctionName");
                let given = match resource.pointer("/Properties/FunctionName") {
                    Some(v) => reader.scope.text(v).map_err(|e| reader.error(&path, e)).map(Some)?,
                    None => None,
                };
                let name = given.unwrap_or_else(|| function::default_name(&reader.options.stack, id));
                let arn =
                    format!("arn:aws:lambda:{}:{}:function:{name}", reader.options.region, reader.options.account);
                reader.scope.refs.insert(id.clone(), Value::String(name));
                reader.scope.attributes.insert((id.clone(), "Arn".into()), Value::String(arn));
            }
            "AWS::Serverless::LayerVersion" | "AWS::Lambda::LayerVersion" => reader.layer_ids.push(id.clone()),
            "AWS::Serverless::Api" | "AWS::Serverless::HttpApi" => {
                reader.scope.refs.insert(id.clone(), Value::String(id.clone()));
            }
            _ => {}
        }
    }
    Ok(())
}

fn warn_other_globals(reader: &mut Reader<'_>, globals: &Value) {
    for (section, props) in globals.as_object().into_iter().flatten() {
        if section == "Function" {
            continue;
        }
        for prop in props.as_object().into_iter().flat_map(|m| m.keys()) {
            reader.warn(&format!("Globals.{section}.{prop}"), "not honoured: lambdabox applies Globals.Function only");
        }
    }
}

type Deployables = (Vec<FunctionSpec>, Vec<LayerSpec>);

fn resources_of(
    reader: &mut Reader<'_>,
    resources: &Map<String, Value>,
    function_globals: Option<&Value>,
) -> Result<Deployables, TemplateError> {
    let (mut functions, mut layers) = (Vec::new(), Vec::new());
    for (id, resource) in resources {
        let path = format!("Resources.{id}");
        if let Some(c) = resource.get("Condition") {
            if !reader.scope.condition(c).map_err(|e| reader.error(&format!("{path}.Condition"), e))? {
                continue;
            }
        }
        let kind = resource.get("Type").and_then(Value::as_str).unwrap_or("");
        let props = resource.get("Properties").cloned().unwrap_or_else(|| Value::Object(Map::new()));
        match kind {
            "AWS::Serverless::Function" => {
                let props = match function_globals {
                    Some(g) => globals::merge(g, &props),
                    None => props,
                };
                functions.extend(function::serverless(reader, id, &props, resource.get("Metadata"))?);
            }
            "AWS::Lambda::Function" => functions.extend(function::lambda(reader, id, &props)?),
            "AWS::Serverless::LayerVersion" | "AWS::Lambda::LayerVersion" => {
                layers.extend(function::layer(reader, id, kind, &props, resource.get("Metadata"))?)
            }
            "AWS::Serverless::Api" | "AWS::Serverless::HttpApi" => {
                for prop in props.as_object().into_iter().flat_map(|m| m.keys()) {
                    if !["Name", "StageName", "Description"].contains(&prop.as_str()) {
                        reader.warn(
                            &format!("{path}.Properties.{prop}"),
                            "not honoured: only the routes of its functions' events are served",
                        );
                    }
                }
            }
            "" => return Err(reader.error(&path, "has no Type")),
            other => {
                reader.warn(&path, format!("{other} is not created: lambdabox runs Lambda functions and layers only"))
            }
        }
    }
    Ok((functions, layers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options() -> LoadOptions {
        LoadOptions {
            stack: "app".into(),
            region: "us-east-1".into(),
            account: "000000000000".into(),
            overrides: BTreeMap::new(),
        }
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("template.yaml");
        std::fs::write(&file, text).unwrap();
        (dir, file)
    }

    #[test]
    fn a_published_pattern_loads_with_its_warnings() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sam/apigw-http-api-lambda/template.yml");
        let p = load(&file, &options()).unwrap();
        assert_eq!(p.functions.len(), 1);
        let f = &p.functions[0];
        assert_eq!(f.name, "apigw-http-api-lambda-function");
        assert_eq!(f.config["Runtime"], "nodejs20.x");
        assert_eq!(f.config["Timeout"], 15);
        assert_eq!(f.config["Environment"], json!({"Variables": {"Variable1": "1234", "Variable2": "ABCD"}}));
        let paths: Vec<&str> = p.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            ["Resources.FunctionResourcePermission", "Resources.HttpApi", "Resources.LambdaFunction.Properties.Role"]
        );
        assert!(p.warning_text(&p.warnings[2]).starts_with("template.yml:46: "), "{:?}", p.warnings[2]);
    }

    #[test]
    fn parameters_conditions_and_globals_shape_functions() {
        let (_dir, file) = write(
            "Parameters:\n  Stage: {Type: String, Default: dev}\nConditions:\n  Prod: !Equals [!Ref Stage, prod]\n\
             Globals:\n  Function:\n    Runtime: python3.11\n    Environment: {Variables: {A: g}}\n\
             Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: app.h\n\
             \x20     MemorySize: !If [Prod, 1024, 256]\n      Environment: {Variables: {B: !Sub '${Stage}-${Other.Arn}'}}\n\
             \x20     Tracing: Active\n      Events:\n        Q: {Type: SQS, Properties: {Queue: q}}\n\
             \x20       R: {Type: HttpApi}\n  Other:\n    Type: AWS::Lambda::Function\n    Condition: Prod\n\
             \x20   Properties: {Code: ., Handler: x, Runtime: python3.11}\n",
        );
        let p = load(&file, &options()).unwrap();
        assert_eq!(p.functions.len(), 1, "Other's condition is false");
        let f = &p.functions[0];
        assert_eq!(f.config["MemorySize"], 256);
        assert_eq!(
            f.config["Environment"],
            json!({"Variables": {"A": "g", "B": "dev-arn:aws:lambda:us-east-1:000000000000:function:app-Other"}})
        );
        assert_eq!(f.routes[0].path, "$default");
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        let mut o = options();
        o.overrides.insert("Stage".into(), "prod".into());
        let p = load(&file, &o).unwrap();
        assert_eq!((p.functions.len(), &p.functions[0].config["MemorySize"]), (2, &json!(1024)));
    }

    #[test]
    fn build_methods_are_taken_where_lambdabox_runs_them_and_warned_about_elsewhere() {
        let (_dir, file) = write(
            "Resources:\n  Built:\n    Type: AWS::Serverless::LayerVersion\n    Properties: {ContentUri: lib/}\n\
             \x20   Metadata: {BuildMethod: python3.11}\n  Made:\n    Type: AWS::Serverless::LayerVersion\n\
             \x20   Properties: {ContentUri: other/}\n    Metadata: {BuildMethod: makefile}\n\
             \x20 Java:\n    Type: AWS::Serverless::LayerVersion\n    Properties: {ContentUri: j/}\n\
             \x20   Metadata: {BuildMethod: java21}\n\
             \x20 Fn:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: f/, Runtime: python3.12, Handler: a.h}\n\
             \x20   Metadata: {BuildMethod: makefile}\n\
             \x20 Es:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: e/, Runtime: nodejs20.x, Handler: a.h}\n\
             \x20   Metadata: {BuildMethod: esbuild}\n",
        );
        let p = load(&file, &options()).unwrap();
        let builds: Vec<_> = p.layers.iter().map(|l| (l.logical_id.as_str(), l.build.as_deref())).collect();
        assert_eq!(builds, [("Built", Some("python3.11")), ("Java", None), ("Made", Some("makefile"))]);
        let makefiles: Vec<_> = p.functions.iter().map(|f| (f.logical_id.as_str(), f.makefile)).collect();
        assert_eq!(makefiles, [("Es", false), ("Fn", true)]);
        let mut paths: Vec<&str> = p.warnings.iter().map(|w| w.path.as_str()).collect();
        paths.sort();
        assert_eq!(paths, ["Resources.Es.Metadata.BuildMethod", "Resources.Java.Metadata.BuildMethod"]);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let (_dir, file) = write("Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties: [oops\n");
        let e = load(&file, &options()).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        let (_dir, file) = write("Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      MemorySize: !If [Nope, 1, 2]\n      Runtime: python3.11\n      Handler: a.b\n");
        let e = load(&file, &options()).unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.to_string().contains("template.yaml:5: Resources.Fn.Properties.MemorySize"), "{e}");
    }
}
