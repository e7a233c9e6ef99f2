//! The command line as an operator sees it (issue #16 item 21): a command's answer alone on
//! standard output, logs on standard error, and no colour codes when the log is not a terminal.

use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn answers_on_stdout_plain_logs_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kehu"));
        c.args(args)
            .env("KEHU_DATA_DIR", tmp.path().join("data"))
            .env("KEHU_LOG", "info")
            .env_remove("KEHU_DATABASE_URL")
            .env_remove("KEHU_CONFIG")
            .current_dir(tmp.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let (stdout, stderr) = run(
        &["user", "create", "--admin", "--email", "ops@kehu.test", "--password-stdin"],
        Some("Quiet-Harbor-Lantern-77\n"),
    );
    assert_eq!(stdout.lines().count(), 1, "only the answer: {stdout}");
    assert!(stdout.starts_with("created user ops@kehu.test (admin)"), "{stdout}");
    assert!(stderr.contains("migration applied"), "the logs went to standard error: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "no colour codes in a log that is not a terminal: {stderr:?}");
    let (stdout, stderr) = run(&["migrate"], None);
    assert_eq!(stdout.trim(), "applied migrations: []", "{stdout}");
    assert!(!stderr.contains('\u{1b}'));
}

/// A second `kehu serve` on the same data directory says so (issue #16 item 22), instead of
/// the restore command's message.
#[test]
fn a_second_server_on_one_data_directory_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let serve = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kehu"));
        c.arg("serve")
            .env("KEHU_DATA_DIR", tmp.path().join("data"))
            .env("KEHU_LISTEN", "127.0.0.1:0")
            .env("KEHU_LOG", "warn")
            .env("LANG", "en_US.UTF-8")
            .env_remove("KEHU_DATABASE_URL")
            .env_remove("KEHU_CONFIG")
            .current_dir(tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let mut first = serve().spawn().unwrap();
    // Wait until the first one serves (it printed its address).
    let out = first.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
    assert!(line.starts_with("Kehu is running on "), "{line}");
    let second = serve().output().unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("Another Kehu is already serving this data directory"), "{err}");
    assert!(err.contains("serve.already_running") && !err.contains("restore"), "{err}");
}
