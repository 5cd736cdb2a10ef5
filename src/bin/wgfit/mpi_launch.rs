//! `wgfit train` under an MPI launcher: without the `mpi` feature it refuses to run as one of
//! several processes; with it, it joins the job and trains data-parallel (docs/MPI.md).

use crate::{CliResult, Failure};

/// This process's place in an MPI job.
pub struct Launch {
    #[cfg(feature = "mpi")]
    mpi: Option<wgfit::distributed::Mpi>,
    /// Whether the error being reported is one every rank meets at the same point.
    shared: std::cell::Cell<bool>,
}

impl Launch {
    /// Joins the MPI job the launcher started, if it started more than one process; without
    /// the `mpi` feature such a start is refused.
    pub fn start() -> CliResult<Self> {
        let world = wgfit::distributed::launcher_world();
        #[cfg(not(feature = "mpi"))]
        if let Some(world) = world {
            return Err(wgfit::Error::LauncherWithoutMpi {
                variable: world.variable.to_string(),
                size: world.size,
            }
            .into());
        }
        #[cfg(feature = "mpi")]
        {
            // Started alone, MPI is not initialized at all (a singleton MPI_Init is slow and
            // may print warnings of its own).
            let mpi = match world {
                Some(_) => Some(wgfit::distributed::Mpi::init()?),
                None => None,
            };
            Ok(Launch {
                mpi,
                shared: Default::default(),
            })
        }
        #[cfg(not(feature = "mpi"))]
        Ok(Launch {
            shared: Default::default(),
        })
    }

    /// Notes that every rank fails at the same point, before `fit`, with the same failure.
    pub fn agreed_failure(&self) {
        self.shared.set(true);
    }

    /// Notes the error `fit` returned: whether every rank meets it at the same point
    /// (disagreeing ranks, a batch that does not split, diverged parameters, a preemption).
    pub fn note(&self, error: &wgfit::Error) {
        use wgfit::Error as E;
        self.shared.set(matches!(
            error,
            E::RankDisagreement { .. }
                | E::BatchSplit { .. }
                | E::RanksDiverged { .. }
                | E::RankFailed { .. }
                | E::RanksOutOfStep { .. }
                | E::Preempted { .. }
                | E::StoppedBySignal { .. }
        ));
    }

    /// The group to train over, when there are several ranks.
    pub fn group(&self) -> Option<wgfit::distributed::Group> {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            return Some(mpi.group());
        }
        None
    }

    /// This process's rank (0 alone).
    pub fn rank(&self) -> usize {
        self.group().map_or(0, |g| g.rank())
    }

    /// The number of ranks (1 alone).
    pub fn ranks(&self) -> usize {
        self.group().map_or(1, |g| g.size())
    }

    /// Ends the command with `failure`. A failure of one rank that the others cannot know of
    /// (bad data on one rank, a disk error on rank 0, a GPU lost) would leave them waiting at
    /// their next exchange for ever, so it ends the whole job (MPI_Abort); one that every rank
    /// meets at the same point (see [`Launch::note`]) ends each rank normally.
    pub fn fail(&self, failure: Failure) -> Failure {
        #[cfg(feature = "mpi")]
        if let Some(mpi) = &self.mpi {
            if !self.shared.get() {
                eprintln!("wgfit: error on rank {}: {}", mpi.rank(), failure.message);
                mpi.abort(i32::from(failure.code).max(1));
            }
            // Open MPI ends the whole job as soon as one rank exits with an error: no rank
            // exits before all are done (rank 0 returns a preemption once its save committed).
            mpi.barrier();
        }
        failure
    }
}
