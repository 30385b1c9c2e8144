//! Process handling: every component runs in its own process group with its
//! output in `DIR/logs/<name>.log` and its pid in `DIR/pids/<name>.pid`, so
//! `down` (or a watchdog) can stop it and everything it spawned.

use anyhow::{Context, Result};
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("logs").join(format!("{name}.log"))
}

fn pid_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("pids").join(format!("{name}.pid"))
}

/// Starts `cmd` as component `name` of the environment in `dir`.
pub fn spawn(dir: &Path, name: &str, mut cmd: Command) -> Result<u32> {
    fs::create_dir_all(dir.join("logs"))?;
    fs::create_dir_all(dir.join("pids"))?;
    let log = File::create(log_path(dir, name))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let pid = child.id();
    fs::write(pid_path(dir, name), pid.to_string())?;
    // The child is reaped by a detached thread so it never lingers as a zombie
    // while this process (a test binary, say) keeps running.
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    Ok(pid)
}

/// True while the process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

pub fn pid_of(dir: &Path, name: &str) -> Option<u32> {
    fs::read_to_string(pid_path(dir, name))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Every component with a pid file in `dir`, with its pid.
pub fn components(dir: &Path) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir.join("pids")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if let (Some(stem), Ok(text)) = (
                path.file_stem().and_then(|s| s.to_str()),
                fs::read_to_string(&path),
            ) && let Ok(pid) = text.trim().parse()
            {
                out.push((stem.to_string(), pid));
            }
        }
    }
    out.sort();
    out
}

fn signal_group(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group; it has no
    // memory-safety preconditions.
    unsafe {
        libc::kill(-(pid as i32), sig);
    }
}

/// Stops the given process groups: SIGTERM, then SIGKILL for whatever is still
/// alive after `grace`.
pub fn stop_groups(pids: &[u32], grace: Duration) {
    for &pid in pids {
        signal_group(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && pids.iter().any(|&p| alive(p)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for &pid in pids {
        signal_group(pid, libc::SIGKILL);
    }
    // SIGKILL is asynchronous: wait until the kernel has really ended them, so
    // "stopped" means gone (or a zombie awaiting its reaper).
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && pids.iter().any(|&p| alive(p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops every component of the environment in `dir` and removes its pid files.
/// Data directories and logs are kept for inspection.
pub fn stop_all(dir: &Path) -> Vec<(String, u32)> {
    let comps = components(dir);
    let pids: Vec<u32> = comps.iter().map(|(_, p)| *p).collect();
    stop_groups(&pids, Duration::from_secs(5));
    for (name, _) in &comps {
        let _ = fs::remove_file(pid_path(dir, name));
    }
    comps
}

/// Starts a detached watchdog that stops the environment's process groups once
/// `owner` exits, so a test binary that started its own environment never
/// leaves processes behind, even when it fails or is killed.
pub fn spawn_watchdog(dir: &Path, owner: u32) -> Result<()> {
    let pids: Vec<String> = components(dir)
        .into_iter()
        .map(|(_, p)| p.to_string())
        .collect();
    let groups: String = pids.iter().map(|p| format!(" -{p}")).collect();
    // `env kill` is procps' kill: dash's builtin rejects `--` before process-group IDs, which
    // left every process of a private environment running after its test binary had gone.

    let script = format!(
        "while kill -0 {owner} 2>/dev/null; do sleep 1; done; \
         env kill -TERM --{groups} 2>/dev/null; sleep 5; env kill -KILL --{groups} 2>/dev/null; \
         rm -f '{}'/pids/*.pid",
        dir.display()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]);
    spawn(dir, "watchdog", cmd)?;
    // The watchdog must not stop itself before it has stopped the others.
    let _ = fs::remove_file(pid_path(dir, "watchdog"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_stops_every_component_once_its_owner_is_gone() {
        let dir = std::env::temp_dir().join(format!("causeway-watchdog-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut component = Command::new("sleep");
        component.arg("300");
        let pid = spawn(&dir, "component", component).unwrap();
        // The owner: a process that exits on its own shortly.
        let mut owner = Command::new("sleep").arg("1").spawn().unwrap();
        spawn_watchdog(&dir, owner.id()).unwrap();
        owner.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let survived = alive(pid);
        if survived {
            signal_group(pid, libc::SIGKILL);
        }
        let _ = fs::remove_dir_all(&dir);
        assert!(!survived, "the component outlived its owner");
    }
}
