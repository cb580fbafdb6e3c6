//! CPU, memory and network of Docker replicas, from the newest sample of
//! each container's stats stream, in place of /proc.
//!
//! Rates are taken between the sample of one sweep and the sample of the
//! sweep before, so they cover the collection interval. A sweep that finds
//! the same sample as the last one (the engine sends one about every
//! second) keeps the rates it took then.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::backend::docker::stats::{cpu_cores, network_rates};
use crate::backend::docker::{DockerBackend, StatsSample};
use crate::model::ReplicaView;

/// The usage of a deployment's replicas at one sweep; `None` is a gap.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Measured {
    pub cores: Option<f64>,
    pub memory_bytes: Option<u64>,
    /// Bytes per second received and sent.
    pub network: Option<(f64, f64)>,
    /// Each replica's CPU (cores) and memory (bytes), by slot, for the
    /// autoscaler.
    pub per_replica: Vec<(u32, crate::engine::autoscaler::ReplicaUsage)>,
}

/// Each container's sample at its last sweep and the rates taken then.
#[derive(Default)]
pub(super) struct ContainerRates {
    previous: HashMap<String, Seen>,
}

struct Seen {
    sample: StatsSample,
    cores: Option<f64>,
    network: Option<(f64, f64)>,
}

impl ContainerRates {
    /// Sums the usage of the replicas' containers. A container whose stream
    /// sent nothing for a while (it stopped, or the engine went away) adds
    /// nothing, and neither does the first sample of one for the rates.
    pub fn measure(
        &mut self,
        docker: &DockerBackend,
        replicas: &[ReplicaView],
        now: Instant,
    ) -> Measured {
        let mut measured = Measured::default();
        for replica in replicas {
            let Some(container) = replica.container.as_deref() else {
                continue;
            };
            let Some(sample) = docker
                .stats_sample(container)
                .filter(|sample| !sample.is_stale(now))
            else {
                self.previous.remove(container);
                continue;
            };
            let seen = self.advance(container, sample);
            measured
                .per_replica
                .push((replica.index, (seen.cores, seen.sample.memory_bytes)));
            if let Some(cores) = seen.cores {
                *measured.cores.get_or_insert(0.0) += cores;
            }
            if let Some(bytes) = seen.sample.memory_bytes {
                *measured.memory_bytes.get_or_insert(0) += bytes;
            }
            if let Some((rx, tx)) = seen.network {
                let sum = measured.network.get_or_insert((0.0, 0.0));
                sum.0 += rx;
                sum.1 += tx;
            }
        }
        measured
    }

    /// Takes the rates from the container's last seen sample to `sample`.
    fn advance(&mut self, container: &str, sample: StatsSample) -> &Seen {
        let seen = match self.previous.remove(container) {
            Some(previous) if previous.sample.read == sample.read => previous,
            Some(previous) => Seen {
                cores: cpu_cores(&previous.sample, &sample),
                network: network_rates(&previous.sample, &sample),
                sample,
            },
            None => Seen {
                sample,
                cores: None,
                network: None,
            },
        };
        self.previous.entry(container.to_owned()).or_insert(seen)
    }

    /// Forgets containers that no replica has any more.
    pub fn retain(&mut self, live: &HashSet<&str>) {
        self.previous
            .retain(|container, _| live.contains(container.as_str()));
    }
}
