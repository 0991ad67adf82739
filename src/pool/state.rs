//! The pool's books, kept under one lock and free of I/O: which containers
//! live, which are idle, how much of the memory budget is spoken for, how
//! many invocations each function has in flight, and what provisioned
//! concurrency asks for. Every decision is made here; [`super::Pool`] carries
//! them out (starting and removing containers) outside the lock.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::time::Instant;

use super::{Container, ContainerInfo, Launch, Throttle};
use crate::function::Function;

#[derive(Debug, Default)]
pub(super) struct State {
    /// Every live container by key: starting, idle or busy.
    containers: HashMap<String, Arc<Container>>,
    /// Idle containers per slot ([`Function::slot`]: a function's version),
    /// most recently used last.
    idle: HashMap<String, Vec<Arc<Container>>>,
    /// MemorySize of live containers plus starts under way.
    memory_mb: u64,
    /// Invocations in flight per function, all versions together, which is
    /// what reserved concurrency bounds (leased containers, including those
    /// still starting).
    busy: HashMap<String, u32>,
    /// The revision each slot runs now; containers of any other are retired.
    current: HashMap<String, String>,
    /// Provisioned concurrency per slot: what to start, and how many to keep.
    provisioned: HashMap<String, (Launch, u32)>,
    /// Provisioned starts under way per slot.
    provisioning: HashMap<String, u32>,
    /// Cold starts per slot still holding back its other callers (from
    /// admission until [`super::Container::limiting`] ends, or the start
    /// fails). Bounded by [`super::PoolConfig::start_limit`]: see [`Admission::Behind`].
    limiting: HashMap<String, u32>,
    /// Set at shutdown: nothing goes back to the idle set.
    draining: bool,
}

/// The answer to "may this invocation have a container?". Each variant
/// carries the containers evicted to make room, for the caller to remove.
#[derive(Debug)]
pub(super) enum Admission {
    /// An idle container, now leased.
    Warm(Arc<Container>, Vec<Arc<Container>>),
    /// Room was reserved: start a new container.
    Start(Vec<Arc<Container>>),
    /// Over a limit: wait for room, or give up.
    Throttled(Throttle, Vec<Arc<Container>>),
    /// The function already has `start_limit` cold starts under way: wait
    /// for one of them to be ready (or an invocation to end) before starting
    /// more. More starts at once would not finish sooner on this machine,
    /// they would all finish later; and a fast function's first ready
    /// containers serve the rest of a burst long before those would have.
    Behind(Vec<Arc<Container>>),
}

impl State {
    /// Lease an idle container of `f`, or reserve room to start one (at
    /// most `start_limit` cold starts of it at once, `None`: any number).
    pub(super) fn admit(&mut self, f: &Function, budget_mb: u64, start_limit: Option<u32>) -> Admission {
        let current = self.current.entry(f.slot()).or_insert_with(|| f.pool_revision().to_owned()).clone();
        let mut stale = Vec::new();
        if let Some(c) = self.take_idle(f, &current, &mut stale) {
            c.busy.store(true, Ordering::Relaxed);
            *self.busy.entry(f.name.clone()).or_default() += 1;
            return Admission::Warm(c, stale);
        }
        let in_flight = self.busy.get(&f.name).copied().unwrap_or(0);
        if f.reserved_concurrency.is_some_and(|r| in_flight >= r) {
            return Admission::Throttled(Throttle::Reserved, stale);
        }
        let slot = f.slot();
        if start_limit.is_some_and(|limit| self.limiting.get(&slot).is_some_and(|n| *n >= limit)) {
            return Admission::Behind(stale);
        }
        match self.make_room(u64::from(f.memory_mb), budget_mb) {
            Some(mut evicted) => {
                evicted.append(&mut stale);
                self.memory_mb += u64::from(f.memory_mb);
                *self.busy.entry(f.name.clone()).or_default() += 1;
                *self.limiting.entry(slot).or_default() += 1;
                Admission::Start(evicted)
            }
            None => Admission::Throttled(Throttle::Budget, stale),
        }
    }

    /// Pop the most recently used idle container of `f`'s revision; idle
    /// containers of a retired revision found on the way are forgotten into `stale`.
    fn take_idle(&mut self, f: &Function, current: &str, stale: &mut Vec<Arc<Container>>) -> Option<Arc<Container>> {
        let list = self.idle.get_mut(&f.slot())?;
        let mut found = None;
        let mut keep = Vec::new();
        while let Some(c) = list.pop() {
            if c.revision == f.pool_revision() && c.mailbox.is_usable() {
                found = Some(c);
                break;
            }
            if c.revision == current && c.mailbox.is_usable() {
                keep.push(c);
            } else {
                stale.push(c);
            }
        }
        list.extend(keep.into_iter().rev());
        for c in stale.iter() {
            self.forget(&c.key);
        }
        found
    }

    /// Evict least recently used idle containers (never provisioned ones)
    /// until `need_mb` more fits in the budget; `None`, evicting nothing,
    /// when even evicting every candidate would not make it fit.
    fn make_room(&mut self, need_mb: u64, budget_mb: u64) -> Option<Vec<Arc<Container>>> {
        if self.memory_mb + need_mb <= budget_mb {
            return Some(Vec::new());
        }
        let mut candidates: Vec<Arc<Container>> =
            self.idle.values().flatten().filter(|c| !self.is_kept_provisioned(c)).cloned().collect();
        candidates.sort_by_key(|c| c.last_used());
        let mut freed = 0;
        let mut victims = Vec::new();
        for c in candidates {
            if self.memory_mb - freed + need_mb <= budget_mb {
                break;
            }
            freed += u64::from(c.memory_mb);
            victims.push(c);
        }
        if self.memory_mb - freed + need_mb > budget_mb {
            return None;
        }
        for c in &victims {
            self.forget(&c.key);
        }
        Some(victims)
    }

    /// Whether `c` is one of the provisioned containers its function still asks for.
    fn is_kept_provisioned(&self, c: &Container) -> bool {
        c.provisioned
            && self.provisioned.get(&c.slot).is_some_and(|(l, n)| *n > 0 && l.function.pool_revision() == c.revision)
    }

    /// A started container joins the books (its memory was reserved at admission).
    pub(super) fn register(&mut self, c: Arc<Container>) {
        if c.provisioned {
            if let Some(n) = self.provisioning.get_mut(&c.slot) {
                *n = n.saturating_sub(1);
            }
        }
        self.containers.insert(c.key.clone(), c);
    }

    /// A cold start of `slot` admitted by [`State::admit`] no longer holds
    /// back its function's other callers.
    pub(super) fn start_settled(&mut self, slot: &str) {
        if let Some(n) = self.limiting.get_mut(slot) {
            *n -= 1;
            if *n == 0 {
                self.limiting.remove(slot);
            }
        }
    }

    /// A start of `f` failed: return its reservation.
    pub(super) fn cancel_start(&mut self, f: &Function, leased: bool) {
        if leased {
            self.start_settled(&f.slot());
        }
        self.memory_mb = self.memory_mb.saturating_sub(u64::from(f.memory_mb));
        let counter = if leased { self.busy.get_mut(&f.name) } else { self.provisioning.get_mut(&f.slot()) };
        if let Some(n) = counter {
            *n = n.saturating_sub(1);
        }
    }

    /// A container comes back from an invocation (or from a provisioned
    /// start). It goes idle if `reusable` and still current; otherwise it is
    /// forgotten and returned for the caller to remove.
    pub(super) fn give_back(&mut self, c: &Arc<Container>, reusable: bool) -> Option<Arc<Container>> {
        if c.busy.swap(false, Ordering::Relaxed) {
            if let Some(n) = self.busy.get_mut(&c.function) {
                *n = n.saturating_sub(1);
            }
        }
        let current = self.current.get(&c.slot).is_some_and(|r| *r == c.revision);
        if reusable && current && !self.draining && self.containers.contains_key(&c.key) {
            c.touch();
            self.idle.entry(c.slot.clone()).or_default().push(c.clone());
            return None;
        }
        // None when it is already out of the books: whoever took it out
        // (its watcher, an init timeout, shutdown) also removed it.
        self.forget(&c.key)
    }

    /// Drop a container from the books, freeing its memory. Idempotent.
    pub(super) fn forget(&mut self, key: &str) -> Option<Arc<Container>> {
        let c = self.containers.remove(key)?;
        self.memory_mb = self.memory_mb.saturating_sub(u64::from(c.memory_mb));
        if let Some(list) = self.idle.get_mut(&c.slot) {
            list.retain(|x| x.key != key);
        }
        Some(c)
    }

    /// `slot` has a new revision (or is gone): forget its idle
    /// containers and its provisioned target (the engine sets a new one).
    pub(super) fn retire(&mut self, slot: &str, revision: Option<&str>) -> Vec<Arc<Container>> {
        match revision {
            Some(r) => self.current.insert(slot.to_owned(), r.to_owned()),
            None => self.current.remove(slot),
        };
        self.provisioned.remove(slot);
        let idle = self.idle.remove(slot).unwrap_or_default();
        idle.iter().filter_map(|c| self.forget(&c.key)).collect()
    }

    pub(super) fn set_provisioned(&mut self, launch: Launch, count: u32) {
        let name = launch.function.slot();
        self.current.entry(name.clone()).or_insert_with(|| launch.function.pool_revision().to_owned());
        if count == 0 {
            self.provisioned.remove(&name);
        } else {
            self.provisioned.insert(name, (launch, count));
        }
    }

    /// Every live container of `function`, for tests.
    #[cfg(test)]
    pub(super) fn live_of(&self, function: &str) -> Vec<Arc<Container>> {
        let mut out: Vec<_> = self.containers.values().filter(|c| c.function == function).cloned().collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    pub(super) fn provisioned_ready(&self, slot: &str) -> u32 {
        let ready = self.containers_of(slot).filter(|c| self.is_kept_provisioned(c) && c.mailbox.is_ready());
        ready.count() as u32
    }

    pub(super) fn containers_of<'a>(&'a self, slot: &'a str) -> impl Iterator<Item = &'a Arc<Container>> + 'a {
        self.containers.values().filter(move |c| c.slot == slot)
    }

    /// Idle containers past their TTL (and provisioned ones no longer asked
    /// for) to remove, and provisioned containers to start.
    pub(super) fn maintenance(&mut self, now: Instant, budget_mb: u64) -> (Vec<Arc<Container>>, Vec<Launch>) {
        let mut expired_keys = Vec::new();
        for (slot, list) in &self.idle {
            let mut kept_provisioned = 0;
            let wanted = self.provisioned.get(slot).map_or(0, |(_, n)| *n);
            for c in list.iter().rev() {
                let kept = self.is_kept_provisioned(c);
                if kept && kept_provisioned < wanted {
                    kept_provisioned += 1;
                    continue;
                }
                // Provisioned beyond what is asked for, or idle past the TTL.
                if kept || now.saturating_duration_since(c.last_used()) >= c.idle_ttl {
                    expired_keys.push(c.key.clone());
                }
            }
        }
        let expired = expired_keys.iter().filter_map(|k| self.forget(k)).collect();
        let mut to_start = Vec::new();
        if !self.draining {
            let targets: Vec<(Launch, u32)> = self.provisioned.values().cloned().collect();
            for (launch, wanted) in targets {
                let f = &launch.function;
                let slot = f.slot();
                let live = self.containers_of(&slot).filter(|c| self.is_kept_provisioned(c)).count() as u32;
                let starting = self.provisioning.get(&slot).copied().unwrap_or(0);
                for _ in live + starting..wanted {
                    if self.memory_mb + u64::from(f.memory_mb) > budget_mb {
                        break;
                    }
                    self.memory_mb += u64::from(f.memory_mb);
                    *self.provisioning.entry(slot.clone()).or_default() += 1;
                    to_start.push(launch.clone());
                }
            }
        }
        (expired, to_start)
    }

    /// For `lambdabox ps`, ordered by function then age.
    pub(super) fn list(&self, now: Instant) -> Vec<ContainerInfo> {
        let mut out: Vec<ContainerInfo> = self
            .containers
            .values()
            .map(|c| {
                let busy = c.busy.load(Ordering::Relaxed);
                let state = if !c.mailbox.is_ready() {
                    "starting"
                } else if busy {
                    "busy"
                } else {
                    "idle"
                };
                let idle_ms = if busy { 0 } else { now.saturating_duration_since(c.last_used()).as_millis() as u64 };
                ContainerInfo {
                    container: c.key.clone(),
                    docker_id: c.docker_id.clone(),
                    function: c.slot.clone(),
                    revision: c.revision.clone(),
                    state,
                    provisioned: c.provisioned,
                    memory_mb: c.memory_mb,
                    age_ms: now.saturating_duration_since(c.started).as_millis() as u64,
                    idle_ms,
                    invocations: c.invocations(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.function.cmp(&b.function).then(b.age_ms.cmp(&a.age_ms)));
        out
    }

    pub(super) fn docker_ids(&self) -> Vec<String> {
        self.containers.values().map(|c| c.docker_id.clone()).collect()
    }

    /// Shutdown: take every container out of the books.
    pub(super) fn drain(&mut self) -> Vec<Arc<Container>> {
        self.draining = true;
        self.idle.clear();
        self.memory_mb = 0;
        self.containers.drain().map(|(_, c)| c).collect()
    }

    /// MemorySize held by live containers and starts under way.
    pub(super) fn memory_mb(&self) -> u64 {
        self.memory_mb
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::runtime_api::{ExitReason, Mailbox};

    fn function(name: &str, memory_mb: u32, reserved: Option<u32>) -> Function {
        Function {
            name: name.into(),
            memory_mb,
            revision_id: "r1".into(),
            reserved_concurrency: reserved,
            ..Default::default()
        }
    }

    fn container(key: &str, f: &Function, provisioned: bool) -> Arc<Container> {
        Arc::new(Container {
            key: key.into(),
            docker_id: format!("docker-{key}"),
            function: f.name.clone(),
            slot: f.slot(),
            revision: f.pool_revision().to_owned(),
            memory_mb: f.memory_mb,
            provisioned,
            mailbox: Arc::new(Mailbox::new()),
            log: Arc::new(crate::logs::ContainerLog::new()),
            started: Instant::now(),
            idle_ttl: Duration::from_secs(60),
            invocations: AtomicU64::new(0),
            last_used: Mutex::new(Instant::now()),
            busy: AtomicBool::new(!provisioned),
            cold: AtomicBool::new(false),
            limiting: AtomicBool::new(false),
            server: tokio::spawn(async {}),
            cpu: super::super::CpuClock(None),
        })
    }

    /// Admit and, when told to start, register a container as the pool would.
    fn run(state: &mut State, f: &Function, key: &str, budget: u64) -> Result<(Arc<Container>, Vec<String>), Throttle> {
        match state.admit(f, budget, None) {
            Admission::Warm(c, evicted) => Ok((c, evicted.iter().map(|c| c.key.clone()).collect())),
            Admission::Start(evicted) => {
                let c = container(key, f, false);
                state.register(c.clone());
                Ok((c, evicted.iter().map(|c| c.key.clone()).collect()))
            }
            Admission::Throttled(t, _) => Err(t),
            Admission::Behind(_) => unreachable!("no start limit here"),
        }
    }

    #[tokio::test]
    async fn warm_containers_are_reused_one_invocation_at_a_time() {
        let mut s = State::default();
        let f = function("a", 128, None);
        let (first, _) = run(&mut s, &f, "c1", 1024).unwrap();
        let (second, _) = run(&mut s, &f, "c2", 1024).unwrap();
        assert_ne!(first.key, second.key, "a busy container is never shared");
        assert!(s.give_back(&first, true).is_none());
        let (third, _) = run(&mut s, &f, "c3", 1024).unwrap();
        assert_eq!(third.key, "c1", "the idle one is reused");
        assert_eq!(s.memory_mb(), 256);
    }

    #[tokio::test]
    async fn reserved_concurrency_caps_in_flight_invocations() {
        let mut s = State::default();
        let f = function("a", 128, Some(2));
        let (c1, _) = run(&mut s, &f, "c1", 4096).unwrap();
        run(&mut s, &f, "c2", 4096).unwrap();
        assert_eq!(run(&mut s, &f, "c3", 4096).unwrap_err(), Throttle::Reserved);
        s.give_back(&c1, true);
        assert_eq!(run(&mut s, &f, "c3", 4096).unwrap().0.key, "c1");
        let zero = function("z", 128, Some(0));
        assert_eq!(run(&mut s, &zero, "z1", 4096).unwrap_err(), Throttle::Reserved, "0 throttles everything");
    }

    #[tokio::test]
    async fn budget_evicts_least_recently_used_idle_container() {
        let mut s = State::default();
        let (a, b, c) = (function("a", 128, None), function("b", 128, None), function("c", 128, None));
        let (ca, _) = run(&mut s, &a, "ca", 256).unwrap();
        let (cb, _) = run(&mut s, &b, "cb", 256).unwrap();
        assert_eq!(run(&mut s, &c, "cc", 256).unwrap_err(), Throttle::Budget, "both busy: nothing to evict");
        s.give_back(&ca, true);
        std::thread::sleep(Duration::from_millis(2));
        s.give_back(&cb, true);
        let (_, evicted) = run(&mut s, &c, "cc", 256).unwrap();
        assert_eq!(evicted, ["ca"], "the least recently used goes first");
        assert_eq!(s.memory_mb(), 256);
        let big = function("big", 512, None);
        assert_eq!(run(&mut s, &big, "x", 256).unwrap_err(), Throttle::Budget);
        assert_eq!(s.memory_mb(), 256, "a hopeless admission evicts nothing");
    }

    #[tokio::test]
    async fn retired_revisions_never_serve_again() {
        let mut s = State::default();
        let f = function("a", 128, None);
        let (busy, _) = run(&mut s, &f, "busy", 1024).unwrap();
        let (idle, _) = run(&mut s, &f, "idle", 1024).unwrap();
        s.give_back(&idle, true);
        let retired = s.retire("a", Some("r2"));
        assert_eq!(retired.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["idle"]);
        assert!(s.give_back(&busy, true).is_some(), "a busy container of the old revision is retired when it finishes");
        assert_eq!(s.memory_mb(), 0);
    }

    #[tokio::test]
    async fn dead_or_failed_containers_are_not_reused() {
        let mut s = State::default();
        let f = function("a", 128, None);
        let (c, _) = run(&mut s, &f, "c1", 1024).unwrap();
        c.mailbox.exited(ExitReason::Code(1));
        assert!(s.give_back(&c, c.mailbox.is_usable()).is_some());
        assert!(s.forget("c1").is_none(), "already forgotten");
        assert_eq!(s.memory_mb(), 0);
    }

    #[tokio::test]
    async fn idle_containers_expire_but_provisioned_ones_stay() {
        let mut s = State::default();
        let f = function("a", 128, None);
        let launch = Launch {
            function: Arc::new(f.clone()),
            runtime: Some(crate::function::Runtime::find("python3.11").unwrap()),
            image: "img".into(),
            task_dir: Some("/tmp".into()),
            opt_dir: None,
        };
        s.set_provisioned(launch, 2);
        let (expired, to_start) = s.maintenance(Instant::now(), 1024);
        assert!(expired.is_empty());
        assert_eq!(to_start.len(), 2, "two provisioned containers to start");
        assert_eq!(s.maintenance(Instant::now(), 1024).1.len(), 0, "starts under way count");
        for key in ["p1", "p2"] {
            let p = container(key, &f, true);
            s.register(p.clone());
            assert!(s.give_back(&p, true).is_none());
        }
        let (od, _) = run(&mut s, &f, "ondemand", 1024).unwrap();
        assert!(["p1", "p2"].contains(&od.key.as_str()), "provisioned containers serve traffic");
        let (extra, _) = run(&mut s, &f, "ondemand", 1024).unwrap();
        let (third, _) = run(&mut s, &f, "ondemand", 1024).unwrap();
        assert_eq!(third.key, "ondemand");
        for c in [&od, &extra, &third] {
            s.give_back(c, true);
        }
        let later = Instant::now() + Duration::from_secs(61);
        let (expired, to_start) = s.maintenance(later, 1024);
        assert_eq!(expired.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(), ["ondemand"]);
        assert!(to_start.is_empty());
        assert_eq!(s.memory_mb(), 256);
    }
}
