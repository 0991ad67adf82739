//! The pool's decisions, in-process over the recording fake backend and
//! tokio's paused clock: no Docker, no sleeps. A test plays the runtime
//! through each container's mailbox.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::backend::fake::{Call, FakeBackend, Op};
use crate::function::{Function, Runtime, DEFAULT_EPHEMERAL_MB};
use crate::logs::LogBook;
use crate::runtime_api::{Invocation, Outcome};

const IMAGE: &str = "lambdabox/python3.11:latest";

struct Harness {
    pool: Pool,
    fake: FakeBackend,
    _tmp: tempfile::TempDir,
}

fn harness(tune: impl FnOnce(&mut PoolConfig)) -> Harness {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = PoolConfig::for_tests(tmp.path());
    tune(&mut config);
    std::fs::create_dir_all(tmp.path().join("task")).unwrap();
    let logs = Arc::new(LogBook::open(&tmp.path().join("logs")).unwrap());
    let fake = FakeBackend::new();
    let pool = Pool::new(Arc::new(fake.clone()), config, logs);
    Harness { pool, fake, _tmp: tmp }
}

impl Harness {
    fn launch(&self, name: &str, memory_mb: u32) -> Launch {
        self.launch_of(Function {
            name: name.into(),
            revision_id: "r1".into(),
            memory_mb,
            timeout_s: 3,
            ephemeral_storage_mb: DEFAULT_EPHEMERAL_MB,
            ..Function::default()
        })
    }

    fn launch_of(&self, f: Function) -> Launch {
        Launch {
            function: Arc::new(f),
            runtime: Some(Runtime::find("python3.11").unwrap()),
            image: IMAGE.into(),
            task_dir: Some(self._tmp.path().join("task")),
            opt_dir: None,
        }
    }

    fn starts(&self) -> usize {
        self.fake.started().len()
    }

    /// Containers removed, each once, in the order first asked (a
    /// container's watcher asks again once it has stopped; that is harmless).
    fn removed(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for call in self.fake.calls() {
            if let Call::Remove(id) = call {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        out
    }
}

/// Play a runtime in `c`: poll for events and answer each with its payload.
fn runtime(c: &Arc<Container>) {
    let mailbox = c.mailbox.clone();
    tokio::spawn(async move {
        while let Some(event) = mailbox.next().await {
            let id = event.invocation.request_id.clone();
            mailbox.begin_answer(&id).unwrap();
            mailbox.complete(&id, Outcome::Response(event.invocation.payload)).unwrap();
        }
    });
}

/// One invocation through a lease, answered by the played runtime.
async fn invoke(lease: &Lease, id: &str) -> Outcome {
    let invocation = Invocation::for_tests(id, Duration::from_secs(3));
    let ticket = lease.container().mailbox.deliver(invocation).unwrap();
    ticket.outcome.await.unwrap()
}

/// What one Python function of `memory_mb` uses, for the prewarm pool.
fn uses(memory_mb: u32) -> Vec<PrewarmUse> {
    vec![PrewarmUse { image: IMAGE.into(), runtime: Runtime::find("python3.11").unwrap(), memory_mb, functions: 1 }]
}

/// Docker ids of the ready prewarmed containers.
fn prewarmed(h: &Harness) -> Vec<String> {
    h.pool.list().into_iter().filter(|c| c.state == "prewarmed").map(|c| c.docker_id).collect()
}

/// `n` concurrent first invocations of `name`, still holding their containers.
async fn burst(h: &Harness, name: &str, memory_mb: u32, n: usize) -> Vec<Lease> {
    let launch = h.launch(name, memory_mb);
    let leases = futures_util::future::join_all((0..n).map(|_| h.pool.acquire(&launch, Wait::Queue))).await;
    leases.into_iter().map(Result::unwrap).collect()
}

fn docker_ids(leases: &[Lease]) -> Vec<String> {
    leases.iter().map(|l| l.container().docker_id.clone()).collect()
}

/// Let spawned tasks (watchers, removals) run.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_cold_start_makes_one_container_and_the_next_call_reuses_it() {
    let h = harness(|_| {});
    let launch = h.launch("f", 256);
    let lease = h.pool.acquire(&launch, Wait::Queue).await.unwrap();
    runtime(lease.container());
    assert_eq!(invoke(&lease, "a").await, Outcome::Response(Bytes::from_static(b"{}")));
    let first = lease.container().docker_id.clone();
    lease.release();
    let spec = &h.fake.started()[0];
    assert_eq!(spec.memory_mb, 256);
    assert!(spec.env.contains(&"LAMBDABOX_SANDBOX_USER=993:993".to_owned()), "{:?}", spec.env);
    assert_eq!(spec.labels.get(labels::FUNCTION).map(String::as_str), Some("f"));

    let again = h.pool.acquire(&launch, Wait::Queue).await.unwrap();
    assert_eq!(again.container().docker_id, first, "the warm container serves again");
    assert_eq!(h.starts(), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_invocations_scale_out_one_container_each() {
    let h = harness(|_| {});
    let launch = h.launch("f", 128);
    let leases = futures_util::future::join_all((0..3).map(|_| h.pool.acquire(&launch, Wait::Queue))).await;
    let ids: std::collections::HashSet<String> =
        leases.iter().map(|l| l.as_ref().unwrap().container().docker_id.clone()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(h.starts(), 3);
}

/// A caller's whole invocation: acquire, play the runtime if the
/// container is new, invoke, release.
async fn call(pool: Pool, launch: Launch, id: String) -> String {
    let lease = pool.acquire(&launch, Wait::Queue).await.unwrap();
    if !lease.container().mailbox.is_ready() {
        runtime(lease.container());
    }
    assert_eq!(invoke(&lease, &id).await, Outcome::Response(Bytes::from_static(b"{}")));
    let docker_id = lease.container().docker_id.clone();
    lease.release();
    docker_id
}

#[tokio::test(start_paused = true)]
async fn a_burst_waits_behind_its_cold_starts_and_takes_the_first_free_container() {
    let h = harness(|c| c.start_limit = 2);
    h.fake.delay(Op::Start, Duration::from_millis(400));
    let launch = h.launch("f", 128);
    let calls = (0..6).map(|n| tokio::spawn(call(h.pool.clone(), launch.clone(), format!("r{n}"))));
    let served = futures_util::future::join_all(calls).await;
    let ids: std::collections::HashSet<String> = served.into_iter().map(Result::unwrap).collect();
    assert_eq!((ids.len(), h.starts()), (2, 2), "two starts served all six");
}

#[tokio::test(start_paused = true)]
async fn a_caller_behind_cold_starts_starts_its_own_once_they_settle_or_it_waited_enough() {
    let h = harness(|c| c.start_limit = 1);
    let launch = h.launch("f", 128);
    let first = h.pool.acquire(&launch, Wait::Queue).await.unwrap();
    let (pool, l) = (h.pool.clone(), launch.clone());
    let second = tokio::spawn(async move { pool.acquire(&l, Wait::Queue).await.unwrap() });
    tokio::time::sleep(BEHIND_STARTS_MAX - Duration::from_millis(100)).await;
    settle().await;
    assert_eq!(h.starts(), 1, "behind the first, whose runtime is not ready");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = second.await.unwrap();
    assert_eq!(h.starts(), 2, "waited long enough: its own");

    // A start that settles (ready, and ready as long as it took to start,
    // at least LIMIT_HOLD_MIN) lets the next go before its wait is over.
    let other = h.launch("g", 128);
    let asked = tokio::time::Instant::now();
    let third = h.pool.acquire(&other, Wait::Queue).await.unwrap();
    runtime(third.container());
    let (pool, l) = (h.pool.clone(), other.clone());
    let fourth = tokio::spawn(async move { pool.acquire(&l, Wait::Queue).await.unwrap() });
    let fourth = fourth.await.unwrap();
    assert_eq!(h.starts(), 4);
    assert!(!fourth.container().mailbox.is_ready(), "a new one");
    let waited = asked.elapsed();
    assert!(waited >= LIMIT_HOLD_MIN && waited < BEHIND_STARTS_MAX, "{waited:?}");
    drop((first, second, third, fourth));
}

#[tokio::test(start_paused = true)]
async fn reserved_concurrency_throttles_after_the_queue_timeout() {
    let h = harness(|c| c.queue_timeout = Duration::from_millis(250));
    let f = Function { reserved_concurrency: Some(1), ..(*h.launch("f", 128).function).clone() };
    let launch = h.launch_of(f);
    let _held = h.pool.acquire(&launch, Wait::Queue).await.unwrap();
    let asked = tokio::time::Instant::now();
    let second = h.pool.acquire(&launch, Wait::Queue).await;
    assert!(matches!(second, Err(PoolError::Throttled(Throttle::Reserved))), "{second:?}");
    assert_eq!(asked.elapsed(), Duration::from_millis(250), "it waited the queue timeout, no more");
    assert_eq!(h.starts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_queued_invocation_takes_the_container_given_back() {
    let h = harness(|c| c.queue_timeout = Duration::from_secs(5));
    let f = Function { reserved_concurrency: Some(1), ..(*h.launch("f", 128).function).clone() };
    let launch = h.launch_of(f);
    let held = h.pool.acquire(&launch, Wait::Queue).await.unwrap();
    let first = held.container().docker_id.clone();
    let pool = h.pool.clone();
    let waiting = tokio::spawn({
        let launch = launch.clone();
        async move { pool.acquire(&launch, Wait::Queue).await.map(|l| l.container().docker_id.clone()) }
    });
    settle().await;
    held.release();
    assert_eq!(waiting.await.unwrap().unwrap(), first);
    assert_eq!(h.starts(), 1);
}

/// A queued event never waits, and never takes a container a synchronous
/// caller is waiting for: callers come first.
#[tokio::test(start_paused = true)]
async fn queued_events_take_only_room_nobody_waits_for() {
    let h = harness(|c| c.queue_timeout = Duration::from_secs(5));
    let f = Function { reserved_concurrency: Some(1), ..(*h.launch("f", 128).function).clone() };
    let launch = h.launch_of(f);
    let held = h.pool.acquire(&launch, Wait::Never).await.unwrap();
    let asked = tokio::time::Instant::now();
    let refused = h.pool.acquire(&launch, Wait::Never).await;
    assert!(matches!(refused, Err(PoolError::Throttled(Throttle::Reserved))), "{refused:?}");
    assert_eq!(asked.elapsed(), Duration::ZERO, "turned away at once");

    let pool = h.pool.clone();
    let caller = tokio::spawn({
        let launch = launch.clone();
        async move { pool.acquire(&launch, Wait::Queue).await.map(|l| l.container().docker_id.clone()) }
    });
    settle().await;
    let first = held.container().docker_id.clone();
    held.release();
    // The container is idle for an instant; the waiting caller gets it, not the event.
    let event = h.pool.acquire(&launch, Wait::Never).await;
    assert!(event.is_err(), "a queued event took a container a caller waited for");
    assert_eq!(caller.await.unwrap().unwrap(), first);
    assert_eq!(h.starts(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_full_budget_evicts_the_least_recently_used_idle_container() {
    let h = harness(|c| c.memory_budget_mb = 256);
    let (a, b, c) = (h.launch("a", 128), h.launch("b", 128), h.launch("c", 128));
    let lease_a = h.pool.acquire(&a, Wait::Queue).await.unwrap();
    let id_a = lease_a.container().docker_id.clone();
    lease_a.release();
    tokio::time::advance(Duration::from_secs(1)).await;
    let lease_b = h.pool.acquire(&b, Wait::Queue).await.unwrap();
    lease_b.release();
    let _lease_c = h.pool.acquire(&c, Wait::Queue).await.unwrap();
    settle().await;
    assert_eq!(h.removed(), [id_a], "a was used least recently");
    let held = h.pool.acquire(&h.launch("d", 128), Wait::Queue).await;
    assert!(held.is_ok(), "b goes too when d needs room: {held:?}");
    let over = h.pool.acquire(&h.launch("e", 128), Wait::Queue).await;
    assert!(matches!(over, Err(PoolError::Throttled(Throttle::Budget))), "busy ones are never evicted");
}

#[tokio::test(start_paused = true)]
async fn an_update_retires_idle_containers_now_and_busy_ones_when_done() {
    let h = harness(|_| {});
    let launch = h.launch("f", 128);
    let (busy, idle) =
        (h.pool.acquire(&launch, Wait::Queue).await.unwrap(), h.pool.acquire(&launch, Wait::Queue).await.unwrap());
    let (busy_id, idle_id) = (busy.container().docker_id.clone(), idle.container().docker_id.clone());
    idle.release();
    h.pool.retire("f", Some("r2"));
    settle().await;
    assert_eq!(h.removed(), std::slice::from_ref(&idle_id));
    busy.release();
    settle().await;
    assert_eq!(h.removed(), [idle_id, busy_id]);
    let newer = h.launch_of(Function { revision_id: "r2".into(), ..(*launch.function).clone() });
    h.pool.acquire(&newer, Wait::Queue).await.unwrap();
    assert_eq!(h.starts(), 3, "the new revision gets a new container");
}

#[tokio::test(start_paused = true)]
async fn idle_containers_go_after_their_ttl() {
    let h = harness(|c| c.idle_ttl = Duration::from_secs(60));
    h.pool.start_maintenance();
    let lease = h.pool.acquire(&h.launch("f", 128), Wait::Queue).await.unwrap();
    runtime(lease.container());
    let id = lease.container().docker_id.clone();
    lease.release();
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert!(h.removed().is_empty());
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(h.removed(), [id]);
}

#[tokio::test(start_paused = true)]
async fn provisioned_containers_are_kept_ready_and_replaced() {
    let h = harness(|_| {});
    h.pool.start_maintenance();
    h.pool.set_provisioned(h.launch("f", 128), 2);
    settle().await;
    assert_eq!(h.starts(), 2);
    for spec in h.fake.started() {
        assert!(spec.env.contains(&"AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency".to_owned()));
    }
    assert_eq!(h.pool.provisioned_ready("f"), 0, "ready only once their runtimes poll");
    let containers: Vec<Arc<Container>> = h.pool.state().live_of("f");
    containers.iter().for_each(runtime);
    settle().await;
    assert_eq!(h.pool.provisioned_ready("f"), 2);

    h.fake.exit(&containers[0].docker_id, crate::backend::ExitInfo { code: 1, oom_killed: false });
    tokio::time::sleep(MAINTENANCE_TICK * 2).await;
    settle().await;
    assert_eq!(h.starts(), 3, "a provisioned container that died is replaced");
}

#[tokio::test(start_paused = true)]
async fn a_cold_start_specializes_a_prewarmed_container() {
    let h = harness(|c| {
        c.prewarm = 1;
        c.prestart = false;
    });
    h.pool.set_prewarm_images(uses(512));
    h.pool.start_maintenance();
    settle().await;
    let generic = h.fake.started().remove(0);
    assert!(generic.env.contains(&"LAMBDABOX_GENERIC=1".to_owned()), "{:?}", generic.env);
    assert!(!generic.env.iter().any(|e| e.starts_with("LAMBDABOX_PRESTART=")), "nothing started ahead");
    let generic_id = h.fake.running()[0].id.clone();

    let lease = h.pool.acquire(&h.launch("f", 512), Wait::Queue).await.unwrap();
    assert_eq!(lease.container().docker_id, generic_id, "no container was created for the function");
    assert_eq!(generic.cpu, Some(cpu::shares(prewarm::GENERIC_MEMORY_MB)), "a generic container weighs what it holds");
    let resized = Resources { memory_mb: Some(512), cpu: Some(cpu::shares(512)) };
    assert!(h.fake.calls().contains(&Call::Resize(generic_id.clone(), resized)), "memory and weight in one call");
    let told = lease.container().mailbox.specialization().await.unwrap();
    let s = lambdabox_protocol::Specialization::decode(&told[5..]).unwrap();
    assert!(s.env.iter().any(|(n, v)| n == b"AWS_LAMBDA_FUNCTION_NAME" && v == b"f"));
    assert!(!s.prestarted);
    tokio::time::sleep(MAINTENANCE_TICK * 2).await;
    settle().await;
    assert_eq!(h.starts(), 2, "the pool started a replacement generic");
}

#[tokio::test(start_paused = true)]
async fn a_runtime_started_ahead_is_handed_the_function_at_its_memory_size() {
    let h = harness(|c| c.prewarm = 1);
    h.pool.set_prewarm_images(uses(512));
    h.pool.start_maintenance();
    settle().await;
    let generic = h.fake.started().remove(0);
    let prestart = "LAMBDABOX_PRESTART=/var/runtime/prestart".to_owned();
    assert!(generic.env.contains(&prestart), "Python starts ahead of need: {:?}", generic.env);
    assert!(generic.env.contains(&"PYTHONPATH=/var/runtime".to_owned()), "with the runtime's neutral environment");
    assert!(!generic.env.iter().any(|e| e.starts_with("AWS_LAMBDA_FUNCTION")), "and nothing of a function");
    assert_eq!((generic.memory_mb, generic.cpu), (512, Some(cpu::shares(512))), "created at the size that takes it");
    let generic_id = h.fake.running()[0].id.clone();

    let other = h.pool.acquire(&h.launch("g", 256), Wait::Queue).await.unwrap();
    assert_ne!(other.container().docker_id, generic_id, "another size does not take it");
    let lease = h.pool.acquire(&h.launch("f", 512), Wait::Queue).await.unwrap();
    assert_eq!(lease.container().docker_id, generic_id);
    assert!(!h.fake.calls().iter().any(|c| matches!(c, Call::Resize(..))), "no resize: {:?}", h.fake.calls());
    let told = lease.container().mailbox.specialization().await.unwrap();
    let s = lambdabox_protocol::Specialization::decode(&told[5..]).unwrap();
    assert!(s.prestarted, "the function is handed to the runtime started ahead");
}

#[tokio::test(start_paused = true)]
async fn a_failed_start_gives_its_reservation_back() {
    let h = harness(|c| c.memory_budget_mb = 128);
    let launch = h.launch("f", 128);
    h.fake.fail(Op::Start, "engine says no");
    let failed = h.pool.acquire(&launch, Wait::Queue).await;
    assert!(matches!(failed, Err(PoolError::Backend(_))), "{failed:?}");
    h.fake.heal(Op::Start);
    let lease = h.pool.acquire(&launch, Wait::Queue).await;
    assert!(lease.is_ok(), "the failed start's memory was released: {lease:?}");
}

#[tokio::test(start_paused = true)]
async fn a_runtime_that_never_polls_is_capped_then_removed() {
    let h = harness(|c| c.cpu = CpuMode::Strict);
    let lease = h.pool.acquire(&h.launch("f", 256), Wait::Queue).await.unwrap();
    let c = lease.container().clone();
    let capped = |h: &Harness| h.fake.calls().iter().any(|call| matches!(call, Call::Resize(..)));
    tokio::time::sleep(INIT_CPU_BURST - Duration::from_millis(1)).await;
    assert!(!capped(&h), "uncapped during the burst");
    tokio::time::sleep(Duration::from_millis(2)).await;
    settle().await;
    let cap = Resources { memory_mb: None, cpu: Some(cpu::quota(256)) };
    assert!(h.fake.calls().contains(&Call::Resize(c.docker_id.clone(), cap)));
    tokio::time::sleep(INIT_TIMEOUT - INIT_CPU_BURST).await;
    settle().await;
    assert_eq!(h.removed(), std::slice::from_ref(&c.docker_id));
    assert!(c.mailbox.is_finished());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let lifted = Resources { memory_mb: None, cpu: Some(cpu::unlimited(cpus)) };
    assert!(h.fake.calls().contains(&Call::Resize(c.docker_id.clone(), lifted)), "the cap is lifted before the kill");
}

#[tokio::test(start_paused = true)]
async fn a_polling_runtime_is_capped_at_once_in_strict_mode() {
    let h = harness(|c| c.cpu = CpuMode::Strict);
    let lease = h.pool.acquire(&h.launch("f", 256), Wait::Queue).await.unwrap();
    assert_eq!(h.fake.started()[0].cpu, None, "init runs uncapped");
    runtime(lease.container());
    settle().await;
    let cap = Resources { memory_mb: None, cpu: Some(cpu::quota(256)) };
    assert!(h.fake.calls().contains(&Call::Resize(lease.container().docker_id.clone(), cap)));
    tokio::time::sleep(INIT_TIMEOUT * 2).await;
    assert!(h.removed().is_empty(), "an initialised runtime is kept");
}

#[tokio::test(start_paused = true)]
async fn by_default_a_container_is_weighted_from_its_creation_and_never_capped() {
    let h = harness(|_| {});
    let lease = h.pool.acquire(&h.launch("f", 256), Wait::Queue).await.unwrap();
    assert_eq!(h.fake.started()[0].cpu, Some(cpu::shares(256)));
    runtime(lease.container());
    settle().await;
    tokio::time::sleep(INIT_TIMEOUT * 2).await;
    assert!(!h.fake.calls().iter().any(|call| matches!(call, Call::Resize(..))), "{:?}", h.fake.calls());
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_a_container_being_created_and_removes_it() {
    let h = harness(|_| {});
    h.fake.delay(Op::Start, Duration::from_secs(1));
    let pool = h.pool.clone();
    let launch = h.launch("f", 128);
    let starting = tokio::spawn(async move { pool.acquire(&launch, Wait::Queue).await.map(drop) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.starts(), 1, "the create is under way");
    h.pool.shutdown().await;
    // The process exits once shutdown returns: nothing of the pool runs on.
    starting.abort();
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert!(h.fake.running().is_empty(), "created during shutdown, yet left behind: {:?}", h.fake.running());
}

#[tokio::test(start_paused = true)]
async fn start_up_does_not_wait_for_leftovers_to_be_removed() {
    let h = harness(|_| {});
    for i in 0..200 {
        h.fake.add_leftover(&format!("old{i}"), HashMap::from([(labels::HOME.to_owned(), "home".to_owned())]));
    }
    h.fake.hang(Op::Remove);
    let removal = h.pool.remove_leftovers().await.unwrap();
    let served = h.pool.acquire(&h.launch("f", 128), Wait::Queue).await.unwrap();
    assert_eq!(served.container().function, "f", "served while the engine is still deleting");
    assert!(!removal.is_finished());
    h.fake.heal(Op::Remove);
    removal.abort();
}

#[tokio::test(start_paused = true)]
async fn shutdown_removes_every_container_and_leftovers_are_cleared() {
    let h = harness(|_| {});
    h.fake.add_leftover("old1", HashMap::from([(labels::HOME.to_owned(), "home".to_owned())]));
    h.fake.add_leftover("other", HashMap::from([(labels::HOME.to_owned(), "elsewhere".to_owned())]));
    assert_eq!(h.pool.remove_leftovers().await.unwrap().await.unwrap(), 1);
    assert_eq!(h.removed(), ["old1"]);
    let busy = h.pool.acquire(&h.launch("f", 128), Wait::Queue).await.unwrap();
    let idle = h.pool.acquire(&h.launch("g", 128), Wait::Queue).await.unwrap();
    idle.release();
    h.pool.shutdown().await;
    assert!(h.fake.running().is_empty(), "{:?}", h.fake.running());
    drop(busy);
}

/// The pool grows after a burst of cold starts (one generic per cold start
/// it saw), a later burst takes them instead of creating containers, and
/// an idle TTL after the burst the pool is back at its floor.
#[tokio::test(start_paused = true)]
async fn a_burst_grows_the_prewarmed_pool_for_the_next_and_idleness_shrinks_it() {
    let h = harness(|c| {
        c.prewarm_max = 8;
        c.memory_budget_mb = 64 * 1024;
    });
    h.pool.set_prewarm_images(uses(128));
    h.pool.start_maintenance();
    settle().await;
    assert!(prewarmed(&h).is_empty(), "no floor: nothing before demand");
    drop(burst(&h, "f", 128, 5).await);
    assert_eq!(h.starts(), 5);
    tokio::time::sleep(demand::WINDOW).await;
    settle().await;
    let ready = prewarmed(&h);
    assert_eq!(ready.len(), 5, "one per cold start of the burst");
    let served = docker_ids(&burst(&h, "g", 128, 5).await);
    assert!(served.iter().all(|id| ready.contains(id)), "{served:?} from {ready:?}");
    assert_eq!(h.starts(), 10, "no container was created for the second burst");
    tokio::time::sleep(demand::WINDOW).await;
    settle().await;
    assert_eq!(prewarmed(&h).len(), 5, "refilled for a third");
    tokio::time::sleep(h.pool.config().idle_ttl).await;
    settle().await;
    assert!(prewarmed(&h).is_empty(), "back to the floor");
    assert!(ready.iter().chain(&served).all(|id| h.removed().contains(id)));
}

/// Spare generics count against the memory budget: the pool grows only
/// into room left, and gives it back as soon as function containers need it.
#[tokio::test(start_paused = true)]
async fn spare_prewarmed_containers_give_way_to_function_containers() {
    let h = harness(|c| {
        c.prewarm_max = 8;
        c.memory_budget_mb = 1024;
    });
    h.pool.set_prewarm_images(uses(128));
    h.pool.start_maintenance();
    let held = burst(&h, "f", 128, 6).await;
    held.iter().for_each(|l| runtime(l.container()));
    tokio::time::sleep(demand::WINDOW).await;
    settle().await;
    assert!(prewarmed(&h).is_empty(), "not while the burst's first invocations run");
    held.into_iter().for_each(Lease::release);
    tokio::time::sleep(MAINTENANCE_TICK * 2).await;
    settle().await;
    assert_eq!(prewarmed(&h).len(), 2, "the budget had room for 2 of the 6 (its containers stay warm)");
    let _big = h.pool.acquire(&h.launch("big", 256), Wait::Queue).await.unwrap();
    tokio::time::sleep(MAINTENANCE_TICK * 2).await;
    settle().await;
    assert!(prewarmed(&h).is_empty(), "both went for the 256 MB container");
}
