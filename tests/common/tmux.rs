//! Driving the real binary in tmux: send keys, read the screen.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{engine_url, podman_164};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn start(name: &str, cmd: &str) -> Self {
        Self::start_sized(name, cmd, 120, 40)
    }
    /// A session of `w`×`h` whose pane stays after the program exits (to read its last words).
    pub fn start_sized(name: &str, cmd: &str, w: u16, h: u16) -> Self {
        let socket = format!("stage2-test-{}-{name}", std::process::id());
        let t = Self { socket };
        let (w, h) = (w.to_string(), h.to_string());
        let ok = t
            .tmux(&[
                "new-session",
                "-d",
                "-s",
                "s",
                "-x",
                &w,
                "-y",
                &h,
                cmd,
                ";",
                "set-option",
                "-t",
                "s",
                "remain-on-exit",
                "on",
            ])
            .status
            .success();
        assert!(ok, "tmux new-session failed");
        t
    }
    pub fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux (scripts/test.sh installs it)")
    }
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "s"]).stdout).into_owned()
    }
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "s"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }
    pub fn title(&self) -> String {
        String::from_utf8_lossy(
            &self
                .tmux(&["display-message", "-p", "-t", "s", "#{pane_title}"])
                .stdout,
        )
        .trim()
        .to_string()
    }
    /// Waits until the program in the pane has exited. tmux knows at once (`pane_dead`); the
    /// "Pane is dead" line it draws may come later, so it is not what is waited for.
    pub fn wait_exited(&self, timeout: Duration) {
        let start = Instant::now();
        loop {
            let o = self.tmux(&["display-message", "-p", "-t", "s", "#{pane_dead}"]);
            if String::from_utf8_lossy(&o.stdout).trim() == "1" {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "the program did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    pub fn pid(&self) -> i32 {
        String::from_utf8_lossy(
            &self
                .tmux(&["display-message", "-p", "-t", "s", "#{pane_pid}"])
                .stdout,
        )
        .trim()
        .parse()
        .unwrap()
    }
    pub fn wait_for(&self, text: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {text:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// Like [`tui_cmd`], writing the exit code to `code` when the program ends.
pub fn tui_cmd_code(cfg_home: &Path, args: &str, code: &Path) -> String {
    format!(
        "sh -c '{}; echo $? > {}'",
        tui_cmd(cfg_home, args).trim_start_matches("exec "),
        code.display()
    )
}

pub fn tui_cmd(cfg_home: &Path, args: &str) -> String {
    format!(
        "exec env STAGE2_ENGINE={} STAGE2_PODMAN={} STAGE2_STATE_ROOT={} CONTAINERS_CONF={} XDG_CONFIG_HOME={} TERM=xterm-256color {} {args}",
        engine_url(),
        podman_164().display(),
        super::state_root().display(),
        std::env::var("CONTAINERS_CONF").unwrap_or_default(),
        cfg_home.display(),
        env!("CARGO_BIN_EXE_stage2-tui"),
    )
}
