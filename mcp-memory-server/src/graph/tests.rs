//! The graph's semantics, call by call, as the reference defines them; and the snapshot writer
//! agreeing with the applied plan for every kind of change.

use super::*;

fn entity(name: &str, entity_type: &str, observations: &[&str]) -> Entity {
    Entity {
        name: name.to_owned(),
        entity_type: entity_type.to_owned(),
        observations: observations.iter().map(|o| (*o).to_owned()).collect(),
    }
}

fn relation(from: &str, to: &str, relation_type: &str) -> Relation {
    Relation {
        from: from.to_owned(),
        to: to.to_owned(),
        relation_type: relation_type.to_owned(),
    }
}

fn names(graph: &KnowledgeGraph) -> Vec<&str> {
    graph.entities.iter().map(|e| e.name.as_str()).collect()
}

/// Applies `plan` and checks that the snapshot written *before* applying (from the plan) is
/// byte for byte the snapshot of the graph *after* applying it.
fn apply_checked(graph: &mut Graph, plan: Plan) {
    let mut planned = Vec::new();
    graph
        .write_snapshot(Some(&plan), &mut planned)
        .expect("writing to memory");
    graph.apply(plan);
    let mut actual = Vec::new();
    graph
        .write_snapshot(None, &mut actual)
        .expect("writing to memory");
    assert_eq!(
        String::from_utf8_lossy(&planned),
        String::from_utf8_lossy(&actual)
    );
}

/// Alice, Bob and Carol; Alice knows Bob, Bob knows Carol, Alice mentors a ghost.
fn sample() -> Graph {
    let mut graph = Graph::default();
    let (_, plan) = graph.plan_create_entities(vec![
        entity("Alice", "Person", &["Likes tea", "Works at ACME"]),
        entity("Bob", "person", &["Plays chess"]),
        entity("Carol", "robot", &[]),
    ]);
    apply_checked(&mut graph, plan.expect("new entities"));
    let (_, plan) = graph.plan_create_relations(vec![
        relation("Alice", "Bob", "knows"),
        relation("Bob", "Carol", "knows"),
        relation("Alice", "Ghost", "mentors"),
    ]);
    apply_checked(&mut graph, plan.expect("new relations"));
    graph
}

#[test]
fn create_entities_skips_existing_names_and_repeats_within_a_batch() {
    let mut graph = sample();
    let (created, plan) = graph.plan_create_entities(vec![
        entity("Alice", "Robot", &["ignored"]),
        entity("Dave", "person", &["one"]),
        entity("Dave", "robot", &["two"]),
    ]);
    assert_eq!(created, vec![entity("Dave", "person", &["one"])]);
    let plan = plan.expect("Dave is new");
    assert!(plan.is_append());
    assert_eq!(plan.touched(), &HashSet::from(["Dave".to_owned()]));
    apply_checked(&mut graph, plan);
    assert_eq!(graph.entity_count(), 4);
    assert_eq!(
        graph.open(&["Alice".to_owned()]).entities[0].entity_type,
        "Person"
    );

    let (created, plan) = graph.plan_create_entities(vec![entity("Bob", "x", &[])]);
    assert!(created.is_empty());
    assert!(plan.is_none(), "nothing new, nothing to write");
}

#[test]
fn create_relations_skips_existing_ones_and_does_not_require_endpoints() {
    let mut graph = sample();
    let (created, plan) = graph.plan_create_relations(vec![
        relation("Alice", "Bob", "knows"),
        relation("Bob", "Alice", "knows"),
        relation("Bob", "Alice", "knows"),
        relation("X", "Y", "z"),
    ]);
    assert_eq!(
        created,
        vec![relation("Bob", "Alice", "knows"), relation("X", "Y", "z")]
    );
    let plan = plan.expect("two new relations");
    let touched: HashSet<String> = ["Alice", "Bob", "X", "Y"].map(String::from).into();
    assert_eq!(plan.touched(), &touched);
    apply_checked(&mut graph, plan);
    assert_eq!(graph.relation_count(), 5);
}

#[test]
fn add_observations_follows_the_reference_including_repeats_in_one_list() {
    let mut graph = sample();
    let (results, plan) = graph
        .plan_add_observations(vec![
            ObservationAddition {
                entity_name: "Alice".to_owned(),
                contents: vec!["Likes tea".into(), "new".into(), "dup".into(), "dup".into()],
            },
            ObservationAddition {
                entity_name: "Alice".to_owned(),
                contents: vec!["new".into(), "later".into()],
            },
            ObservationAddition {
                entity_name: "Carol".to_owned(),
                contents: vec![],
            },
        ])
        .expect("all entities exist");
    let added: Vec<Vec<String>> = results
        .iter()
        .map(|r| r.added_observations.clone())
        .collect();
    assert_eq!(
        added,
        vec![
            vec!["new".to_owned(), "dup".to_owned(), "dup".to_owned()],
            vec!["later".to_owned()],
            vec![],
        ]
    );
    let plan = plan.expect("Alice changes");
    assert!(!plan.is_append());
    assert_eq!(plan.touched(), &HashSet::from(["Alice".to_owned()]));
    apply_checked(&mut graph, plan);
    assert_eq!(
        graph.open(&["Alice".to_owned()]).entities[0].observations,
        ["Likes tea", "Works at ACME", "new", "dup", "dup", "later"]
    );
}

#[test]
fn add_observations_to_an_unknown_entity_changes_nothing() {
    let graph = sample();
    let outcome = graph.plan_add_observations(vec![
        ObservationAddition {
            entity_name: "Alice".to_owned(),
            contents: vec!["would be new".into()],
        },
        ObservationAddition {
            entity_name: "Nobody".to_owned(),
            contents: vec!["x".into()],
        },
    ]);
    assert_eq!(outcome.err(), Some(UnknownEntity("Nobody".to_owned())));
}

#[test]
fn delete_entities_removes_incident_relations_even_for_names_without_entities() {
    let mut graph = sample();
    let plan = graph
        .plan_delete_entities(vec![
            "Bob".to_owned(),
            "Ghost".to_owned(),
            "Nobody".to_owned(),
        ])
        .expect("Bob exists");
    let touched: HashSet<String> = ["Alice", "Bob", "Carol", "Ghost"].map(String::from).into();
    assert_eq!(plan.touched(), &touched);
    apply_checked(&mut graph, plan);
    let all = graph.read();
    assert_eq!(names(&all), ["Alice", "Carol"]);
    assert!(all.relations.is_empty(), "{:?}", all.relations);

    assert!(
        graph
            .plan_delete_entities(vec!["Nobody".to_owned()])
            .is_none()
    );
}

#[test]
fn delete_observations_removes_every_occurrence_and_ignores_unknown_entities() {
    let mut graph = sample();
    let (_, plan) = graph
        .plan_add_observations(vec![ObservationAddition {
            entity_name: "Bob".to_owned(),
            contents: vec!["x".into(), "x".into(), "y".into()],
        }])
        .expect("Bob exists");
    apply_checked(&mut graph, plan.expect("Bob changes"));
    let plan = graph
        .plan_delete_observations(vec![
            ObservationDeletion {
                entity_name: "Bob".to_owned(),
                observations: vec!["x".into(), "absent".into()],
            },
            ObservationDeletion {
                entity_name: "Nobody".to_owned(),
                observations: vec!["x".into()],
            },
        ])
        .expect("Bob loses x");
    assert_eq!(plan.touched(), &HashSet::from(["Bob".to_owned()]));
    apply_checked(&mut graph, plan);
    assert_eq!(
        graph.open(&["Bob".to_owned()]).entities[0].observations,
        ["Plays chess", "y"]
    );
    let nothing = graph.plan_delete_observations(vec![ObservationDeletion {
        entity_name: "Bob".to_owned(),
        observations: vec!["x".into()],
    }]);
    assert!(nothing.is_none());
}

#[test]
fn delete_relations_removes_only_exact_matches() {
    let mut graph = sample();
    let plan = graph
        .plan_delete_relations(vec![
            relation("Alice", "Bob", "knows"),
            relation("Bob", "Carol", "likes"),
        ])
        .expect("one exists");
    apply_checked(&mut graph, plan);
    assert_eq!(
        graph.read().relations,
        vec![
            relation("Bob", "Carol", "knows"),
            relation("Alice", "Ghost", "mentors")
        ]
    );
    assert!(
        graph
            .plan_delete_relations(vec![relation("Alice", "Bob", "knows")])
            .is_none()
    );
}

#[test]
fn search_is_a_case_insensitive_substring_match_on_name_type_and_observations() {
    let graph = sample();
    assert_eq!(names(&graph.search("ALI")), ["Alice"]);
    assert_eq!(names(&graph.search("person")), ["Alice", "Bob"]);
    assert_eq!(names(&graph.search("acme")), ["Alice"]);
    assert_eq!(names(&graph.search("")), ["Alice", "Bob", "Carol"]);
    assert!(graph.search("nothing like it").entities.is_empty());
    // Relations come along when at least one end matched.
    assert_eq!(
        graph.search("carol").relations,
        vec![relation("Bob", "Carol", "knows")]
    );
    assert!(graph.search("nothing").relations.is_empty());
}

#[test]
fn search_folds_non_ascii_case() {
    let mut graph = Graph::default();
    let (_, plan) = graph.plan_create_entities(vec![entity("Zoë", "ÄRZTIN", &["ΣΟΦΊΑ"])]);
    graph.apply(plan.expect("new"));
    assert_eq!(names(&graph.search("ärztin")), ["Zoë"]);
    assert_eq!(names(&graph.search("ZOË")), ["Zoë"]);
    assert_eq!(names(&graph.search("σοφία")), ["Zoë"]);
}

#[test]
fn open_returns_graph_order_ignores_unknown_names_and_brings_incident_relations() {
    let graph = sample();
    let opened = graph.open(&[
        "Carol".to_owned(),
        "Nobody".to_owned(),
        "Alice".to_owned(),
        "Alice".to_owned(),
    ]);
    assert_eq!(names(&opened), ["Alice", "Carol"]);
    assert_eq!(
        opened.relations,
        vec![
            relation("Alice", "Bob", "knows"),
            relation("Bob", "Carol", "knows"),
            relation("Alice", "Ghost", "mentors"),
        ]
    );
    let one = graph.entity("Carol").expect("Carol exists");
    assert_eq!(names(&one), ["Carol"]);
    assert_eq!(one.relations, vec![relation("Bob", "Carol", "knows")]);
    assert!(graph.entity("Nobody").is_none());
}

#[test]
fn loading_merges_a_repeated_entity_and_drops_a_repeated_relation() {
    let mut graph = Graph::default();
    assert_eq!(
        graph.load_entity(entity("A", "t", &["1", "2"])),
        Loaded::New
    );
    assert_eq!(
        graph.load_entity(entity("A", "t", &["2", "3"])),
        Loaded::MergedEntity {
            type_conflict: false
        }
    );
    assert_eq!(
        graph.load_entity(entity("A", "other", &[])),
        Loaded::MergedEntity {
            type_conflict: true
        }
    );
    assert_eq!(graph.load_relation(relation("A", "B", "r")), Loaded::New);
    assert_eq!(
        graph.load_relation(relation("A", "B", "r")),
        Loaded::DuplicateRelation
    );
    let all = graph.read();
    assert_eq!(all.entities, vec![entity("A", "t", &["1", "2", "3"])]);
    assert_eq!(all.relations.len(), 1);
}

#[test]
fn lines_use_the_reference_key_order() {
    let mut graph = Graph::default();
    let (_, plan) = graph.plan_create_entities(vec![entity("A \"q\"", "t", &["o\nx"])]);
    graph.apply(plan.expect("new"));
    let (_, plan) = graph.plan_create_relations(vec![relation("A", "B", "r")]);
    graph.apply(plan.expect("new"));
    let mut out = Vec::new();
    graph.write_snapshot(None, &mut out).expect("in memory");
    assert_eq!(
        String::from_utf8_lossy(&out),
        concat!(
            r#"{"type":"entity","name":"A \"q\"","entityType":"t","observations":["o\nx"]}"#,
            "\n",
            r#"{"type":"relation","from":"A","to":"B","relationType":"r"}"#,
            "\n",
        )
    );
}
