//! Prewarmed generic containers: started per runtime image before any
//! function needs them, so a cold invocation skips container creation.
//!
//! A generic container runs lambdabox-init in generic mode: it waits on the
//! Runtime API socket to be told what to run. Its `/var/task` and `/opt` are
//! bind mounts of empty per-container folders. When a function needs a new
//! container and its runtime has a generic one ready, the pool
//! *specializes* it: hard-links the function's code (and merged layers) into
//! those folders, sets its memory limit, and answers init with the bootstrap
//! and the function's environment. From then on it is that function's
//! container for life, like one started for it: one function, one revision,
//! never handed back to the generic set.
//!
//! What a generic container cannot take: container image functions (their
//! image is the runtime) and functions whose EphemeralStorage differs from
//! the default (`/tmp`'s size is fixed when a container is created).
//!
//! # Runtimes started ahead of need
//!
//! For runtimes that can ([`Prestart`]), init starts the language runtime
//! and its runtime client in the generic container at once, as the sandbox
//! user, with the [neutral environment](super::environment::neutral_environment):
//! a wrapper around the official client loads it and waits. A specialization
//! then hands that process the function's environment, and the client's
//! normal start imports the handler (the function's init phase). Only a
//! function the waiting runtime can honour exactly takes it
//! ([`hand_over`]); for any other, init kills it and starts the bootstrap
//! as before. Such generics are kept per MemorySize ([`PrewarmKey`]) and
//! created at that size: Node.js sizes V8's heap as it starts, and with the
//! runtime already running, changing the container's memory limit at
//! specialization (a Docker update, 10–20 ms) would be most of what is left
//! of a cold start. A generic never holds more memory than the function
//! that takes it.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::demand::Demand;
use super::{Launch, Sockets};
use crate::function::{Prestart, Runtime, DEFAULT_EPHEMERAL_MB};

/// A generic container's memory limit until it is specialized, when no
/// runtime is started in it ahead of need: init alone needs a few MB.
pub(super) const GENERIC_MEMORY_MB: u32 = 128;

/// A started generic container, not yet anyone's. Its `/var/task` and
/// `/opt` are [`task_dir`] and [`opt_dir`] of its socket folder.
#[derive(Debug)]
pub(super) struct Generic {
    pub sockets: Sockets,
    pub docker_id: String,
    /// Watches for its death while it waits; stopped when it is taken.
    pub watch: Option<JoinHandle<()>>,
    /// The runtime init started in it ahead of need, if any.
    pub prestart: Option<&'static Prestart>,
    /// Its memory limit (and the CPU weight that goes with it).
    pub memory_mb: u32,
}

/// Which generic containers are interchangeable: the image, and what runs
/// in it while it waits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct PrewarmKey {
    pub image: String,
    /// The runtime whose language runtime is started ahead of need, if any.
    pub prestarted: Option<&'static Runtime>,
    /// The MemorySize its runtime was started for, and the container's.
    pub memory_mb: Option<u32>,
}

impl PrewarmKey {
    /// The key of generics that can serve a function of `memory_mb` on
    /// `runtime` in `image`, with runtimes started ahead of need
    /// (`prestart`, where the runtime can) or not.
    pub fn new(image: String, runtime: Option<&'static Runtime>, memory_mb: u32, prestart: bool) -> PrewarmKey {
        let prestarted = runtime.filter(|r| prestart && r.prestart.is_some());
        let memory_mb = prestarted.map(|_| memory_mb);
        PrewarmKey { image, prestarted, memory_mb }
    }

    /// The memory limit its generics are created with.
    pub fn container_memory_mb(&self) -> u32 {
        self.memory_mb.unwrap_or(GENERIC_MEMORY_MB)
    }

    /// The key of generics that can become `launch`'s container.
    pub fn for_launch(launch: &Launch, prestart: bool) -> PrewarmKey {
        PrewarmKey::new(launch.image.clone(), launch.runtime, launch.function.memory_mb, prestart)
    }

    /// How its generics start the runtime ahead of need, if they do.
    pub fn prestart(&self) -> Option<&'static Prestart> {
        self.prestarted.and_then(|r| r.prestart)
    }

    /// What init runs ahead of need: the runtime's command, and the memory
    /// size when the runtime depends on it.
    pub fn prestart_command(&self) -> Option<String> {
        let p = self.prestart()?;
        let mut words: Vec<String> = p.command.iter().map(|w| (*w).to_owned()).collect();
        words.extend(self.memory_mb.filter(|_| p.memory_argument).map(|m| m.to_string()));
        Some(words.join(" "))
    }
}

/// The host folder mounted at a container's `/var/task` (generic ones only).
pub(super) fn task_dir(socket_dir: &Path) -> PathBuf {
    socket_dir.with_extension("task")
}

/// The host folder mounted at a container's `/opt` (generic ones only).
pub(super) fn opt_dir(socket_dir: &Path) -> PathBuf {
    socket_dir.with_extension("opt")
}

/// How many generics of one kind the pool keeps ready: at least `floor`
/// (`--prewarm`), more after bursts of cold starts up to `max`
/// (`--prewarm-max`), for as long as an idle container is kept (`idle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    pub floor: usize,
    pub max: usize,
    pub idle: Duration,
}

/// At most this many MemorySizes of one runtime have generics kept ready
/// (those with the most recent cold starts, then the most functions): a
/// runtime started ahead is kept per size, and twenty sizes in use must
/// not mean twenty sets of containers. Other sizes start fresh containers.
pub(super) const MAX_SIZES_PER_RUNTIME: usize = 3;

/// Demand-grown generics (beyond the floor) being created at once, at most:
/// the engine creates containers about as fast one after the other as all
/// at once, so a few at a time are ready sooner for the next burst.
pub(super) const MAX_GROWING: usize = 4;

/// How long a kind's cold starts must pause before its pool grows: after a
/// burst, not during it, when the engine is busy creating its containers.
pub(super) const GROW_AFTER: Duration = Duration::from_secs(1);

/// What [`Prewarm::plan`] decided: generics to start (claimed as starting)
/// and ready ones to remove (out of the books).
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub start: Vec<PrewarmKey>,
    pub remove: Vec<Generic>,
}

/// The generic containers of each kind: ready ones and how many are
/// starting, what functions use and the cold-start demand seen per kind.
#[derive(Debug, Default)]
pub(super) struct Prewarm {
    ready: HashMap<PrewarmKey, Vec<Generic>>,
    starting: HashMap<PrewarmKey, usize>,
    /// What functions use, with how many functions use each.
    uses: Vec<(PrewarmKey, usize)>,
    demand: HashMap<PrewarmKey, Demand>,
}

impl Prewarm {
    /// Keep generics of what functions use (each key with how many
    /// functions use it); returns generics of keys no longer used, to remove.
    pub fn set_uses(&mut self, uses: Vec<(PrewarmKey, usize)>) -> Vec<Generic> {
        self.uses = uses;
        self.demand.retain(|k, _| self.uses.iter().any(|(u, _)| u == k));
        let unused: Vec<PrewarmKey> = self.ready.keys().filter(|k| !self.is_used(k)).cloned().collect();
        unused.into_iter().flat_map(|k| self.ready.remove(&k).unwrap_or_default()).collect()
    }

    fn is_used(&self, key: &PrewarmKey) -> bool {
        self.uses.iter().any(|(k, _)| k == key)
    }

    /// Decide what to start and what to remove at `now`: each kept key
    /// ([`Prewarm::kept`]) gets its floor, and up to what its demand asks
    /// within the cap, the room left in the memory budget (`room_mb`: the
    /// budget less what function containers hold; every generic's memory
    /// counts against it too) and only when `grow` (no function container
    /// is being created and no cold start's first invocation is under way);
    /// ready generics beyond that are removed, and so
    /// are demand-grown ones while the budget is overdrawn, so a function's
    /// container never waits for memory a spare generic holds.
    pub fn plan(&mut self, now: Instant, limits: Limits, room_mb: i64, grow: bool) -> Plan {
        let mut plan = Plan::default();
        let kept = self.kept(now, limits);
        let dropped: Vec<PrewarmKey> = self.ready.keys().filter(|k| !kept.contains(k)).cloned().collect();
        for key in dropped {
            plan.remove.extend(self.ready.remove(&key).unwrap_or_default());
        }
        let mut room = room_mb - self.held_mb();
        // The least recently demanded give up their spares first.
        for key in kept.iter().rev() {
            let target = self.target(key, now, limits);
            let starting = self.starting_of(key);
            let list = self.ready.entry(key.clone()).or_default();
            while list.len() + starting > target || (room < 0 && list.len() + starting > limits.floor) {
                let Some(g) = list.pop() else { break };
                room += i64::from(g.memory_mb);
                plan.remove.push(g);
            }
        }
        let mut growing = self.starting().saturating_sub(self.floor_starts(&kept, limits));
        for key in &kept {
            let size = i64::from(key.container_memory_mb());
            let quiet = self.demand.get(key).and_then(Demand::last).is_none_or(|t| now.duration_since(t) >= GROW_AFTER);
            let target = self.target(key, now, limits);
            for have in self.ready_of(key) + self.starting_of(key)..target {
                let extra = have >= limits.floor;
                if extra && !(grow && quiet && growing < MAX_GROWING && room >= size) {
                    break;
                }
                growing += usize::from(extra);
                room -= size;
                *self.starting.entry(key.clone()).or_default() += 1;
                plan.start.push(key.clone());
            }
        }
        plan
    }

    /// How many generics of `key` to keep: its floor, or what its demand
    /// asks within the cap.
    fn target(&self, key: &PrewarmKey, now: Instant, limits: Limits) -> usize {
        let wanted = self.demand.get(key).map_or(0, |d| d.wanted(now, limits.idle)).min(limits.max);
        limits.floor.max(wanted)
    }

    /// The keys generics are kept of: every used key without a runtime
    /// started ahead, and of the per-size ones at most
    /// [`MAX_SIZES_PER_RUNTIME`] per runtime image, those whose cold starts
    /// are the most recent, then those the most functions use, then the
    /// smaller.
    fn kept(&self, now: Instant, limits: Limits) -> Vec<PrewarmKey> {
        let mut ranked: Vec<(PrewarmKey, usize)> = self.uses.clone();
        let recency =
            |k: &PrewarmKey| self.demand.get(k).filter(|d| d.wanted(now, limits.idle) > 0).and_then(Demand::last);
        ranked.sort_by_key(|(k, n)| (std::cmp::Reverse(recency(k)), std::cmp::Reverse(*n), k.memory_mb));
        let mut per_image: HashMap<(&str, Option<&'static str>), usize> = HashMap::new();
        let mut out = Vec::new();
        for (key, _) in &ranked {
            let taken = per_image.entry((&key.image, key.prestarted.map(|r| r.id))).or_default();
            if key.memory_mb.is_none() || *taken < MAX_SIZES_PER_RUNTIME {
                *taken += 1;
                out.push(key.clone());
            }
        }
        out
    }

    /// Starts under way that only bring kept keys up to their floor.
    fn floor_starts(&self, kept: &[PrewarmKey], limits: Limits) -> usize {
        kept.iter().map(|k| self.starting_of(k).min(limits.floor.saturating_sub(self.ready_of(k)))).sum()
    }

    fn ready_of(&self, key: &PrewarmKey) -> usize {
        self.ready.get(key).map_or(0, Vec::len)
    }

    fn starting_of(&self, key: &PrewarmKey) -> usize {
        self.starting.get(key).copied().unwrap_or(0)
    }

    /// The memory limits of every generic, ready or starting.
    fn held_mb(&self) -> i64 {
        let ready = self.ready.values().flatten().map(|g| i64::from(g.memory_mb));
        let starting = self.starting.iter().map(|(k, n)| i64::from(k.container_memory_mb()) * *n as i64);
        ready.chain(starting).sum()
    }

    /// A start finished (`Some`) or failed (`None`). Returns the generic if
    /// its key is no longer used.
    pub fn started(&mut self, key: &PrewarmKey, generic: Option<Generic>) -> Option<Generic> {
        if let Some(n) = self.starting.get_mut(key) {
            *n = n.saturating_sub(1);
        }
        let g = generic?;
        if !self.is_used(key) {
            return Some(g);
        }
        self.ready.entry(key.clone()).or_default().push(g);
        None
    }

    /// A cold start of `launch` at `now` (`on_demand`: for an invocation,
    /// which counts as demand for `key`): a ready generic of `key` that can
    /// become its container, if there is one.
    pub fn take(
        &mut self,
        launch: &Launch,
        key: &PrewarmKey,
        on_demand: bool,
        now: Instant,
        limits: Limits,
    ) -> Option<Generic> {
        if !eligible(launch) {
            return None;
        }
        if on_demand && self.is_used(key) {
            self.demand.entry(key.clone()).or_insert_with(|| Demand::new(now)).record(now, limits.max, limits.idle);
        }
        self.ready.get_mut(key)?.pop()
    }

    /// Forget a generic that died while waiting.
    pub fn forget(&mut self, key: &str) -> Option<Generic> {
        for list in self.ready.values_mut() {
            if let Some(at) = list.iter().position(|g| g.sockets.key == key) {
                return Some(list.swap_remove(at));
            }
        }
        None
    }

    /// How many generics are being started.
    pub fn starting(&self) -> usize {
        self.starting.values().sum()
    }

    /// Every ready generic, for shutdown.
    pub fn drain(&mut self) -> Vec<Generic> {
        self.ready.drain().flat_map(|(_, list)| list).collect()
    }

    /// Keys of ready generics by image, for `ps`.
    pub fn ready_keys(&self) -> Vec<(String, String, String, u32)> {
        let mut out: Vec<_> = self
            .ready
            .iter()
            .flat_map(|(key, list)| {
                list.iter().map(move |g| (g.sockets.key.clone(), g.docker_id.clone(), key.image.clone(), g.memory_mb))
            })
            .collect();
        out.sort();
        out
    }
}

/// Whether a generic container of `launch.image` can become its container.
pub(super) fn eligible(launch: &Launch) -> bool {
    launch.runtime.is_some()
        && launch.function.image.is_none()
        && launch.function.ephemeral_storage_mb == DEFAULT_EPHEMERAL_MB
}

/// Whether the runtime started ahead in a generic container (with the
/// `neutral` environment) can become `launch`'s, whose environment is `env`:
/// the function starts the runtime's own bootstrap (no exec wrapper or other
/// command) and sets no variable read at start to another value. Otherwise
/// it gets a fresh bootstrap, as without a runtime started ahead.
pub(super) fn hand_over(prestart: &Prestart, launch: &Launch, neutral: &[String], env: &[String]) -> bool {
    let own_bootstrap =
        launch.runtime.is_some_and(|r| launch.bootstrap().iter().map(String::as_str).eq(r.bootstrap.iter().copied()));
    own_bootstrap && prestart.honours(neutral, env)
}

/// What init is told to run: the bootstrap command and the function's
/// environment (`KEY=VALUE` strings), as a control-channel message; with
/// `prestarted`, init hands the environment to the runtime it started ahead
/// instead.
pub(super) fn specialization_message(
    bootstrap: &[String],
    env: &[String],
    prestarted: bool,
) -> Result<Bytes, lambdabox_protocol::DecodeError> {
    let s = lambdabox_protocol::Specialization {
        prestarted,
        bootstrap: bootstrap.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env: env
            .iter()
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (name.as_bytes().to_vec(), value.as_bytes().to_vec())
            })
            .collect(),
    };
    Ok(s.encode()?.into())
}

/// Make `dst` (an existing empty folder) hold the tree at `src`: folders
/// created, files hard-linked (copied when `src` is on another file system),
/// symlinks recreated. Blocking.
pub(super) fn link_tree(src: &Path, dst: &Path) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fs::create_dir(&to)?;
            fs::set_permissions(&to, fs::metadata(&from)?.permissions())?;
            link_tree(&from, &to)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    use crate::function::Function;
    use crate::logs::ContainerLog;
    use crate::runtime_api::Mailbox;

    fn generic(key: &str, dir: &Path) -> Generic {
        let sockets = Sockets {
            key: key.into(),
            dir: dir.join(key),
            mailbox: Arc::new(Mailbox::new()),
            log: Arc::new(ContainerLog::new()),
            server: tokio::spawn(async {}),
            remote: None,
        };
        Generic { sockets, docker_id: format!("docker-{key}"), watch: None, prestart: None, memory_mb: 128 }
    }

    fn launch(image: &str, f: Function) -> Launch {
        Launch {
            function: Arc::new(f),
            runtime: Some(Runtime::find("python3.11").unwrap()),
            image: image.into(),
            task_dir: Some("/tmp".into()),
            opt_dir: None,
        }
    }

    const BIG: i64 = 1 << 20;

    fn limits(floor: usize, max: usize) -> Limits {
        Limits { floor, max, idle: Duration::from_secs(60) }
    }

    fn images(keys: Vec<PrewarmKey>) -> Vec<String> {
        let mut v: Vec<String> = keys.into_iter().map(|k| k.image).collect();
        v.sort();
        v
    }

    fn keys(removed: &[Generic]) -> Vec<&str> {
        removed.iter().map(|g| g.sockets.key.as_str()).collect()
    }

    #[tokio::test]
    async fn books_keep_the_floor_per_kind() {
        let tmp = tempfile::tempdir().unwrap();
        let k = |image: &str| PrewarmKey::new(image.into(), None, 128, true);
        let (now, two) = (Instant::now(), limits(2, 2));
        let mut p = Prewarm::default();
        assert!(p.set_uses(vec![(k("py"), 1), (k("node"), 1)]).is_empty());
        assert_eq!(images(p.plan(now, two, BIG, true).start), ["node", "node", "py", "py"]);
        assert!(p.plan(now, two, BIG, true).start.is_empty(), "starts under way count");
        assert!(p.started(&k("py"), Some(generic("a", tmp.path()))).is_none());
        assert!(p.started(&k("py"), None).is_none(), "a failed start frees its claim");
        assert_eq!(images(p.plan(now, two, 0, false).start), ["py"], "the floor needs neither room nor calm");
        assert_eq!(p.starting(), 3);

        let f = Function { ephemeral_storage_mb: DEFAULT_EPHEMERAL_MB, ..Function::default() };
        assert!(p.take(&launch("node", f.clone()), &k("node"), true, now, two).is_none(), "none ready for node yet");
        let odd = Function { ephemeral_storage_mb: 1024, ..f.clone() };
        assert!(p.take(&launch("py", odd), &k("py"), true, now, two).is_none(), "a different /tmp size cannot use one");
        assert_eq!(p.take(&launch("py", f.clone()), &k("py"), true, now, two).unwrap().sockets.key, "a");
        assert!(p.take(&launch("py", f), &k("py"), true, now, two).is_none());

        assert!(p.started(&k("py"), Some(generic("b", tmp.path()))).is_none());
        assert_eq!(p.forget("b").unwrap().sockets.key, "b");
        assert!(p.started(&k("py"), Some(generic("c", tmp.path()))).is_none());
        let unwanted = p.set_uses(vec![(k("node"), 1)]);
        assert_eq!(keys(&unwanted), ["c"]);
        let late = p.started(&k("py"), Some(generic("d", tmp.path())));
        assert_eq!(
            late.unwrap().sockets.key,
            "d",
            "a start that finishes after its image went out of use is handed back"
        );
    }

    /// Ready generics for `key`: `n` of them, as finished starts.
    fn fill(p: &mut Prewarm, key: &PrewarmKey, dir: &Path, n: usize, tag: &str) {
        for i in 0..n {
            assert!(p.started(key, Some(generic(&format!("{tag}{i}"), dir))).is_none());
        }
    }

    #[tokio::test]
    async fn a_burst_grows_the_pool_after_it_within_cap_and_budget_and_idle_shrinks_it() {
        let tmp = tempfile::tempdir().unwrap();
        let key = PrewarmKey::new("py".into(), None, 128, true);
        let l = limits(1, 6);
        let t0 = Instant::now();
        let mut p = Prewarm::default();
        p.set_uses(vec![(key.clone(), 1)]);
        assert_eq!(p.plan(t0, l, BIG, true).start.len(), 1, "the floor");
        fill(&mut p, &key, tmp.path(), 1, "floor");
        let f = Function { ephemeral_storage_mb: DEFAULT_EPHEMERAL_MB, ..Function::default() };
        for _ in 0..10 {
            p.take(&launch("py", f.clone()), &key, true, t0, l);
        }
        assert_eq!(p.take(&launch("py", f.clone()), &key, false, t0, l).map(|g| g.sockets.key), None);
        let during = t0 + GROW_AFTER / 2;
        assert_eq!(p.plan(during, l, BIG, true).start.len(), 1, "during the burst: only the floor");
        let after = t0 + GROW_AFTER;
        assert!(p.plan(after, l, BIG, false).start.is_empty(), "nor while function containers are being created");
        assert_eq!(p.plan(after, l, 3 * 128, true).start.len(), 2, "as much as the budget has room for");
        assert_eq!(p.starting(), 3);
        assert_eq!(p.plan(after, l, BIG, true).start.len(), MAX_GROWING - 2, "a few at a time");
        let starting = p.starting();
        fill(&mut p, &key, tmp.path(), starting, "grown");
        assert_eq!(p.plan(after, l, BIG, true).start.len(), 1, "up to the cap, not the 10 of the burst");
        fill(&mut p, &key, tmp.path(), 1, "last");
        assert!(p.plan(after, l, BIG, true).start.is_empty());

        let overdrawn = p.plan(after, l, 6 * 128 - 300, true);
        assert_eq!(overdrawn.remove.len(), 3, "spares give memory back to function containers");
        assert!(overdrawn.start.is_empty());
        let idle = p.plan(after + l.idle, l, BIG, true);
        assert_eq!(idle.remove.len(), 2, "an idle period after the burst: back to the floor");
        assert!(p.plan(after + l.idle, l, -BIG, true).remove.is_empty(), "the floor is kept whatever the budget");
    }

    #[tokio::test]
    async fn only_a_few_sizes_of_a_runtime_are_kept_the_most_recently_demanded() {
        let tmp = tempfile::tempdir().unwrap();
        let python = Runtime::find("python3.11").unwrap();
        let at = |memory_mb: u32| PrewarmKey::new("py".into(), Some(python), memory_mb, true);
        let (t0, l) = (Instant::now(), limits(1, 1));
        let mut p = Prewarm::default();
        let sizes = [128, 256, 512, 1024, 2048];
        p.set_uses(sizes.iter().map(|m| (at(*m), if *m == 2048 { 5 } else { 1 })).collect());
        let mut started: Vec<u32> = p.plan(t0, l, BIG, true).start.iter().filter_map(|k| k.memory_mb).collect();
        started.sort();
        assert_eq!(started, [128, 256, 2048], "the most used, then the smallest");
        for m in started {
            fill(&mut p, &at(m), tmp.path(), 1, &m.to_string());
        }
        let f = Function { memory_mb: 1024, ephemeral_storage_mb: DEFAULT_EPHEMERAL_MB, ..Function::default() };
        let l1024 = Launch { runtime: Some(python), ..launch("py", f) };
        assert!(p.take(&l1024, &at(1024), true, t0, l).is_none());
        let plan = p.plan(t0 + GROW_AFTER, l, BIG, true);
        assert_eq!(plan.start.iter().map(|k| k.memory_mb).collect::<Vec<_>>(), [Some(1024)], "a cold start ranks it");
        assert_eq!(keys(&plan.remove), ["2560"], "the least recently demanded, least used size goes");
    }

    #[test]
    fn runtimes_started_per_memory_size_are_kept_per_size() {
        let node = Runtime::find("nodejs20.x").unwrap();
        let python = Runtime::find("python3.11").unwrap();
        let at = |runtime: &'static Runtime, memory_mb: u32, prestart: bool| {
            let f = Function { memory_mb, ..Function::default() };
            let l = Launch { runtime: Some(runtime), ..launch("img", f) };
            PrewarmKey::for_launch(&l, prestart)
        };
        assert_ne!(at(node, 128, true), at(node, 1769, true), "V8's heap is sized as node starts");
        assert_eq!(at(node, 1769, true).prestart_command().unwrap(), "/var/runtime/prestart 1769");
        assert_ne!(at(python, 128, true), at(python, 1769, true), "created at the function's size");
        assert_eq!(at(python, 1769, true).prestart_command().unwrap(), "/var/runtime/prestart");
        assert_eq!(at(python, 1769, true).container_memory_mb(), 1769);
        assert_eq!(at(node, 128, false), at(node, 1769, false), "nothing started ahead: one kind");
        assert_eq!(at(node, 1769, false).prestart_command(), None);
        assert_eq!(at(node, 1769, false).container_memory_mb(), GENERIC_MEMORY_MB, "resized when taken");
    }

    #[test]
    fn only_functions_the_waiting_runtime_can_honour_take_it() {
        use crate::pool::environment::{lambda_environment, neutral_environment};
        let runtime = Runtime::find("python3.11").unwrap();
        let prestart = runtime.prestart.unwrap();
        let neutral = neutral_environment(runtime);
        let decide = |vars: &[(&str, &str)]| {
            let f = Function {
                environment: vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                ..Function::default()
            };
            let l = launch("img", f);
            let env = lambda_environment(&l.function, l.runtime, &crate::arn::Realm::default(), "on-demand");
            hand_over(prestart, &l, &neutral, &env)
        };
        assert!(decide(&[]));
        assert!(decide(&[("TABLE", "orders"), ("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]), "read after the hand-over");
        assert!(decide(&[("LANG", "en_US.UTF-8")]), "the same value as the neutral one");
        for (name, value) in [
            ("PYTHONPATH", "/var/task/vendor"),
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("LD_PRELOAD", "/opt/lib/x.so"),
            ("LD_LIBRARY_PATH", "/opt/x"),
            ("LANG", "C"),
            ("LC_ALL", "C"),
            ("TZ", "Europe/Oslo"),
            ("HOME", "/tmp"),
            ("AWS_LAMBDA_EXEC_WRAPPER", "/opt/wrapper"),
        ] {
            assert!(!decide(&[(name, value)]), "{name} is read as the interpreter starts");
        }
        let node = Runtime::find("nodejs20.x").unwrap();
        let node_neutral = neutral_environment(node);
        for name in
            ["NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "NODE_PATH", "UV_THREADPOOL_SIZE", "AWS_LAMBDA_RUNTIME_VERBOSE"]
        {
            let mut env = node_neutral.clone();
            env.push(format!("{name}=x"));
            assert!(!node.prestart.unwrap().honours(&node_neutral, &env), "{name}");
        }
    }

    #[test]
    fn a_java_function_takes_the_waiting_jvm_unless_it_sets_the_jvms_options() {
        use crate::pool::environment::{lambda_environment, neutral_environment};
        for id in ["java17", "java21"] {
            let runtime = Runtime::find(id).unwrap();
            let neutral = neutral_environment(runtime);
            let decide = |vars: &[(&str, &str)]| {
                let f = Function {
                    environment: vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                    ..Function::default()
                };
                let l = Launch { runtime: Some(runtime), ..launch("img", f) };
                let env = lambda_environment(&l.function, l.runtime, &crate::arn::Realm::default(), "on-demand");
                hand_over(runtime.prestart.unwrap(), &l, &neutral, &env)
            };
            assert!(decide(&[]), "{id}");
            assert!(decide(&[("TABLE", "orders"), ("JAVA_HOME", "/x"), ("AWS_LAMBDA_LOG_FORMAT", "JSON")]), "{id}");
            for (name, value) in [
                ("JAVA_TOOL_OPTIONS", "-Xmx64m"),
                ("_JAVA_OPTIONS", "-Xss2m"),
                ("JDK_JAVA_OPTIONS", "--add-opens=java.base/java.lang=ALL-UNNAMED"),
                ("AWS_LAMBDA_EXEC_WRAPPER", "/opt/wrapper"),
                ("TZ", "Europe/Oslo"),
            ] {
                assert!(!decide(&[(name, value)]), "{id}: {name} is read as the JVM starts");
            }
        }
    }

    #[test]
    fn a_jvm_started_ahead_gets_its_memory_size() {
        let java = Runtime::find("java21").unwrap();
        let f = Function { memory_mb: 1024, ..Function::default() };
        let key = PrewarmKey::for_launch(&Launch { runtime: Some(java), ..launch("img", f) }, true);
        assert_eq!(key.prestart_command().unwrap(), "/var/runtime/prestart 1024", "the heap is sized from it");
        assert_eq!(key.container_memory_mb(), 1024);
        let small = PrewarmKey::new("img".into(), Some(java), 128, true);
        assert_ne!(key, small, "one kind per size");
    }

    #[test]
    fn specializations_carry_any_value_intact() {
        use lambdabox_protocol::Specialization;
        let env = ["A=1".to_owned(), "B=x=y".to_owned(), "C=".to_owned()];
        let message = specialization_message(&["/var/runtime/bootstrap".into()], &env, true).unwrap();
        let decoded = Specialization::decode(&message[5..]).unwrap();
        assert!(decoded.prestarted);
        assert_eq!(decoded.bootstrap, [b"/var/runtime/bootstrap".to_vec()]);
        let pairs: Vec<(&[u8], &[u8])> = decoded.env.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert_eq!(pairs, [(&b"A"[..], &b"1"[..]), (b"B", b"x=y"), (b"C", b"")]);
        assert!(
            specialization_message(&[], &["K=a\0AWS_REGION=x".into()], false).is_err(),
            "a NUL cannot split a value"
        );
    }

    #[test]
    fn trees_are_linked_not_copied() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
        fs::create_dir_all(src.join("pkg/sub")).unwrap();
        fs::write(src.join("app.py"), "x").unwrap();
        fs::write(src.join("pkg/sub/m.py"), "y").unwrap();
        std::os::unix::fs::symlink("app.py", src.join("link.py")).unwrap();
        fs::create_dir(&dst).unwrap();
        link_tree(&src, &dst).unwrap();
        assert_eq!(fs::read_to_string(dst.join("pkg/sub/m.py")).unwrap(), "y");
        assert_eq!(fs::metadata(dst.join("app.py")).unwrap().ino(), fs::metadata(src.join("app.py")).unwrap().ino());
        assert_eq!(fs::read_link(dst.join("link.py")).unwrap(), PathBuf::from("app.py"));
    }
}
