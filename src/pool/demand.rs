//! Recent cold-start demand of one kind of generic container, which sizes
//! the prewarmed pool beyond its configured floor: the pool grows after a
//! burst of cold starts and shrinks back once the burst is a while past.
//!
//! The measure is a decaying maximum: the most cold starts seen within one
//! [`WINDOW`], remembered until that peak is an idle period old, after
//! which it falls back to what the current window holds (so a burst an
//! hour ago does not keep containers ready, and neither does a trickle of
//! one cold start now and then keep a big peak alive).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Cold starts closer together than this count as one burst.
pub(super) const WINDOW: Duration = Duration::from_secs(10);

/// See the module documentation.
#[derive(Debug, Clone)]
pub(super) struct Demand {
    /// Cold starts within the last [`WINDOW`], oldest first; at most the
    /// pool's cap of them (more could never be kept ready anyway).
    recent: VecDeque<Instant>,
    /// The most `recent` held, and when it last reached that.
    peak: usize,
    peak_at: Instant,
}

impl Demand {
    pub fn new(now: Instant) -> Demand {
        Demand { recent: VecDeque::new(), peak: 0, peak_at: now }
    }

    /// A cold start at `now`; `cap` bounds what is remembered.
    pub fn record(&mut self, now: Instant, cap: usize, idle: Duration) {
        self.prune(now);
        self.recent.push_back(now);
        while self.recent.len() > cap {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.wanted(now, idle) {
            self.peak = self.recent.len();
            self.peak_at = now;
        }
    }

    /// How many generics this demand asks to keep ready at `now`: the peak
    /// while it is younger than `idle`, else the current window's count.
    pub fn wanted(&self, now: Instant, idle: Duration) -> usize {
        if now.saturating_duration_since(self.peak_at) < idle {
            return self.peak;
        }
        self.recent.iter().filter(|t| now.saturating_duration_since(**t) < WINDOW).count()
    }

    /// When the last cold start was, if any is remembered.
    pub fn last(&self) -> Option<Instant> {
        self.recent.back().copied()
    }

    fn prune(&mut self, now: Instant) {
        while self.recent.front().is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW) {
            self.recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(60);

    #[test]
    fn a_burst_is_remembered_for_an_idle_period_then_forgotten() {
        let t0 = Instant::now();
        let mut d = Demand::new(t0);
        assert_eq!(d.wanted(t0, IDLE), 0);
        for i in 0..20 {
            d.record(t0 + Duration::from_millis(i), 64, IDLE);
        }
        assert_eq!(d.wanted(t0 + Duration::from_secs(1), IDLE), 20);
        let last = t0 + Duration::from_millis(19);
        assert_eq!(d.last(), Some(last));
        assert_eq!(d.wanted(last + IDLE - Duration::from_secs(1), IDLE), 20, "kept long after the window");
        assert_eq!(d.wanted(last + IDLE, IDLE), 0, "an idle period after its last cold start: nothing");
    }

    #[test]
    fn a_trickle_does_not_keep_an_old_peak_alive() {
        let t0 = Instant::now();
        let mut d = Demand::new(t0);
        for _ in 0..10 {
            d.record(t0, 64, IDLE);
        }
        let mut t = t0;
        for _ in 0..10 {
            t += Duration::from_secs(15);
            d.record(t, 64, IDLE);
        }
        assert_eq!(d.wanted(t, IDLE), 1, "one cold start per window now");
    }

    #[test]
    fn a_bigger_burst_raises_the_peak_and_the_cap_bounds_it() {
        let t0 = Instant::now();
        let mut d = Demand::new(t0);
        for _ in 0..3 {
            d.record(t0, 8, IDLE);
        }
        let later = t0 + Duration::from_secs(30);
        for _ in 0..12 {
            d.record(later, 8, IDLE);
        }
        assert_eq!(d.wanted(later, IDLE), 8, "no more than the cap");
        assert_eq!(
            d.wanted(later + IDLE - Duration::from_secs(1), IDLE),
            8,
            "its idle period counts from the new peak"
        );
    }
}
