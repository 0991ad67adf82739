//! How many of each function's queued events run at once.
//!
//! Two limits, both about leaving room for callers:
//!
//! - **A window per function**, grown by one on every run and halved on
//!   every refusal for want of capacity, within the function's cap
//!   ([`super::QueueConfig::per_function`] or its reserved concurrency): a
//!   backlog does not flood the pool with runs it has no room for.
//! - **A CPU budget while callers are being answered.** The runs of a
//!   CPU-heavy function take the CPUs the controller needs to accept events
//!   and answer synchronous calls (on two cores, eight echo runs at once
//!   halved the rate events were accepted at and tripled the 202's p99).
//!   Each run's container CPU time against its wall time gives the
//!   function's *share*, the CPUs one of its runs uses (the most a recent
//!   run used, see [`SHARE_DECAY`]); while callers are
//!   being answered, runs start only while the shares of everything running
//!   fit in the budget (a third of the CPUs), or the function's own runs fit in
//!   its fair part of it. A function that mostly waits (on I/O, a timer,
//!   another service) has a share near zero and keeps its whole window;
//!   every function with due events may run one at any time, so none is
//!   starved; and once callers are quiet, the windows alone apply.

use std::collections::{HashMap, VecDeque};

use crate::engine::RunCost;

/// What a function's share keeps of itself per run when runs show less:
/// the estimate is the most a recent run used. A run slowed by a busy box
/// shows less CPU than the function would use, and that must not let more
/// of its runs in just when the box is busiest.
const SHARE_DECAY: f64 = 0.9;

/// The books of every function that had events this run (a few words
/// each).
#[derive(Debug)]
pub(super) struct Pace {
    windows: HashMap<String, Window>,
    /// CPUs the running events are estimated to use: the sum of their
    /// [`Slot`]s' charges.
    charged: f64,
    /// Most CPUs the running events may be charged for while callers are
    /// being answered.
    budget: f64,
    /// Functions with events running.
    active: usize,
    /// The CPUs of this box: no share is larger.
    cpus: f64,
}

#[derive(Debug)]
struct Window {
    running: usize,
    limit: usize,
    /// Due events waiting for a slot, oldest first.
    parked: VecDeque<i64>,
    /// The CPUs one run uses, once a run was measured.
    share: Option<f64>,
}

impl Default for Window {
    fn default() -> Window {
        Window { running: 0, limit: 1, parked: VecDeque::new(), share: None }
    }
}

/// One running event's place in its function's window, and what it was
/// charged of the budget. Given back through [`Pace::give_back`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Slot {
    charge: f64,
}

/// How an attempt ended, as the window sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The function ran, or the event left the queue: room was found.
    Ran,
    /// Turned away for want of capacity.
    Refused,
    /// Neither (the event waits for a retry without having run).
    Neither,
}

impl Pace {
    pub fn new(cpus: usize) -> Pace {
        let cpus = cpus.max(1) as f64;
        Pace { windows: HashMap::new(), charged: 0.0, budget: cpus / 3.0, active: 0, cpus }
    }

    /// A slot for event `id` of `function` now, or `None` with the event
    /// parked until one of the function's runs ends. `callers` says whether
    /// callers are being answered (the budget applies).
    pub fn take(&mut self, function: &str, id: i64, callers: bool) -> Option<Slot> {
        let window = self.windows.entry(function.to_owned()).or_default();
        let charge = window.share.unwrap_or(0.0);
        // Within the budget, or within this function's fair part of it
        // (what a CPU-heavy function's first run took from the budget
        // does not stop one that mostly waits).
        let own = (window.running + 1) as f64 * charge;
        let fits = window.running == 0
            || !callers
            || self.charged + charge <= self.budget
            || own <= self.budget / self.active.max(1) as f64;
        if window.running >= window.limit || !fits {
            window.parked.push_back(id);
            return None;
        }
        if window.running == 0 {
            self.active += 1;
        }
        window.running += 1;
        self.charged += charge;
        Some(Slot { charge })
    }

    /// Give back `function`'s `slot`: learn from how the run went (`cap`:
    /// the most of its events that may run at once, `cost`: what the run
    /// used, if measured). Returns the parked events that may try again now.
    pub fn give_back(
        &mut self,
        function: &str,
        slot: Slot,
        outcome: Outcome,
        cost: Option<RunCost>,
        cap: usize,
    ) -> Vec<i64> {
        self.charged = (self.charged - slot.charge).max(0.0);
        let cpus = self.cpus;
        let window = self.windows.entry(function.to_owned()).or_default();
        window.running = window.running.saturating_sub(1);
        if window.running == 0 {
            self.active = self.active.saturating_sub(1);
        }
        match outcome {
            Outcome::Ran => window.limit = (window.limit + 1).min(cap.max(1)),
            Outcome::Refused => window.limit = (window.limit / 2).max(1),
            Outcome::Neither => {}
        }
        if let Some(share) = cost.and_then(|c| share_of(c, cpus)) {
            window.share = Some(window.share.map_or(share, |s| share.max(s * SHARE_DECAY)));
        }
        let free = window.limit.saturating_sub(window.running);
        let n = free.min(window.parked.len());
        window.parked.drain(..n).collect()
    }
}

/// The CPUs a run used on average: its CPU time over its wall time, at
/// most the box's. `None` for a run too short to say.
fn share_of(cost: RunCost, cpus: f64) -> Option<f64> {
    let wall = cost.wall.as_secs_f64();
    (wall >= 20e-6).then(|| (cost.cpu.as_secs_f64() / wall).min(cpus))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn cost(cpu_us: u64, wall_us: u64) -> Option<RunCost> {
        Some(RunCost { cpu: Duration::from_micros(cpu_us), wall: Duration::from_micros(wall_us) })
    }

    /// Take slots for `function` until one is refused; how many were given.
    fn fill(pace: &mut Pace, function: &str, callers: bool) -> Vec<Slot> {
        let mut slots = Vec::new();
        for id in 0.. {
            match pace.take(function, id, callers) {
                Some(slot) => slots.push(slot),
                None => break,
            }
        }
        slots
    }

    /// Grow `function`'s window to `cap`, each run measured as `cost`.
    fn warm(pace: &mut Pace, function: &str, c: Option<RunCost>, cap: usize) {
        for _ in 0..cap * 2 {
            let slot = pace.take(function, -1, false).expect("quiet: the window alone applies");
            pace.give_back(function, slot, Outcome::Ran, c, cap);
        }
        pace.windows.get_mut(function).unwrap().parked.clear();
    }

    #[test]
    fn the_window_grows_by_one_per_run_and_halves_on_a_refusal() {
        let mut pace = Pace::new(2);
        let first = pace.take("f", 1, false).unwrap();
        assert!(pace.take("f", 2, false).is_none(), "a new function starts with one");
        assert_eq!(pace.give_back("f", first, Outcome::Ran, None, 8), vec![2]);
        let slots = fill(&mut pace, "f", false);
        assert_eq!(slots.len(), 2);
        for slot in slots {
            pace.give_back("f", slot, Outcome::Ran, None, 3);
        }
        assert_eq!(fill(&mut pace, "f", false).len(), 3, "at most the cap");
        let mut pace = Pace::new(2);
        warm(&mut pace, "f", None, 8);
        let slots = fill(&mut pace, "f", false);
        assert_eq!(slots.len(), 8);
        let mut slots = slots.into_iter();
        pace.give_back("f", slots.next().unwrap(), Outcome::Refused, None, 8);
        for slot in slots {
            pace.give_back("f", slot, Outcome::Neither, None, 8);
        }
        assert_eq!(fill(&mut pace, "f", false).len(), 4);
    }

    #[test]
    fn while_callers_wait_cpu_heavy_runs_share_a_third_of_the_cpus() {
        let mut pace = Pace::new(6);
        // Each run keeps 0.45 of a CPU busy (an echo on a busy box).
        warm(&mut pace, "echo", cost(450, 1000), 8);
        assert_eq!(fill(&mut pace, "echo", true).len(), 4, "1.8 of the budget's 2.0");
        let mut quiet = Pace::new(6);
        warm(&mut quiet, "echo", cost(450, 1000), 8);
        assert_eq!(fill(&mut quiet, "echo", false).len(), 8, "callers quiet: the window alone");
    }

    #[test]
    fn a_function_that_waits_keeps_its_window_beside_a_cpu_heavy_one() {
        let mut pace = Pace::new(2);
        warm(&mut pace, "spin", cost(1_000_000, 1_000_000), 8);
        warm(&mut pace, "sleep", cost(2_000, 1_000_000), 8);
        assert_eq!(fill(&mut pace, "spin", true).len(), 1, "one always runs");
        assert_eq!(fill(&mut pace, "sleep", true).len(), 8, "0.002 CPUs each");
        let mut pace = Pace::new(2);
        warm(&mut pace, "spin", cost(1_000_000, 1_000_000), 8);
        warm(&mut pace, "other", cost(1_000_000, 1_000_000), 8);
        assert_eq!(fill(&mut pace, "spin", true).len(), 1);
        assert_eq!(fill(&mut pace, "other", true).len(), 1, "every function with due events runs one");
    }

    #[test]
    fn a_slot_given_back_frees_its_charge_and_unparks_what_fits() {
        let mut pace = Pace::new(2);
        warm(&mut pace, "spin", cost(600_000, 1_000_000), 8);
        let a = pace.take("spin", 1, true).unwrap();
        assert!(pace.take("spin", 2, true).is_none(), "1.2 CPUs would be over the budget");
        assert!(pace.take("spin", 3, true).is_none());
        assert_eq!(pace.give_back("spin", a, Outcome::Ran, cost(600_000, 1_000_000), 8), vec![2, 3]);
        assert_eq!(pace.charged, 0.0);
        assert!(pace.take("spin", 2, true).is_some());
    }

    #[test]
    fn the_share_follows_the_runs_and_ignores_the_unmeasurable() {
        assert_eq!(share_of(RunCost { cpu: Duration::from_millis(3), wall: Duration::from_millis(1) }, 2.0), Some(2.0));
        assert_eq!(share_of(RunCost { cpu: Duration::ZERO, wall: Duration::from_micros(5) }, 2.0), None);
        let mut pace = Pace::new(2);
        warm(&mut pace, "f", cost(0, 1000), 4);
        for _ in 0..40 {
            let slot = pace.take("f", 0, false).unwrap();
            pace.give_back("f", slot, Outcome::Ran, cost(1000, 1000), 4);
        }
        assert_eq!(pace.windows["f"].share, Some(1.0), "a function that turned CPU-heavy is seen so at once");
        // Its runs slowed by a busy box: the estimate comes down slowly,
        // to what they show.
        let slowed = |pace: &mut Pace, n| {
            for _ in 0..n {
                let slot = pace.take("f", 0, false).unwrap();
                pace.give_back("f", slot, Outcome::Ran, cost(300, 1000), 4);
            }
            pace.windows["f"].share.unwrap()
        };
        assert!((slowed(&mut pace, 1) - 0.9).abs() < 1e-9);
        assert!((slowed(&mut pace, 5) - 0.9f64.powi(6)).abs() < 1e-9);
        assert!((slowed(&mut pace, 40) - 0.3).abs() < 1e-9);
    }
}
