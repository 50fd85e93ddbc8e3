use std::io::Write;
use std::sync::{Arc, Mutex};

use super::*;

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut captured) = self.0.lock() {
            captured.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What `find_setpriv` returns for `paths`, and what it logged.
fn find_logged(paths: &[&'static str]) -> (Option<&'static str>, String) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let found = tracing::subscriber::with_default(subscriber, || find_setpriv(paths));
    let logged = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
    (found, logged)
}

#[test]
fn a_missing_setpriv_is_a_warning_that_says_what_it_costs() {
    let (found, logged) = find_logged(&["/nonexistent/setpriv"]);
    assert_eq!(found, None);
    assert!(logged.contains("WARN"), "{logged}");
    assert!(logged.contains("SIGKILL"), "{logged}");
    if cfg!(target_os = "linux") {
        assert!(logged.contains("util-linux"), "{logged}");
    }
}

#[test]
fn a_present_setpriv_is_used_without_a_word() {
    if !cfg!(target_os = "linux") {
        return;
    }
    // Any file that exists stands in for it: the lookup only checks that the path is there.
    let (found, logged) = find_logged(&["/nonexistent/setpriv", "/bin/sh"]);
    assert_eq!(found, Some("/bin/sh"));
    assert_eq!(logged, "");
}
