//! `lambdabox up`: bring a SAM / CloudFormation project up on a controller,
//! and with `--watch`, keep it up to date as its code changes.
//!
//! What the project owns is kept by the controller as a stack record
//! (`/lambdabox/v1/stacks/NAME`, a file under `DATA_DIR/stacks/`): the next
//! `up` deletes the functions and rules the template no longer has
//! (unless `--no-prune`), and the controller serves the record's routes.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::deploy;
use super::{schedules, Client};
use crate::gateway::{RouteSpec, StackRecord};
use crate::project::{self, LoadOptions, Project};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The SAM / CloudFormation template.
    #[arg(short = 'f', long = "template", default_value = "template.yaml")]
    pub template: PathBuf,
    /// The stack's name: prefixes function names and keys what the
    /// project owns (default: the template's folder name).
    #[arg(long)]
    pub stack_name: Option<String>,
    /// Parameter values, KEY=VALUE; repeat or list several.
    #[arg(long = "parameter-overrides", value_name = "KEY=VALUE", num_args = 1..)]
    pub parameter_overrides: Vec<String>,
    /// Keep functions and rules the template no longer has (default:
    /// delete them).
    #[arg(long)]
    pub no_prune: bool,
    /// Where the controller serves the template's Api and HttpApi routes.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub api_listen: SocketAddr,
    /// Start a controller in the background (as `serve --detach` does, at
    /// --endpoint's address) when none answers there; `lambdabox down`
    /// stops it.
    #[arg(long)]
    pub serve: bool,
    /// An argument for the controller `--serve` starts (repeat it:
    /// `--serve-arg=--max-memory-mb=4096 --serve-arg=--no-prewarm`).
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true, requires = "serve")]
    pub serve_args: Vec<String>,
    /// Stay running: update a function when files under its CodeUri change,
    /// and the whole project when the template or a layer changes.
    #[arg(long)]
    pub watch: bool,
}

/// The stack name a folder gives: letters, digits and hyphens.
fn stack_name(args: &UpArgs) -> Result<String> {
    if let Some(name) = &args.stack_name {
        return Ok(name.clone());
    }
    let dir = std::path::absolute(&args.template)?;
    let folder = dir.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    let name: String = folder
        .unwrap_or_else(|| "lambdabox".into())
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Ok(name.trim_matches('-').to_owned()).map(|n| if n.is_empty() { "lambdabox".into() } else { n })
}

fn options(args: &UpArgs) -> Result<LoadOptions> {
    let mut overrides = BTreeMap::new();
    for pair in &args.parameter_overrides {
        let (k, v) =
            pair.split_once('=').with_context(|| format!("--parameter-overrides {pair}: expected KEY=VALUE"))?;
        overrides.insert(k.to_owned(), v.to_owned());
    }
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
        .unwrap_or_else(|| crate::arn::Realm::default().region);
    Ok(LoadOptions { stack: stack_name(args)?, region, account: crate::arn::Realm::default().account, overrides })
}

/// Read the template and print its warnings.
pub(super) fn load(args: &UpArgs) -> Result<Project> {
    let project = project::load(&args.template, &options(args)?)?;
    for w in &project.warnings {
        eprintln!("warning: {}", project.warning_text(w));
    }
    Ok(project)
}

pub(super) async fn up(client: &Client, args: UpArgs) -> Result<ExitCode> {
    let project = load(&args)?;
    bring_up(client, &project, &args).await?;
    if args.watch {
        return super::watch::run(client, &args, project).await;
    }
    Ok(ExitCode::SUCCESS)
}

fn record_path(stack: &str) -> String {
    format!("{}/stacks/{stack}", crate::client::paths::LAMBDABOX)
}

/// Deploy everything, prune, and record the stack.
pub(super) async fn bring_up(client: &Client, project: &Project, args: &UpArgs) -> Result<StackRecord> {
    let previous: StackRecord = match client.execute(client.api.get(&record_path(&project.stack))).await? {
        r if r.status().as_u16() == 404 => StackRecord::default(),
        _ => client.send(client.api.get(&record_path(&project.stack))).await?.json().await?,
    };
    let layer_arns = deploy::layers(client, project).await?;
    let mut record =
        StackRecord { layers: project.layers.iter().map(|l| l.name.clone()).collect(), ..Default::default() };
    for spec in &project.functions {
        let (routes, rules) = up_function(client, project, spec, &layer_arns).await?;
        record.functions.push(spec.name.clone());
        record.routes.extend(routes);
        record.rules.extend(rules);
    }
    prune(client, &previous, &mut record, args.no_prune).await?;
    if !record.routes.is_empty() {
        record.listen = Some(args.api_listen);
    }
    let kept: StackRecord = client
        .send(client.api.put(&record_path(&project.stack)).json(&serde_json::to_value(&record)?))
        .await?
        .json()
        .await?;
    if let Some(addr) = kept.listen {
        for r in &kept.routes {
            eprintln!("route {} http://{addr}{} → {}", r.method, r.path.replace("$default", "/*"), r.function);
        }
    }
    Ok(kept)
}

/// One function, with its alias, URL, rules and routes.
pub(super) async fn up_function(
    client: &Client,
    project: &Project,
    spec: &project::FunctionSpec,
    layer_arns: &HashMap<String, String>,
) -> Result<(Vec<RouteSpec>, Vec<String>)> {
    let code = deploy::code_of(spec, project).with_context(|| format!("{}: build failed", spec.logical_id))?;
    let (change, arn) = deploy::function(client, spec, code, layer_arns).await?;
    let (more, qualifier) = deploy::extras(client, spec).await?;
    let mut change = change.and(more);
    let target = match &qualifier {
        Some(q) => format!("{arn}:{q}"),
        None => arn.clone(),
    };
    let mut rules = Vec::new();
    for s in &spec.schedules {
        change = change.and(schedules::apply(client, s, &format!("{}{}", spec.logical_id, s.id), &target).await?);
        rules.push(s.rule.clone());
    }
    let url = deploy::url_of(client, &spec.name, qualifier.as_deref()).await?;
    let shown = url.map(|u| format!(" {u}")).unwrap_or_default();
    eprintln!("{} ({}): {}{shown}", spec.logical_id, spec.name, deploy::describe(change));
    let routes = spec
        .routes
        .iter()
        .map(|r| RouteSpec {
            kind: r.kind.clone(),
            method: r.method.clone(),
            path: r.path.clone(),
            function: spec.name.clone(),
            qualifier: qualifier.clone(),
            payload_format_version: r.payload_format.clone(),
        })
        .collect();
    Ok((routes, rules))
}

/// Delete what the previous `up` made and this one did not (or, with
/// `--no-prune`, keep it on the record for a later prune).
async fn prune(client: &Client, previous: &StackRecord, record: &mut StackRecord, keep: bool) -> Result<()> {
    let gone_rules: Vec<String> = previous.rules.iter().filter(|r| !record.rules.contains(r)).cloned().collect();
    let gone_functions: Vec<String> =
        previous.functions.iter().filter(|f| !record.functions.contains(f)).cloned().collect();
    if keep {
        record.rules.extend(gone_rules);
        record.functions.extend(gone_functions);
        return Ok(());
    }
    for rule in gone_rules {
        schedules::delete(client, &rule).await?;
        eprintln!("rule {rule}: deleted (no longer in the template)");
    }
    for name in gone_functions {
        deploy::delete_function(client, &name).await?;
        eprintln!("{name}: deleted (no longer in the template)");
    }
    Ok(())
}
