//! One function or layer resource of a template, property by property:
//! what the Lambda API can take goes into the spec, everything else is one
//! warning naming the property. Events are read in [`super::events`].

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use super::events::{self, Route, Schedule};
use super::template::{Reader, TemplateError};

/// Where a function's code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// A folder (`CodeUri`, or a `Code` path), built and zipped.
    Dir(PathBuf),
    /// `InlineCode` / `Code.ZipFile`: one file, `index.<ext>`.
    Inline(String),
    /// `ImageUri`: a local image.
    Image(String),
}

/// A layer a function uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerRef {
    Arn(String),
    /// `!Ref` of a layer resource of the template, by logical id.
    Local(String),
}

/// Everything `up` needs to create or update one function.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub name: String,
    pub code: Code,
    /// CreateFunction's configuration members (Runtime, Handler,
    /// MemorySize, …), without Code, FunctionName and Layers.
    pub config: Map<String, Value>,
    pub layers: Vec<LayerRef>,
    pub reserved: Option<u64>,
    pub provisioned: Option<u64>,
    pub alias: Option<String>,
    /// FunctionUrlConfig's body (AuthType, Cors, InvokeMode).
    pub url: Option<Value>,
    /// PutFunctionEventInvokeConfig's body.
    pub event_invoke: Option<Value>,
    pub schedules: Vec<Schedule>,
    pub routes: Vec<Route>,
    /// `Metadata.BuildMethod: makefile`: built by the folder's own
    /// `make build-<LogicalId>` rather than from its manifest.
    pub makefile: bool,
}

impl FunctionSpec {
    pub fn runtime(&self) -> Option<&str> {
        self.config.get("Runtime").and_then(Value::as_str)
    }
}

/// A layer version to publish from a folder.
#[derive(Debug, Clone)]
pub struct LayerSpec {
    pub logical_id: String,
    pub name: String,
    pub dir: PathBuf,
    /// PublishLayerVersion's members besides Content (CompatibleRuntimes, …).
    pub config: Map<String, Value>,
    /// `Metadata.BuildMethod` when lambdabox builds it: a runtime (the
    /// folder's dependencies are built as for a function and the whole put
    /// under that runtime's layer folder) or `makefile`.
    pub build: Option<String>,
}

impl LayerSpec {
    /// The runtime a Makefile layer is built for: its first
    /// CompatibleRuntimes entry ("" when it names none: built on the host).
    pub fn runtime(&self) -> &str {
        self.config.get("CompatibleRuntimes").and_then(|r| r.get(0)).and_then(Value::as_str).unwrap_or_default()
    }
}

/// `STACK-LOGICALID`, within Lambda's 64 characters.
pub fn default_name(stack: &str, logical_id: &str) -> String {
    let mut name = format!("{stack}-{logical_id}");
    name.truncate(64);
    name
}

/// Properties that mean something only on AWS (IAM, VPC, tracing, …).
const AWS_ONLY: &[&str] = &[
    "Role",
    "Policies",
    "Tags",
    "Tracing",
    "VpcConfig",
    "KmsKeyArn",
    "PermissionsBoundary",
    "AssumeRolePolicyDocument",
    "RolePath",
    "CodeSigningConfigArn",
    "DeploymentPreference",
    "FileSystemConfigs",
    "SnapStart",
    "RuntimeManagementConfig",
    "PropagateTags",
    "RecursiveLoop",
    "AutoPublishCodeSha256",
    "AutoPublishAliasAllProperties",
    "VersionDescription",
    "VersionDeletionPolicy",
    "FileSystemConfig",
    "TracingConfig",
];

/// Members passed to the Lambda API as they are.
const PASSED: &[&str] =
    &["Handler", "Runtime", "Description", "MemorySize", "Timeout", "EphemeralStorage", "ImageConfig", "LoggingConfig"];

/// An `AWS::Serverless::Function` (Globals already merged).
pub(super) fn serverless(
    reader: &mut Reader<'_>,
    id: &str,
    props: &Value,
    metadata: Option<&Value>,
) -> Result<Option<FunctionSpec>, TemplateError> {
    let base = format!("Resources.{id}.Properties");
    let method = metadata.and_then(|m| m.get("BuildMethod")).and_then(Value::as_str);
    if method == Some("esbuild") {
        reader.warn(
            &format!("Resources.{id}.Metadata.BuildMethod"),
            "esbuild builds are not run: dependencies are built from the manifest found in CodeUri",
        );
    }
    let code = match (props.get("ImageUri"), props.get("InlineCode"), props.get("CodeUri")) {
        (Some(uri), ..) => reader.eval(&format!("{base}.ImageUri"), uri)?.map(|v| Code::Image(text(&v))),
        (None, Some(inline), _) => reader.eval(&format!("{base}.InlineCode"), inline)?.map(|v| Code::Inline(text(&v))),
        (None, None, Some(uri)) => match reader.eval(&format!("{base}.CodeUri"), uri)? {
            Some(Value::String(dir)) => Some(Code::Dir(reader.dir.join(dir))),
            Some(_) => {
                reader
                    .warn(&format!("{base}.CodeUri"), "not created: CodeUri is an S3 location; give a folder instead");
                None
            }
            None => None,
        },
        (None, None, None) => Some(Code::Dir(reader.dir.clone())),
    };
    let Some(code) = code else { return Ok(None) };
    let mut spec = new_spec(reader, id, code);
    spec.makefile = method == Some("makefile");
    for (key, value) in props.as_object().into_iter().flatten() {
        let path = format!("{base}.{key}");
        match key.as_str() {
            "CodeUri" | "InlineCode" | "ImageUri" | "FunctionName" => {}
            "Events" => events::read(reader, &path, value, &mut spec)?,
            "AutoPublishAlias" => spec.alias = reader.eval(&path, value)?.map(|v| text(&v)),
            "ProvisionedConcurrencyConfig" => {
                let v = reader.eval(&path, value)?;
                spec.provisioned = v.and_then(|v| number(&v["ProvisionedConcurrentExecutions"]));
            }
            "FunctionUrlConfig" => spec.url = reader.eval(&path, value)?,
            "EventInvokeConfig" => spec.event_invoke = reader.eval(&path, value)?.map(|v| event_invoke(reader, &path, v)),
            "DeadLetterQueue" => reader.warn(&path, "not honoured: lambdabox has no SQS queue or SNS topic; failed asynchronous events stay as dead letters (`lambdabox events failed NAME`)"),
            _ => common(reader, &path, key, value, &mut spec)?,
        }
    }
    finish(reader, &base, spec)
}

/// An `AWS::Lambda::Function`.
pub(super) fn lambda(reader: &mut Reader<'_>, id: &str, props: &Value) -> Result<Option<FunctionSpec>, TemplateError> {
    let base = format!("Resources.{id}.Properties");
    let code = match props.get("Code") {
        Some(c) => reader.eval(&format!("{base}.Code"), c)?,
        None => return Err(reader.error(&base, "AWS::Lambda::Function needs Code")),
    };
    let code = match code {
        Some(Value::String(dir)) => Code::Dir(reader.dir.join(dir)),
        Some(Value::Object(c)) if c.contains_key("ZipFile") => Code::Inline(text(&c["ZipFile"])),
        Some(Value::Object(c)) if c.contains_key("ImageUri") => Code::Image(text(&c["ImageUri"])),
        _ => {
            reader.warn(&format!("{base}.Code"), "not created: the code is in S3; give a folder path instead");
            return Ok(None);
        }
    };
    let mut spec = new_spec(reader, id, code);
    for (key, value) in props.as_object().into_iter().flatten() {
        let path = format!("{base}.{key}");
        match key.as_str() {
            "Code" | "FunctionName" => {}
            "DeadLetterConfig" => reader.warn(&path, "not honoured: lambdabox has no SQS queue or SNS topic"),
            _ => common(reader, &path, key, value, &mut spec)?,
        }
    }
    finish(reader, &base, spec)
}

fn new_spec(reader: &Reader<'_>, id: &str, code: Code) -> FunctionSpec {
    let name = reader.scope.refs.get(id).map(text).unwrap_or_else(|| default_name(&reader.options.stack, id));
    FunctionSpec {
        logical_id: id.to_owned(),
        name,
        code,
        config: Map::new(),
        layers: Vec::new(),
        reserved: None,
        provisioned: None,
        alias: None,
        url: None,
        event_invoke: None,
        schedules: Vec::new(),
        routes: Vec::new(),
        makefile: false,
    }
}

/// The members both function types share.
fn common(
    reader: &mut Reader<'_>,
    path: &str,
    key: &str,
    value: &Value,
    spec: &mut FunctionSpec,
) -> Result<(), TemplateError> {
    match key {
        k if PASSED.contains(&k) => {
            if let Some(mut v) = reader.eval(path, value)? {
                // A parameter's value is text; these members are numbers.
                if let Some(n) = ["MemorySize", "Timeout"].contains(&k).then(|| number(&v)).flatten() {
                    v = n.into();
                }
                if let Some(n) = v.get("Size").and_then(number) {
                    v["Size"] = n.into();
                }
                spec.config.insert(k.to_owned(), v);
            }
        }
        "PackageType" => {}
        "Environment" => {
            let vars = value.get("Variables").and_then(Value::as_object).cloned().unwrap_or_default();
            let mut out = Map::new();
            for (name, v) in &vars {
                if let Some(v) = reader.eval(&format!("{path}.Variables.{name}"), v)? {
                    out.insert(name.clone(), Value::String(text(&v)));
                }
            }
            spec.config.insert("Environment".into(), json!({ "Variables": out }));
        }
        "Architectures" => match reader.eval(path, value)? {
            Some(v) if v == json!(["x86_64"]) => {}
            Some(v) => reader.warn(path, format!("{v} not honoured: lambdabox runs x86_64 only")),
            None => {}
        },
        "Layers" => layers(reader, path, value, spec)?,
        "ReservedConcurrentExecutions" => spec.reserved = reader.eval(path, value)?.as_ref().and_then(number),
        k if AWS_ONLY.contains(&k) => reader.warn(path, "has no effect on lambdabox"),
        _ => reader.warn(path, "unknown property: not honoured"),
    }
    Ok(())
}

/// `Layers`: ARNs, or `!Ref` of the template's own layers.
fn layers(reader: &mut Reader<'_>, path: &str, value: &Value, spec: &mut FunctionSpec) -> Result<(), TemplateError> {
    for (i, item) in value.as_array().into_iter().flatten().enumerate() {
        let local = item.get("Ref").and_then(Value::as_str).filter(|r| reader.layer_ids.iter().any(|l| l == r));
        match local {
            Some(id) => spec.layers.push(LayerRef::Local(id.to_owned())),
            None => {
                if let Some(v) = reader.eval(&format!("{path}.{i}"), item)? {
                    spec.layers.push(LayerRef::Arn(text(&v)));
                }
            }
        }
    }
    Ok(())
}

/// SAM's EventInvokeConfig to the API's: destinations lose their `Type`.
fn event_invoke(reader: &mut Reader<'_>, path: &str, mut v: Value) -> Value {
    if let Some(dest) = v.get_mut("DestinationConfig").and_then(Value::as_object_mut) {
        for (when, d) in dest.iter_mut() {
            let kind = d.get("Type").and_then(Value::as_str).unwrap_or("Lambda").to_owned();
            if kind != "Lambda" && kind != "EventBridge" {
                reader.warn(&format!("{path}.DestinationConfig.{when}"), format!("destination type {kind} is not honoured: lambdabox sends to functions and the default event bus only"));
            }
            if let Some(o) = d.as_object_mut() {
                o.remove("Type");
            }
        }
    }
    v
}

fn finish(reader: &mut Reader<'_>, base: &str, mut spec: FunctionSpec) -> Result<Option<FunctionSpec>, TemplateError> {
    if matches!(spec.code, Code::Image(_)) {
        spec.config.insert("PackageType".into(), "Image".into());
    } else if spec.runtime().is_none() || !spec.config.contains_key("Handler") {
        return Err(reader.error(base, "a zip function needs Runtime and Handler (in Properties or Globals.Function)"));
    }
    if spec.provisioned.is_some() && spec.alias.is_none() {
        reader.warn(&format!("{base}.ProvisionedConcurrencyConfig"), "not honoured without AutoPublishAlias");
        spec.provisioned = None;
    }
    Ok(Some(spec))
}

/// A layer resource with a local folder.
pub(super) fn layer(
    reader: &mut Reader<'_>,
    id: &str,
    kind: &str,
    props: &Value,
    metadata: Option<&Value>,
) -> Result<Option<LayerSpec>, TemplateError> {
    let base = format!("Resources.{id}.Properties");
    let content_key = if kind == "AWS::Serverless::LayerVersion" { "ContentUri" } else { "Content" };
    let mut spec = LayerSpec {
        logical_id: id.to_owned(),
        name: id.to_owned(),
        dir: reader.dir.clone(),
        config: Map::new(),
        build: None,
    };
    if let Some(method) = metadata.and_then(|m| m.get("BuildMethod")).and_then(Value::as_str) {
        if crate::project::build::builds_layers_for(method) {
            spec.build = Some(method.to_owned());
        } else {
            reader.warn(
                &format!("Resources.{id}.Metadata.BuildMethod"),
                format!(
                    "{method} is not built: the layer's folder is published as it is \
                     (python*, nodejs*, ruby* and makefile are built)"
                ),
            );
        }
    }
    for (key, value) in props.as_object().into_iter().flatten() {
        let path = format!("{base}.{key}");
        match key.as_str() {
            k if k == content_key => match reader.eval(&path, value)? {
                Some(Value::String(dir)) => spec.dir = reader.dir.join(dir),
                _ => {
                    reader.warn(&path, "not published: the content is in S3; give a folder instead");
                    return Ok(None);
                }
            },
            "LayerName" => spec.name = reader.eval(&path, value)?.map_or(spec.name, |v| text(&v)),
            "CompatibleRuntimes" | "Description" | "LicenseInfo" | "CompatibleArchitectures" => {
                if let Some(v) = reader.eval(&path, value)? {
                    spec.config.insert(key.clone(), v);
                }
            }
            "RetentionPolicy" => {}
            _ => reader.warn(&path, "unknown property: not honoured"),
        }
    }
    Ok(Some(spec))
}

/// Text of a scalar (numbers and booleans as JSON prints them).
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A number, or text holding one.
pub(super) fn number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}
