//! `lambdabox up`'s changes, through the Lambda API only: each step reads
//! what the controller has, compares it with the template, and writes only
//! a difference, so a second `up` over an unchanged project changes
//! nothing (no new revision, version or rule).

use std::collections::HashMap;

use anyhow::{Context, Result};
use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::Client;
use crate::client::paths;
use crate::project::build;
use crate::project::{Code, FunctionSpec, LayerRef, LayerSpec, Project};

/// What one step did, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

impl Change {
    pub fn and(self, other: Change) -> Change {
        match (self, other) {
            (Change::Created, _) | (_, Change::Created) => Change::Created,
            (Change::Updated, _) | (_, Change::Updated) => Change::Updated,
            _ => Change::Unchanged,
        }
    }
}

/// The body of a 2xx answer, `None` for 404, an error otherwise.
async fn fetch(client: &Client, req: impl Fn() -> crate::client::Request) -> Result<Option<Value>> {
    let resp = client.execute(req()).await?;
    if resp.status().as_u16() == 404 {
        return Ok(None);
    }
    if resp.status().is_success() {
        return Ok(Some(resp.json().await.unwrap_or(Value::Null)));
    }
    client.send(req()).await?;
    unreachable!("send fails on what execute saw fail")
}

async fn send_json(client: &Client, req: crate::client::Request) -> Result<Value> {
    Ok(client.send(req).await?.json().await.unwrap_or(Value::Null))
}

/// `desired` is contained in `current`: objects key by key, the rest equal
/// (numbers and their text alike).
fn within(desired: &Value, current: &Value) -> bool {
    match (desired, current) {
        (Value::Object(d), Value::Object(c)) => d.iter().all(|(k, v)| within(v, c.get(k).unwrap_or(&Value::Null))),
        (Value::Array(d), Value::Array(c)) => d.len() == c.len() && d.iter().zip(c).all(|(a, b)| within(a, b)),
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => *s == n.to_string(),
        _ => desired == current,
    }
}

/// Lambda's CodeSha256 of a zip.
fn code_sha256(zip: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(zip))
}

/// Publish each layer whose content changed; the ARN of each layer's
/// current version, by logical id.
pub async fn layers(client: &Client, project: &Project) -> Result<HashMap<String, String>> {
    let mut arns = HashMap::new();
    for layer in &project.layers {
        let zip = layer_zip(layer, project)?;
        let (arn, change) = publish_layer(client, layer, &zip).await?;
        eprintln!("layer {}: {} ({arn})", layer.logical_id, describe(change));
        arns.insert(layer.logical_id.clone(), arn);
    }
    Ok(arns)
}

/// A layer's content: its folder as it is, or with `BuildMethod` built: a
/// runtime's dependencies, everything under that runtime's layer folder;
/// a Makefile's artifacts, as the recipe laid them out.
fn layer_zip(layer: &LayerSpec, project: &Project) -> Result<Vec<u8>> {
    let Some(method) = &layer.build else { return Ok(build::zip_dir(&layer.dir)?) };
    let progress = |line: &str| eprintln!("layer {}: {line}", layer.logical_id);
    let job = match method.as_str() {
        "makefile" => build::Job { dir: &layer.dir, runtime: layer.runtime(), makefile_of: Some(&layer.logical_id) },
        runtime => build::Job { dir: &layer.dir, runtime, makefile_of: None },
    };
    let artifact = build::build(job, &project.dir.join(".lambdabox"), &progress)?;
    Ok(artifact.layer_zip(method)?)
}

async fn publish_layer(client: &Client, layer: &LayerSpec, zip: &[u8]) -> Result<(String, Change)> {
    let path = format!("/2018-10-31/layers/{}/versions", layer.name);
    let listed = fetch(client, || client.api.get(&path)).await?.unwrap_or(Value::Null);
    let sha = code_sha256(zip);
    for v in listed["LayerVersions"].as_array().into_iter().flatten().take(1) {
        let version = v["Version"].as_u64().unwrap_or(0);
        let got = fetch(client, || client.api.get(&format!("{path}/{version}"))).await?.unwrap_or(Value::Null);
        if got["Content"]["CodeSha256"].as_str() == Some(sha.as_str()) {
            return Ok((got["LayerVersionArn"].as_str().unwrap_or_default().to_owned(), Change::Unchanged));
        }
    }
    let mut body = Value::Object(layer.config.clone());
    body["Content"] = json!({ "ZipFile": base64::engine::general_purpose::STANDARD.encode(zip) });
    let published = send_json(client, client.api.post(&path).json(&body)).await?;
    let arn = published["LayerVersionArn"].as_str().context("PublishLayerVersion answered no LayerVersionArn")?;
    Ok((arn.to_owned(), Change::Created))
}

pub fn describe(change: Change) -> &'static str {
    match change {
        Change::Created => "created",
        Change::Updated => "updated",
        Change::Unchanged => "unchanged",
    }
}

/// The configuration the function should have: the template's, with
/// Lambda's defaults for what it leaves out (so a removed property reverts).
fn desired_config(spec: &FunctionSpec, layer_arns: &HashMap<String, String>) -> Result<Map<String, Value>> {
    let mut c = spec.config.clone();
    c.entry("MemorySize").or_insert(json!(128));
    c.entry("Timeout").or_insert(json!(3));
    c.entry("Description").or_insert(json!(""));
    c.entry("Environment").or_insert(json!({ "Variables": {} }));
    c.entry("EphemeralStorage").or_insert(json!({ "Size": 512 }));
    if !matches!(spec.code, Code::Image(_)) {
        let arns = spec
            .layers
            .iter()
            .map(|l| match l {
                LayerRef::Arn(a) => Ok(a.clone()),
                LayerRef::Local(id) => {
                    layer_arns.get(id).cloned().with_context(|| format!("layer {id} was not published"))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        c.insert("Layers".into(), json!(arns));
    }
    Ok(c)
}

/// Whether the current configuration differs from `desired`.
fn config_differs(desired: &Map<String, Value>, current: &Value) -> bool {
    desired.iter().any(|(k, want)| {
        let got = &current[k.as_str()];
        match k.as_str() {
            "Layers" => {
                let arns: Vec<&Value> = got.as_array().into_iter().flatten().map(|l| &l["Arn"]).collect();
                want.as_array().map(|w| w.iter().collect::<Vec<_>>()) != Some(arns)
            }
            "Environment" => {
                let vars = got["Variables"].as_object().cloned().unwrap_or_default();
                want["Variables"].as_object() != Some(&vars)
            }
            _ => !within(want, got),
        }
    })
}

/// The function's code: built, zipped (or its image).
pub fn code_of(spec: &FunctionSpec, project: &Project) -> Result<Value> {
    let zip = match &spec.code {
        Code::Image(uri) => return Ok(json!({ "ImageUri": uri })),
        Code::Inline(text) => inline_zip(spec, text)?,
        Code::Dir(dir) => {
            let runtime = spec.runtime().unwrap_or_default();
            let makefile_of = spec.makefile.then_some(spec.logical_id.as_str());
            let cache = project.dir.join(".lambdabox");
            let progress = |line: &str| eprintln!("{}: {line}", spec.logical_id);
            let artifact = build::build(build::Job { dir, runtime, makefile_of }, &cache, &progress)?;
            artifact.zip()?
        }
    };
    Ok(json!({ "ZipFile": base64::engine::general_purpose::STANDARD.encode(&zip), "Sha": code_sha256(&zip) }))
}

/// `InlineCode`: one file, `index.py` / `index.js` / … by runtime.
fn inline_zip(spec: &FunctionSpec, text: &str) -> Result<Vec<u8>> {
    let ext = match spec.runtime().unwrap_or_default() {
        r if r.starts_with("python") => "py",
        r if r.starts_with("nodejs") => "js",
        r if r.starts_with("ruby") => "rb",
        r => anyhow::bail!("{}: InlineCode is not supported for {r}", spec.logical_id),
    };
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join(format!("index.{ext}")), text)?;
    Ok(build::zip_dir(dir.path())?)
}

/// Create the function, or update its code and configuration where they
/// differ. Answers the change and the function's ARN.
pub async fn function(
    client: &Client,
    spec: &FunctionSpec,
    code: Value,
    layer_arns: &HashMap<String, String>,
) -> Result<(Change, String)> {
    let config = desired_config(spec, layer_arns)?;
    let name = &spec.name;
    let current = fetch(client, || client.api.function(Method::GET, name, "")).await?;
    let Some(current) = current else {
        let mut body = Value::Object(config);
        body["FunctionName"] = json!(name);
        body["Role"] = json!("arn:aws:iam::000000000000:role/lambdabox");
        body["Code"] = json!({ "ZipFile": code["ZipFile"], "ImageUri": code["ImageUri"] });
        strip_nulls(&mut body["Code"]);
        let created = send_json(client, client.api.create_function(&body)).await?;
        return Ok((Change::Created, created["FunctionArn"].as_str().unwrap_or_default().to_owned()));
    };
    let mut change = Change::Unchanged;
    let same_code = match (&code["Sha"], &code["ImageUri"]) {
        (Value::String(sha), _) => current["Configuration"]["CodeSha256"].as_str() == Some(sha.as_str()),
        (_, uri) => current["Code"]["ImageUri"] == *uri,
    };
    if !same_code {
        let mut body = code.clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("Sha");
        }
        strip_nulls(&mut body);
        client.send(client.api.function(Method::PUT, name, "/code").json(&body)).await?;
        change = Change::Updated;
    }
    if config_differs(&config, &current["Configuration"]) {
        let body = Value::Object(config);
        client.send(client.api.function(Method::PUT, name, "/configuration").json(&body)).await?;
        change = Change::Updated;
    }
    Ok((change, current["Configuration"]["FunctionArn"].as_str().unwrap_or_default().to_owned()))
}

fn strip_nulls(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
}

/// Reserved concurrency, AutoPublishAlias (and the provisioned
/// concurrency of that alias), the URL and the EventInvokeConfig.
/// Answers the qualifier events and routes should invoke.
pub async fn extras(client: &Client, spec: &FunctionSpec) -> Result<(Change, Option<String>)> {
    let mut change = reserved(client, spec).await?;
    let qualifier = match &spec.alias {
        Some(alias) => {
            change = change.and(alias_to_latest(client, &spec.name, alias).await?);
            change = change.and(provisioned(client, spec, alias).await?);
            Some(alias.clone())
        }
        None => None,
    };
    change = change.and(url(client, spec, qualifier.as_deref()).await?);
    change = change.and(event_invoke(client, spec, qualifier.as_deref()).await?);
    Ok((change, qualifier))
}

async fn reserved(client: &Client, spec: &FunctionSpec) -> Result<Change> {
    let got = fetch(client, || client.api.get(&format!("/2019-09-30/functions/{}/concurrency", spec.name))).await?;
    let current = got.and_then(|v| v["ReservedConcurrentExecutions"].as_u64());
    if current == spec.reserved {
        return Ok(Change::Unchanged);
    }
    let path = format!("/2017-10-31/functions/{}/concurrency", spec.name);
    match spec.reserved {
        Some(n) => client.send(client.api.put(&path).json(&json!({ "ReservedConcurrentExecutions": n }))).await?,
        None => client.send(client.api.delete(&path)).await?,
    };
    Ok(Change::Updated)
}

/// Publish `$LATEST` (Lambda answers the existing version when nothing
/// changed) and point the alias at it.
async fn alias_to_latest(client: &Client, name: &str, alias: &str) -> Result<Change> {
    let published = send_json(client, client.api.function(Method::POST, name, "/versions").json(&json!({}))).await?;
    let version = published["Version"].as_str().context("PublishVersion answered no Version")?.to_owned();
    let path = format!("/aliases/{alias}");
    let current = fetch(client, || client.api.function(Method::GET, name, &path)).await?;
    match current {
        Some(a) if a["FunctionVersion"] == json!(version) => Ok(Change::Unchanged),
        Some(_) => {
            let body = json!({ "FunctionVersion": version });
            client.send(client.api.function(Method::PUT, name, &path).json(&body)).await?;
            Ok(Change::Updated)
        }
        None => {
            let body = json!({ "Name": alias, "FunctionVersion": version });
            client.send(client.api.function(Method::POST, name, "/aliases").json(&body)).await?;
            Ok(Change::Created)
        }
    }
}

async fn provisioned(client: &Client, spec: &FunctionSpec, alias: &str) -> Result<Change> {
    let path = format!("/2019-09-30/functions/{}/provisioned-concurrency", spec.name);
    let q = [("Qualifier", alias)];
    let got = fetch(client, || client.api.get(&path).query(&q)).await?;
    let current = got.as_ref().and_then(|v| v["RequestedProvisionedConcurrentExecutions"].as_u64());
    match (spec.provisioned, current) {
        (a, b) if a == b => Ok(Change::Unchanged),
        (Some(n), _) => {
            let body = json!({ "ProvisionedConcurrentExecutions": n });
            client.send(client.api.put(&path).query(&q).json(&body)).await?;
            Ok(Change::Updated)
        }
        (None, _) => {
            client.send(client.api.delete(&path).query(&q)).await?;
            Ok(Change::Updated)
        }
    }
}

/// A configuration (URL, EventInvokeConfig) at `path`: created, updated
/// where it differs, deleted when the template has none.
async fn sub_config(
    client: &Client,
    path: &str,
    q: &[(&str, &str)],
    want: Option<&Value>,
    put_creates: bool,
) -> Result<Change> {
    let current = fetch(client, || client.api.get(path).query(q)).await?;
    match (want, current) {
        (None, None) => Ok(Change::Unchanged),
        (Some(w), Some(c)) if within(w, &c) => Ok(Change::Unchanged),
        (Some(w), Some(_)) => {
            client.send(client.api.put(path).query(q).json(w)).await?;
            Ok(Change::Updated)
        }
        (Some(w), None) => {
            let req = if put_creates { client.api.put(path) } else { client.api.post(path) };
            client.send(req.query(q).json(w)).await?;
            Ok(Change::Created)
        }
        (None, Some(_)) => {
            client.send(client.api.delete(path).query(q)).await?;
            Ok(Change::Updated)
        }
    }
}

async fn url(client: &Client, spec: &FunctionSpec, qualifier: Option<&str>) -> Result<Change> {
    let q: Vec<(&str, &str)> = qualifier.iter().map(|a| ("Qualifier", *a)).collect();
    let want = spec.url.as_ref().map(|u| {
        let mut u = u.clone();
        if u.get("InvokeMode").is_none() {
            u["InvokeMode"] = json!("BUFFERED");
        }
        u
    });
    sub_config(client, &paths::url_config(&spec.name), &q, want.as_ref(), false).await
}

async fn event_invoke(client: &Client, spec: &FunctionSpec, qualifier: Option<&str>) -> Result<Change> {
    let q: Vec<(&str, &str)> = qualifier.iter().map(|a| ("Qualifier", *a)).collect();
    let path = format!("/2019-09-25/functions/{}/event-invoke-config", spec.name);
    sub_config(client, &path, &q, spec.event_invoke.as_ref(), true).await
}

/// The function's URL, if it has one (for the summary).
pub async fn url_of(client: &Client, name: &str, qualifier: Option<&str>) -> Result<Option<String>> {
    let q: Vec<(&str, &str)> = qualifier.iter().map(|a| ("Qualifier", *a)).collect();
    let got = fetch(client, || client.api.get(&paths::url_config(name)).query(&q)).await?;
    Ok(got.and_then(|v| v["FunctionUrl"].as_str().map(str::to_owned)))
}

/// Delete function `name` (its URL, aliases and versions go with it).
pub async fn delete_function(client: &Client, name: &str) -> Result<()> {
    let resp = client.execute(client.api.function(Method::DELETE, name, "")).await?;
    if resp.status().as_u16() != 404 && !resp.status().is_success() {
        client.send(client.api.function(Method::DELETE, name, "")).await?;
    }
    Ok(())
}
