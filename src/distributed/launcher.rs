//! What the environment says about an MPI launcher, read without MPI: a binary built without
//! the `mpi` feature uses it to refuse running as one of N copies (each would train the whole
//! model alone and race the others on one backup directory).

/// The world size a launcher announced, and the variable that said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LauncherWorld {
    /// E.g. `OMPI_COMM_WORLD_SIZE`.
    pub variable: &'static str,
    /// The number of processes started.
    pub size: usize,
}

/// Variables holding the world size that MPI launchers set in every process they start:
/// Open MPI's `mpirun` (`OMPI_COMM_WORLD_SIZE`), MPICH's and Intel MPI's Hydra (`PMI_SIZE`),
/// MVAPICH (`MV2_COMM_WORLD_SIZE`).
const SIZE_VARIABLES: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"];

/// SLURM's task counts. `srun -n N` sets them for any program, MPI or not, and a batch script
/// sees them too though it runs once, so they count only beside an MPI rank variable (set by
/// `srun --mpi=pmix` or `pmi2`).
const SLURM_SIZE_VARIABLES: [&str; 2] = ["SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"];
const RANK_VARIABLES: [&str; 2] = ["PMIX_RANK", "PMI_RANK"];

/// The world size a launcher set in this process's environment, if it is above 1.
pub fn launcher_world() -> Option<LauncherWorld> {
    launcher_world_in(|name| std::env::var(name).ok())
}

/// [`launcher_world`] over any environment (for tests).
pub fn launcher_world_in(env: impl Fn(&str) -> Option<String>) -> Option<LauncherWorld> {
    let size = |name: &'static str| {
        env(name)
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 1)
            .map(|size| LauncherWorld {
                variable: name,
                size,
            })
    };
    if let Some(world) = SIZE_VARIABLES.into_iter().find_map(size) {
        return Some(world);
    }
    if RANK_VARIABLES.iter().any(|v| env(v).is_some()) {
        return SLURM_SIZE_VARIABLES.into_iter().find_map(size);
    }
    None
}

/// This process's rank among those of its node, as the launcher set it (Open MPI, MPICH's
/// Hydra, SLURM), or 0.
pub fn local_rank() -> usize {
    [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "MV2_COMM_WORLD_LOCAL_RANK",
        "SLURM_LOCALID",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn launchers_are_recognised() {
        let open_mpi = launcher_world_in(env(&[("OMPI_COMM_WORLD_SIZE", "2")]));
        assert_eq!(
            open_mpi.map(|w| (w.variable, w.size)),
            Some(("OMPI_COMM_WORLD_SIZE", 2))
        );
        assert_eq!(
            launcher_world_in(env(&[("PMI_SIZE", "4")])).map(|w| w.size),
            Some(4)
        );
        // One process is no race; SLURM alone may be a batch script or a non-MPI srun.
        assert_eq!(
            launcher_world_in(env(&[("OMPI_COMM_WORLD_SIZE", "1")])),
            None
        );
        assert_eq!(launcher_world_in(env(&[("SLURM_NTASKS", "8")])), None);
        let srun = launcher_world_in(env(&[("SLURM_NTASKS", "8"), ("PMIX_RANK", "3")]));
        assert_eq!(srun.map(|w| w.size), Some(8));
    }
}
