//! `lambdabox up --watch`: poll the project's folders (every 300 ms, no
//! inotify dependency, works on any mount) and redeploy what changed once
//! the files have been still for 300 ms. A function's own folder updates
//! that function; the template or a layer folder brings the whole project
//! up again. A failed build or deploy is printed and the old code stays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use super::up::{self, UpArgs};
use super::Client;
use crate::project::{build, Code, Project};

const TICK: Duration = Duration::from_millis(300);

/// What is watched: the project as a whole, or one function.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Watched {
    Project,
    Function(String),
}

/// Modification times and sizes of every file under `dir` (or of `dir`
/// itself when it is a file).
type Stamp = BTreeMap<PathBuf, (Option<SystemTime>, u64)>;

fn stamp(path: &Path) -> Stamp {
    let files = if path.is_file() {
        BTreeMap::from([(PathBuf::new(), path.to_path_buf())])
    } else {
        build::files_of(path, &["node_modules"]).unwrap_or_default()
    };
    files
        .into_iter()
        .map(|(rel, full)| {
            let meta = std::fs::metadata(&full).ok();
            (rel, (meta.as_ref().and_then(|m| m.modified().ok()), meta.map_or(0, |m| m.len())))
        })
        .collect()
}

fn targets(project: &Project) -> Vec<(Watched, PathBuf)> {
    let mut out = vec![(Watched::Project, project.file.clone())];
    out.extend(project.layers.iter().map(|l| (Watched::Project, l.dir.clone())));
    for f in &project.functions {
        if let Code::Dir(dir) = &f.code {
            out.push((Watched::Function(f.logical_id.clone()), dir.clone()));
        }
    }
    out
}

fn stamps(project: &Project) -> Vec<(Watched, Stamp)> {
    targets(project).into_iter().map(|(w, p)| (w, stamp(&p))).collect()
}

/// Watch until interrupted.
pub(super) async fn run(client: &Client, args: &UpArgs, mut project: Project) -> Result<ExitCode> {
    // What is on disk now, before saying so: an edit made once the line is
    // out is a change.
    let mut seen = stamps(&project);
    eprintln!("watching for changes (Ctrl-C to stop)");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(TICK) => {}
        }
        let now = stamps(&project);
        if now == seen {
            continue;
        }
        // Debounce: wait until the files are still for a tick.
        let mut settled = now;
        loop {
            tokio::time::sleep(TICK).await;
            let again = stamps(&project);
            if again == settled {
                break;
            }
            settled = again;
        }
        let mut changed: Vec<Watched> =
            settled.iter().zip(&seen).filter(|(a, b)| a != b).map(|(a, _)| a.0.clone()).collect();
        if settled.len() != seen.len() {
            changed.push(Watched::Project);
        }
        changed.sort();
        changed.dedup();
        seen = settled;
        if let Some(next) = redeploy(client, args, &project, &changed).await {
            project = next;
            seen = stamps(&project);
        }
    }
}

/// Redeploy what `changed` names; a new project when the template was read again.
async fn redeploy(client: &Client, args: &UpArgs, project: &Project, changed: &[Watched]) -> Option<Project> {
    if changed.contains(&Watched::Project) {
        eprintln!("project changed: bringing it up again");
        let result = match up::load(args) {
            Ok(next) => up::bring_up(client, &next, args).await.map(|_| next),
            Err(e) => Err(e),
        };
        return match result {
            Ok(next) => Some(next),
            Err(e) => {
                eprintln!("lambdabox: {e:#}\n(the functions keep what they had)");
                None
            }
        };
    }
    for id in changed.iter().filter_map(|w| match w {
        Watched::Function(id) => Some(id),
        Watched::Project => None,
    }) {
        let Some(spec) = project.functions.iter().find(|f| &f.logical_id == id) else { continue };
        let layers = match super::deploy::layers(client, project).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("lambdabox: {e:#}");
                continue;
            }
        };
        if let Err(e) = up::up_function(client, project, spec, &layers).await {
            eprintln!("lambdabox: {e:#}\n({id} keeps its old code)");
        }
    }
    None
}
