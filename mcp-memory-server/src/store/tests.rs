//! The store against a real file: persistence across reopen, the reference's format in both
//! directions, corrupt files, the single-writer lock, failed writes, and concurrent writers.

use std::sync::Arc;

use tempfile::TempDir;

use super::*;

fn entity(name: &str, observations: &[&str]) -> Entity {
    Entity {
        name: name.to_owned(),
        entity_type: "thing".to_owned(),
        observations: observations.iter().map(|o| (*o).to_owned()).collect(),
    }
}

fn relation(from: &str, to: &str) -> Relation {
    Relation {
        from: from.to_owned(),
        to: to.to_owned(),
        relation_type: "links".to_owned(),
    }
}

fn names(graph: &KnowledgeGraph) -> Vec<&str> {
    graph.entities.iter().map(|e| e.name.as_str()).collect()
}

fn temp() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("memory.jsonl");
    (dir, path)
}

/// Every file in `dir` but the memory file and its lock.
fn strays(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .expect("readable dir")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "memory.jsonl" && name != "memory.jsonl.lock")
        .collect()
}

#[test]
fn a_missing_file_and_directory_are_created_empty() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("nested/deeper/memory.jsonl");
    let store = Store::open(&path).expect("opens");
    assert!(path.exists());
    assert_eq!(store.read_graph(), KnowledgeGraph::default());
}

#[test]
fn every_kind_of_write_survives_a_reopen() {
    let (dir, path) = temp();
    {
        let store = Store::open(&path).expect("opens");
        store
            .create_entities(vec![
                entity("A", &["a1"]),
                entity("B", &[]),
                entity("C", &[]),
            ])
            .expect("created");
        store
            .create_relations(vec![
                relation("A", "B"),
                relation("B", "C"),
                relation("C", "A"),
            ])
            .expect("created");
        store
            .add_observations(vec![ObservationAddition {
                entity_name: "B".to_owned(),
                contents: vec!["b1".to_owned(), "b2".to_owned()],
            }])
            .expect("written")
            .expect("B exists");
        store
            .delete_observations(vec![ObservationDeletion {
                entity_name: "B".to_owned(),
                observations: vec!["b1".to_owned()],
            }])
            .expect("written");
        store
            .delete_relations(vec![relation("B", "C")])
            .expect("written");
        store
            .delete_entities(vec!["C".to_owned()])
            .expect("written");
        store
            .create_entities(vec![entity("D", &[])])
            .expect("created");
    }
    let store = Store::open(&path).expect("reopens");
    let graph = store.read_graph();
    assert_eq!(names(&graph), ["A", "B", "D"]);
    assert_eq!(graph.entities[1].observations, ["b2"]);
    assert_eq!(graph.relations, vec![relation("A", "B")]);
    assert!(strays(dir.path()).is_empty(), "{:?}", strays(dir.path()));
}

#[test]
fn a_reference_file_without_a_final_newline_is_read_and_appended_to() {
    let (_dir, path) = temp();
    // What the reference writes: entities, then relations, joined by "\n", no final newline.
    fs::write(
        &path,
        concat!(
            r#"{"type":"entity","name":"A","entityType":"thing","observations":["x"]}"#,
            "\n",
            r#"{"type":"relation","from":"A","to":"A","relationType":"links"}"#,
        ),
    )
    .expect("written");
    {
        let store = Store::open(&path).expect("opens");
        assert_eq!(names(&store.read_graph()), ["A"]);
        store
            .create_entities(vec![entity("B", &[])])
            .expect("created");
    }
    let text = fs::read_to_string(&path).expect("readable");
    assert!(text.ends_with('\n'));
    assert_eq!(text.lines().count(), 3, "{text}");
    let store = Store::open(&path).expect("reopens");
    assert_eq!(names(&store.read_graph()), ["A", "B"]);
    assert_eq!(store.read_graph().relations, vec![relation("A", "A")]);
}

#[test]
fn blank_lines_crlf_and_unknown_fields_are_tolerated() {
    let (_dir, path) = temp();
    fs::write(
        &path,
        "\n  \r\n{\"type\":\"entity\",\"name\":\"A\",\"entityType\":\"t\",\"observations\":[],\"extra\":1}\r\n\n",
    )
    .expect("written");
    let store = Store::open(&path).expect("opens");
    assert_eq!(names(&store.read_graph()), ["A"]);
}

fn assert_corrupt(contents: &str, line: usize, needle: &str) {
    let (_dir, path) = temp();
    fs::write(&path, contents).expect("written");
    let err = Store::open(&path).expect_err("corrupt");
    let message = err.to_string();
    match err {
        MemoryError::Corrupt {
            path: reported,
            line: reported_line,
            ..
        } => {
            assert_eq!(reported, path);
            assert_eq!(reported_line, line, "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(message.contains(needle), "{message}");
    assert!(
        message.contains(&format!("memory.jsonl:{line}:")),
        "{message}"
    );
    // The file is left exactly as it was.
    assert_eq!(fs::read_to_string(&path).expect("readable"), contents);
}

#[test]
fn a_half_written_last_line_is_reported_with_its_number() {
    let good = r#"{"type":"entity","name":"A","entityType":"t","observations":[]}"#;
    assert_corrupt(
        &format!("{good}\n{good}\n{{\"type\":\"entity\",\"name\":\"B"),
        3,
        "EOF while parsing",
    );
}

#[test]
fn garbage_a_missing_field_and_an_unknown_type_are_reported() {
    let good = r#"{"type":"entity","name":"A","entityType":"t","observations":[]}"#;
    assert_corrupt(&format!("{good}\nnot json\n{good}"), 2, "expected");
    assert_corrupt(
        &format!("{good}\n\n{{\"type\":\"entity\",\"name\":\"B\",\"entityType\":\"t\"}}\n"),
        3,
        "missing field `observations`",
    );
    assert_corrupt(
        r#"{"type":"meta","version":2}"#,
        1,
        "unknown variant `meta`",
    );
}

#[test]
fn a_second_store_on_the_same_file_is_refused_until_the_first_is_dropped() {
    let (_dir, path) = temp();
    let first = Store::open(&path).expect("opens");
    match Store::open(&path) {
        Err(MemoryError::Locked { path: locked, lock }) => {
            assert_eq!(locked, path);
            assert_eq!(lock, lock_path(&path));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(first);
    Store::open(&path).expect("the lock went with the first store");
}

#[test]
fn a_failed_rewrite_changes_neither_memory_nor_the_file_system() {
    let (dir, path) = temp();
    let store = Store::open(&path).expect("opens");
    store
        .create_entities(vec![entity("A", &["keep"])])
        .expect("created");
    // Put a non-empty directory where the file was: the rename of the rewrite must fail.
    fs::remove_file(&path).expect("removed");
    fs::create_dir(&path).expect("a directory in its place");
    fs::write(path.join("occupied"), "").expect("written");

    let err = store
        .delete_observations(vec![ObservationDeletion {
            entity_name: "A".to_owned(),
            observations: vec!["keep".to_owned()],
        }])
        .expect_err("the rename fails");
    assert!(matches!(err, MemoryError::Write { .. }), "{err:?}");
    assert_eq!(store.read_graph().entities[0].observations, ["keep"]);
    assert!(strays(dir.path()).is_empty(), "{:?}", strays(dir.path()));
}

#[test]
fn concurrent_writers_are_serialised_and_all_durable() {
    let (_dir, path) = temp();
    let store = Arc::new(Store::open(&path).expect("opens"));
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let name = format!("w{writer}-{i}");
                    store
                        .create_entities(vec![entity(&name, &[])])
                        .expect("created");
                    store
                        .add_observations(vec![ObservationAddition {
                            entity_name: name,
                            contents: vec![format!("seen by {writer}")],
                        }])
                        .expect("written")
                        .expect("exists");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("no writer panicked");
    }
    drop(store);
    let reopened = Store::open(&path).expect("reopens");
    let graph = reopened.read_graph();
    assert_eq!(graph.entities.len(), 200);
    assert!(
        graph.entities.iter().all(|e| e.observations.len() == 1),
        "every observation landed"
    );
}

#[tokio::test]
async fn subscribers_hear_which_entities_a_write_touched() {
    let (_dir, path) = temp();
    let store = Arc::new(Store::open(&path).expect("opens"));
    let mut changes = store.subscribe();
    store
        .run(|s| s.create_entities(vec![entity("A", &[]), entity("B", &[])]))
        .await
        .expect("ran")
        .expect("created");
    let touched = changes.recv().await.expect("a change");
    assert_eq!(*touched, HashSet::from(["A".to_owned(), "B".to_owned()]));
    // A write that changes nothing is not announced: the next event is the real change.
    store
        .create_entities(vec![entity("A", &[])])
        .expect("nothing to create");
    store
        .create_relations(vec![relation("B", "Z")])
        .expect("created");
    let touched = changes.recv().await.expect("a change");
    assert_eq!(*touched, HashSet::from(["B".to_owned(), "Z".to_owned()]));
}

#[test]
fn temp_files_of_an_interrupted_rewrite_are_removed_on_open() {
    let (dir, path) = temp();
    fs::write(dir.path().join("memory.jsonl.4242-7.tmp"), "half a graph").expect("written");
    // Not ours: another file's temp, and the reference's naming.
    fs::write(dir.path().join("other.jsonl.4242-7.tmp"), "").expect("written");
    fs::write(dir.path().join("memory.jsonl.0123abcd.tmp"), "").expect("written");
    let _store = Store::open(&path).expect("opens");
    let mut left = strays(dir.path());
    left.sort();
    assert_eq!(
        left,
        ["memory.jsonl.0123abcd.tmp", "other.jsonl.4242-7.tmp"]
    );
}

#[test]
fn our_temp_names_are_recognised_exactly() {
    assert!(is_our_temp("m.jsonl", "m.jsonl.12-0.tmp"));
    for name in [
        "m.jsonl.12-.tmp",
        "m.jsonl.-1.tmp",
        "m.jsonl.1a-2.tmp",
        "m.jsonl.12-3",
        "n.jsonl.1-2.tmp",
    ] {
        assert!(!is_our_temp("m.jsonl", name), "{name}");
    }
}

#[cfg(unix)]
#[test]
fn a_rewrite_keeps_the_file_private() {
    use std::os::unix::fs::PermissionsExt;

    let (_dir, path) = temp();
    let store = Store::open(&path).expect("opens");
    store
        .create_entities(vec![entity("A", &["secret"])])
        .expect("created");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    store
        .delete_observations(vec![ObservationDeletion {
            entity_name: "A".to_owned(),
            observations: vec!["secret".to_owned()],
        }])
        .expect("rewritten");
    let mode = fs::metadata(&path).expect("exists").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
