//! The arithmetic of a rolling update, kept apart from the supervisor so it
//! can be tested on its own: given how many old and new replicas run and
//! are ready, how many new ones to start and old ones to stop next.
//!
//! The bounds are those of a Kubernetes Deployment: at most
//! `desired + maxSurge` replicas exist, and at least
//! `desired - maxUnavailable` are ready, at every step.

use crate::manifest::IntOrPercent;

/// `maxSurge` and `maxUnavailable` as replica counts for one desired count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollingLimits {
    pub max_surge: u32,
    pub max_unavailable: u32,
}

impl RollingLimits {
    /// Resolves percentages against `desired` as Kubernetes does: surge
    /// rounds up, unavailable rounds down, and if both come out 0 one
    /// replica may be unavailable so the update can progress.
    pub fn resolve(max_surge: IntOrPercent, max_unavailable: IntOrPercent, desired: u32) -> Self {
        let surge = scaled(max_surge, desired, true);
        let mut unavailable = scaled(max_unavailable, desired, false).min(desired);
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        Self {
            max_surge: surge,
            max_unavailable: unavailable,
        }
    }
}

fn scaled(value: IntOrPercent, desired: u32, round_up: bool) -> u32 {
    match value {
        IntOrPercent::Int(count) => count,
        IntOrPercent::Percent(percent) => {
            let product = u64::from(percent) * u64::from(desired);
            let count = if round_up {
                product.div_ceil(100)
            } else {
                product / 100
            };
            u32::try_from(count).unwrap_or(u32::MAX)
        }
    }
}

/// Replicas of the revision being rolled out (`new`) and of every other
/// revision (`old`), counting only those that run or are starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub desired: u32,
    pub new_total: u32,
    pub new_ready: u32,
    pub old_total: u32,
    pub old_ready: u32,
    /// Old replicas on their first start, not ready yet: they are coming
    /// up, not failing, so they are not stopped as unready ones are.
    pub old_starting: u32,
}

/// The next actions of a rolling update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Step {
    pub start_new: u32,
    /// Old replicas that are not ready: stopping them costs no availability.
    pub stop_old_unready: u32,
    pub stop_old_ready: u32,
}

/// Plans the next step of a rolling update within `limits`.
pub fn next_step(counts: Counts, limits: RollingLimits) -> Step {
    let max_total = counts.desired.saturating_add(limits.max_surge);
    let min_ready = counts.desired.saturating_sub(limits.max_unavailable);

    let stop_old_unready = counts
        .old_total
        .saturating_sub(counts.old_ready)
        .saturating_sub(counts.old_starting);

    let total_after = counts.new_total + counts.old_total - stop_old_unready;
    let room = max_total.saturating_sub(total_after);
    let missing_new = counts.desired.saturating_sub(counts.new_total);
    let start_new = room.min(missing_new);

    let ready = counts.new_ready + counts.old_ready;
    let spare = ready.saturating_sub(min_ready);
    // Old replicas beyond what the new ones leave room for go first when
    // spare readiness allows; once every new replica is ready, the rest go.
    let stop_old_ready = if counts.new_ready >= counts.desired {
        counts.old_ready
    } else {
        spare.min(counts.old_ready)
    };

    Step {
        start_new,
        stop_old_unready,
        stop_old_ready,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(surge: u32, unavailable: u32) -> RollingLimits {
        RollingLimits {
            max_surge: surge,
            max_unavailable: unavailable,
        }
    }

    #[test]
    fn resolve_rounds_like_kubernetes() {
        let resolved =
            RollingLimits::resolve(IntOrPercent::Percent(25), IntOrPercent::Percent(25), 3);
        assert_eq!(resolved, limits(1, 0));
        let resolved =
            RollingLimits::resolve(IntOrPercent::Percent(25), IntOrPercent::Percent(25), 10);
        assert_eq!(resolved, limits(3, 2));
    }

    #[test]
    fn resolve_never_leaves_both_zero() {
        let resolved = RollingLimits::resolve(IntOrPercent::Int(0), IntOrPercent::Percent(10), 5);
        assert_eq!(resolved, limits(0, 1));
    }

    #[test]
    fn surge_only_starts_one_then_stops_one() {
        let counts = Counts {
            desired: 3,
            new_total: 0,
            new_ready: 0,
            old_total: 3,
            old_ready: 3,
            old_starting: 0,
        };
        let step = next_step(counts, limits(1, 0));
        assert_eq!(step.start_new, 1);
        assert_eq!(step.stop_old_ready, 0);
    }

    #[test]
    fn starting_old_replicas_are_kept() {
        let counts = Counts {
            desired: 2,
            old_total: 2,
            old_starting: 2,
            ..Counts::default()
        };
        let step = next_step(counts, limits(1, 0));
        assert_eq!(step.stop_old_unready, 0);
        assert_eq!(step.stop_old_ready, 0);
        assert_eq!(step.start_new, 1);
    }

    #[test]
    fn unready_old_replicas_go_first() {
        let counts = Counts {
            desired: 2,
            new_total: 0,
            new_ready: 0,
            old_total: 2,
            old_ready: 1,
            old_starting: 0,
        };
        let step = next_step(counts, limits(1, 0));
        assert_eq!(step.stop_old_unready, 1);
        assert_eq!(step.start_new, 2);
        assert_eq!(step.stop_old_ready, 0);
    }

    /// Simulates a whole update where each started replica becomes ready
    /// on the next step, and checks the bounds at every step.
    fn simulate(desired: u32, surge: u32, unavailable: u32) -> u32 {
        let bounds = limits(surge, unavailable);
        let mut counts = Counts {
            desired,
            old_total: desired,
            old_ready: desired,
            ..Counts::default()
        };
        for round in 1..=100 {
            counts.new_ready = counts.new_total;
            let step = next_step(counts, bounds);
            counts.new_total += step.start_new;
            counts.old_total -= step.stop_old_unready + step.stop_old_ready;
            counts.old_ready -= step.stop_old_ready;
            let total = counts.new_total + counts.old_total;
            let ready = counts.new_ready + counts.old_ready;
            assert!(total <= desired + surge, "round {round}: {counts:?}");
            assert!(ready + unavailable >= desired, "round {round}: {counts:?}");
            if counts.new_ready == desired && counts.old_total == 0 {
                return round;
            }
        }
        panic!("no progress: {counts:?}");
    }

    #[test]
    fn updates_finish_within_bounds() {
        for (desired, surge, unavailable) in [
            (1, 1, 0),
            (3, 1, 0),
            (3, 0, 1),
            (10, 3, 2),
            (5, 5, 0),
            (4, 0, 4),
        ] {
            let rounds = simulate(desired, surge, unavailable);
            assert!(
                rounds <= 2 * desired + 2,
                "{desired}/{surge}/{unavailable}: {rounds} rounds"
            );
        }
    }
}
