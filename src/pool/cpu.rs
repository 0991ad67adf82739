//! How much CPU a function container gets: in proportion to its memory, as
//! on Lambda (one vCPU at 1,769 MB), either as a share of what is contended
//! or as a hard cap.
//!
//! Lambda caps hard. On one box a hard cap is the wrong default: with
//! Docker's 100 ms CFS period a 128 MB function (0.07 vCPU) runs a few
//! milliseconds and then stalls for the rest of the period, even on an idle
//! machine (a warm echo's p99 was 86 ms). So by default a container gets a
//! cgroup CPU weight in proportion to its memory, from its creation on: it
//! may use idle CPU at full speed, and when the CPU is contended the
//! functions divide it in their memory ratio. `strict` keeps Lambda's hard
//! caps, on the shortest CFS period the kernel accepts for the share, so a
//! throttled function stalls milliseconds; its init runs uncapped (Lambda
//! boosts init too) until the runtime first polls.

use std::str::FromStr;

/// Memory that buys one full vCPU, as on Lambda.
const MB_PER_VCPU: u64 = 1769;
/// The cgroup (v1) CPU shares of one vCPU's worth: Docker's default weight.
const SHARES_PER_VCPU: u64 = 1024;
/// The smallest weight the kernel takes.
const MIN_SHARES: u64 = 2;
/// The kernel's shortest CFS period, and its smallest quota, in µs.
const MIN_CFS_US: u64 = 1000;

/// The `--cpu-limit` setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CpuMode {
    /// A weight in proportion to memory; idle CPU is anyone's.
    #[default]
    Weighted,
    /// Lambda's hard cap in proportion to memory, once initialised.
    Strict,
    /// Neither: every container competes as an equal.
    Off,
}

/// What the engine is told about a container's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuSetting {
    /// A relative weight (cgroup `cpu.shares`).
    Shares(u64),
    /// A hard cap: `quota_us` of CPU time in every `period_us`.
    Quota { period_us: u64, quota_us: u64 },
}

impl FromStr for CpuMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "weighted" => Ok(CpuMode::Weighted),
            "strict" => Ok(CpuMode::Strict),
            "off" => Ok(CpuMode::Off),
            other => Err(format!("unknown CPU limit '{other}' (weighted, strict or off)")),
        }
    }
}

impl CpuMode {
    /// What a container of `memory_mb` gets from its creation.
    pub fn at_start(self, memory_mb: u32) -> Option<CpuSetting> {
        (self == CpuMode::Weighted).then(|| shares(memory_mb))
    }

    /// What it gets once its runtime has initialised (or its init burst
    /// is over).
    pub fn once_initialised(self, memory_mb: u32) -> Option<CpuSetting> {
        (self == CpuMode::Strict).then(|| quota(memory_mb))
    }
}

/// The weight of `memory_mb`: 1,024 per vCPU's worth of memory.
pub fn shares(memory_mb: u32) -> CpuSetting {
    CpuSetting::Shares((u64::from(memory_mb) * SHARES_PER_VCPU / MB_PER_VCPU).max(MIN_SHARES))
}

/// The hard cap of `memory_mb` on the shortest period that can express
/// it: the quota cannot go under 1 ms, so a small share needs a longer
/// period (128 MB: 1 ms every 13.8 ms), a vCPU or more takes 1 ms.
pub fn quota(memory_mb: u32) -> CpuSetting {
    let memory = u64::from(memory_mb).max(1);
    let period_us = (MIN_CFS_US * MB_PER_VCPU).div_ceil(memory).max(MIN_CFS_US);
    CpuSetting::Quota { period_us, quota_us: period_us * memory / MB_PER_VCPU }
}

/// A cap that caps nothing on a machine of `cpus`: lifted before a
/// capped container is killed, so a fork bomb at a small share dies at once.
pub fn unlimited(cpus: u64) -> CpuSetting {
    CpuSetting::Quota { period_us: MIN_CFS_US * 100, quota_us: MIN_CFS_US * 100 * cpus.max(1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_memory() {
        assert_eq!(shares(1769), CpuSetting::Shares(1024));
        assert_eq!(shares(128), CpuSetting::Shares(74));
        assert_eq!(shares(10240), CpuSetting::Shares(5927));
        assert_eq!(shares(1), CpuSetting::Shares(2), "never under the kernel's minimum");
    }

    #[test]
    fn caps_use_the_shortest_period_that_holds_the_share() {
        let CpuSetting::Quota { period_us, quota_us } = quota(128) else { panic!() };
        assert_eq!((period_us, quota_us), (13821, 1000));
        let share = quota_us as f64 / period_us as f64;
        assert!((share - 128.0 / 1769.0).abs() < 0.0001, "{share}");
        assert_eq!(quota(1769), CpuSetting::Quota { period_us: 1000, quota_us: 1000 });
        assert_eq!(quota(3538), CpuSetting::Quota { period_us: 1000, quota_us: 2000 });
        for mb in [128, 129, 300, 512, 1000, 1769, 2048, 10240] {
            let CpuSetting::Quota { period_us, quota_us } = quota(mb) else { panic!() };
            assert!(period_us >= MIN_CFS_US && quota_us >= MIN_CFS_US, "{mb}: {period_us}/{quota_us}");
            let want = f64::from(mb) / 1769.0;
            assert!((quota_us as f64 / period_us as f64 - want).abs() / want < 0.001, "{mb}");
        }
    }

    #[test]
    fn modes_say_when_they_apply() {
        assert_eq!(CpuMode::default(), CpuMode::Weighted);
        assert_eq!(CpuMode::Weighted.at_start(1769), Some(CpuSetting::Shares(1024)));
        assert_eq!(CpuMode::Weighted.once_initialised(1769), None);
        assert_eq!(CpuMode::Strict.at_start(1769), None);
        assert_eq!(CpuMode::Strict.once_initialised(1769), Some(quota(1769)));
        assert_eq!((CpuMode::Off.at_start(128), CpuMode::Off.once_initialised(128)), (None, None));
        assert_eq!("strict".parse(), Ok(CpuMode::Strict));
        assert!("fast".parse::<CpuMode>().is_err());
    }
}
