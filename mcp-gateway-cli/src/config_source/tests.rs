//! Hot reload with real upstreams: edits restart only what changed, a broken edit keeps the
//! running set, and calls keep working throughout.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mcp_gateway_core::{EventSubscription, Gateway, GatewayEvent};
use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RenameMode};
use notify::{Event, EventKind};
use serde_json::json;

use super::*;

const DEADLINE: Duration = Duration::from_secs(60);

fn everything() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../peers/node_modules/.bin/mcp-server-everything");
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-peers.sh",
        path.display()
    );
    path.display().to_string()
}

fn config(marker: &str, two_extra: &str) -> String {
    format!(
        "[servers.one]\ncommand = \"{ev}\"\nargs = [\"stdio\"]\nenv = {{ GW_MARKER = \"{marker}-one\" }}\n\n\
         [servers.two]\ncommand = \"{ev}\"\nargs = [\"stdio\"]\nenv = {{ GW_MARKER = \"{marker}-two\"{two_extra} }}\n",
        ev = everything(),
    )
}

/// Live processes whose environment holds `marker`.
fn pids(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|var| var == format!("GW_MARKER={marker}").as_bytes())
            })
        })
        .collect()
}

async fn next(
    events: &mut EventSubscription,
    what: &str,
    wanted: impl Fn(&GatewayEvent) -> bool,
) -> GatewayEvent {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match events.recv().await {
                Some(envelope) if wanted(&envelope.event) => return envelope.event.clone(),
                Some(_) => {}
                None => panic!("the bus closed before {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_restart_only_what_changed_and_broken_edits_keep_the_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gateway.toml");
    let marker = format!("reload-{}", std::process::id());
    std::fs::write(&path, config(&marker, "")).expect("written");
    let source = Arc::new(ConfigFileSource::watch(&path).expect("watch"));
    let gateway = Gateway::builder().discovery(source).build();
    let mut events = gateway.subscribe();
    gateway.start().await;
    next(&mut events, "the initial set", |e| {
        matches!(e, GatewayEvent::DiscoveryApplied { .. })
    })
    .await;
    let one = pids(&format!("{marker}-one"));
    let two = pids(&format!("{marker}-two"));
    assert_eq!((one.len(), two.len()), (1, 1), "one child each");

    // Calls keep running while the file changes.
    let caller = gateway.clone();
    let calls = tokio::spawn(async move {
        let mut done = 0;
        for _ in 0..40 {
            caller
                .call_tool("one__echo", json!({ "message": "during reload" }))
                .await
                .expect("the unchanged server keeps answering");
            done += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        done
    });

    std::fs::write(&path, config(&marker, ", EXTRA = \"1\"")).expect("edited");
    let applied = next(&mut events, "the reload", |e| {
        matches!(e, GatewayEvent::DiscoveryApplied { .. })
    })
    .await;
    let GatewayEvent::DiscoveryApplied {
        added,
        removed,
        changed,
        ..
    } = applied
    else {
        unreachable!("matched")
    };
    assert!(
        added.is_empty() && removed.is_empty(),
        "{added:?} {removed:?}"
    );
    assert_eq!(
        changed.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
        ["two"]
    );
    assert_eq!(
        pids(&format!("{marker}-one")),
        one,
        "the unchanged server kept its process"
    );
    let new_two = pids(&format!("{marker}-two"));
    assert_eq!(
        new_two.len(),
        1,
        "the old process is gone before the new one starts"
    );
    assert_ne!(new_two, two, "the changed server was restarted");

    std::fs::write(&path, "[servers.one\ncommand = ").expect("broken edit");
    let failed = next(&mut events, "the rejected edit", |e| {
        matches!(e, GatewayEvent::DiscoveryFailed { .. })
    })
    .await;
    let GatewayEvent::DiscoveryFailed { error, .. } = failed else {
        unreachable!("matched")
    };
    assert!(
        error.contains("gateway.toml") && error.contains("invalid TOML"),
        "{error}"
    );
    assert_eq!(gateway.servers().len(), 2, "the running set is kept");
    assert_eq!(pids(&format!("{marker}-one")), one);

    std::fs::write(
        &path,
        config(&marker, ", EXTRA = \"1\"")
            .split("[servers.two]")
            .next()
            .unwrap_or_default(),
    )
    .expect("removal");
    let applied = next(&mut events, "the removal", |e| {
        matches!(e, GatewayEvent::DiscoveryApplied { .. })
    })
    .await;
    assert!(
        matches!(applied, GatewayEvent::DiscoveryApplied { ref removed, .. } if removed.len() == 1)
    );
    assert!(
        pids(&format!("{marker}-two")).is_empty(),
        "the removed server's child is gone"
    );

    assert_eq!(calls.await.expect("calls ran"), 40);
    gateway.shutdown().await;
    assert!(pids(&format!("{marker}-one")).is_empty());
}

#[test]
fn only_changes_to_the_file_itself_are_edits() {
    let file = std::ffi::OsStr::new("gateway.toml");
    let event = |kind, name: &str| Event::new(kind).add_path(Path::new("/etc/gw").join(name));
    let edits = [
        EventKind::Modify(ModifyKind::Data(DataChange::Any)),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)),
        EventKind::Create(CreateKind::File),
        EventKind::Remove(notify::event::RemoveKind::File),
    ];
    for kind in edits {
        assert!(is_edit_of(&event(kind, "gateway.toml"), file), "{kind:?}");
        assert!(!is_edit_of(&event(kind, "other.toml"), file), "{kind:?}");
    }
    let reads = [
        EventKind::Access(AccessKind::Open(AccessMode::Any)),
        EventKind::Access(AccessKind::Close(AccessMode::Read)),
        EventKind::Access(AccessKind::Read),
    ];
    for kind in reads {
        assert!(!is_edit_of(&event(kind, "gateway.toml"), file), "{kind:?}");
    }
}

/// The gateway reads its own config file: on reload, and while waiting for an edit to settle.
/// When those reads counted as edits, an idle gateway re-read its file several times a second,
/// forever (and repeated a broken file's `discovery_failed` event as often).
#[tokio::test]
async fn reading_the_file_is_not_an_edit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, "[gateway]\nprefix = \"never\"\n").expect("written");
    let source = ConfigFileSource::watch(&path).expect("watch");
    for _ in 0..3 {
        source.discover().await.expect("the file reads");
        std::fs::read(&path).expect("read");
    }
    // The watch reports within milliseconds; a second of silence means no edit was seen.
    let reported = tokio::time::timeout(Duration::from_secs(1), source.changed()).await;
    assert!(reported.is_err(), "reading the file was taken for an edit");

    std::fs::write(&path, "[gateway]\nprefix = \"always\"\n").expect("edited");
    tokio::time::timeout(DEADLINE, source.changed())
        .await
        .expect("a real edit is reported");
}
