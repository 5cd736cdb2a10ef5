//! Large files go past the page cache (`O_DIRECT`), through the descriptor that created them,
//! where the file system accepts it. (The fallback on a file system that refuses it, ramfs,
//! is in `disk_faults.rs`, which mounts one.) And what a writer killed mid-write leaves behind
//! goes at the next write.

/// 16 MiB and an odd tail: more than the size from which files are written directly.
fn bytes() -> Vec<u8> {
    (0..(16 << 20) + 4099u32)
        .map(|i| (i * 31 + 7) as u8)
        .collect()
}

#[test]
fn large_files_are_written_past_the_page_cache_where_the_file_system_allows() {
    let bytes = bytes();
    // The build directory, then the usual temporary file systems: at least one of them
    // accepts O_DIRECT on any Linux machine of the last years (tmpfs does since 6.6).
    let candidates = [env!("CARGO_TARGET_TMPDIR"), "/dev/shm", "/var/tmp", "/tmp"];
    let mut direct_on = Vec::new();
    for base in candidates {
        let Ok(dir) = tempfile::tempdir_in(base) else {
            continue;
        };
        let path = dir.path().join("large.bin");
        let written = wgfit::checkpoint::write_atomically(&path, &bytes).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{base}: exact bytes");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{base}: no temporary file is left");
        if written.direct_io {
            direct_on.push(base);
        }
    }
    eprintln!("O_DIRECT accepted on: {direct_on:?}");
    assert!(
        !direct_on.is_empty(),
        "no file system here took the direct path: {candidates:?}"
    );
}

#[test]
fn small_files_are_written_the_ordinary_way() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("small.bin");
    let written = wgfit::checkpoint::write_atomically(&path, b"small").unwrap();
    assert!(!written.direct_io);
    assert_eq!(std::fs::read(&path).unwrap(), b"small");
}

#[test]
fn a_killed_writers_temporary_file_goes_at_the_next_write() {
    let tmp = tempfile::tempdir().unwrap();
    // The pid of a process that has exited (a killed writer's).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = format!(".wgfit-out-{dead}-log.csv");
    // Pid 1 always runs: its write may be in progress.
    let live = ".wgfit-out-1-log.csv";
    let other = format!(".wgfit-out-{dead}-other.csv");
    for name in [stale.as_str(), live, other.as_str(), ".wgfit-out-x-log.csv"] {
        std::fs::write(tmp.path().join(name), b"partial").unwrap();
    }
    wgfit::checkpoint::write_atomically(&tmp.path().join("log.csv"), b"rows").unwrap();
    let mut left: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut want = vec![
        live.to_string(),
        other.clone(),
        ".wgfit-out-x-log.csv".to_string(),
        "log.csv".to_string(),
    ];
    want.sort();
    assert_eq!(left, want, "only the dead writer's file of this name went");
    assert_eq!(std::fs::read(tmp.path().join("log.csv")).unwrap(), b"rows");
}
