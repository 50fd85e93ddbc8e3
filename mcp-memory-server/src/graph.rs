//! The knowledge graph in memory and the pure (I/O-free) logic of the nine tools.
//!
//! Entities are kept in an insertion-ordered map keyed by name and relations in an
//! insertion-ordered set, so answers list things in the same order as the reference server
//! (which keeps plain arrays in file order) while lookups and duplicate checks are O(1).
//!
//! Every mutation is split in two: a *plan*, computed read-only from the current graph, and its
//! *application*. The store makes a plan durable on disk between the two steps, so a failed
//! write never leaves the in-memory graph ahead of the file and nothing ever has to be undone.
//!
//! Semantics follow `@modelcontextprotocol/server-memory@2026.8.31` call for call (see the
//! differential tests), with one deliberate difference: a batch that names the same entity (or
//! the same relation) twice creates it once. The reference would store two entities with one
//! name, which its own lookups (`add_observations`, `open_nodes`) then treat inconsistently.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use indexmap::{IndexMap, IndexSet};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// A node of the graph, exactly as the tools and the file spell it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entity {
    pub(crate) name: String,
    pub(crate) entity_type: String,
    pub(crate) observations: Vec<String>,
}

/// A directed, typed edge between two entity names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Relation {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) relation_type: String,
}

/// A (sub)graph as `read_graph`, `search_nodes` and `open_nodes` return it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct KnowledgeGraph {
    pub(crate) entities: Vec<Entity>,
    pub(crate) relations: Vec<Relation>,
}

/// One item of an `add_observations` call.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ObservationAddition {
    pub(crate) entity_name: String,
    pub(crate) contents: Vec<String>,
}

/// One item of an `add_observations` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AddedObservations {
    pub(crate) entity_name: String,
    pub(crate) added_observations: Vec<String>,
}

/// One item of a `delete_observations` call.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ObservationDeletion {
    pub(crate) entity_name: String,
    pub(crate) observations: Vec<String>,
}

/// `add_observations` named an entity that does not exist; nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UnknownEntity(pub(crate) String);

/// An entity plus its case-folded text, so a search does not lower-case the graph each time.
#[derive(Clone, Debug)]
struct Node {
    entity: Entity,
    folded_name: String,
    folded_type: String,
    folded_observations: Vec<String>,
}

impl Node {
    fn new(entity: Entity) -> Self {
        Self {
            folded_name: entity.name.to_lowercase(),
            folded_type: entity.entity_type.to_lowercase(),
            folded_observations: fold_all(&entity.observations),
            entity,
        }
    }

    fn set_observations(&mut self, observations: Vec<String>) {
        self.folded_observations = fold_all(&observations);
        self.entity.observations = observations;
    }

    /// The reference's test: a case-insensitive substring of the name, the type or any
    /// observation (`needle` is already lower-cased).
    fn matches(&self, needle: &str) -> bool {
        self.folded_name.contains(needle)
            || self.folded_type.contains(needle)
            || self.folded_observations.iter().any(|o| o.contains(needle))
    }
}

fn fold_all(texts: &[String]) -> Vec<String> {
    texts.iter().map(|text| text.to_lowercase()).collect()
}

/// A change to the graph, computed but not applied yet.
#[derive(Debug)]
pub(crate) struct Plan {
    kind: PlanKind,
    /// Entities whose own resource (`memory://entities/{name}`) changes.
    touched: HashSet<String>,
}

#[derive(Debug)]
enum PlanKind {
    AppendEntities(Vec<Entity>),
    AppendRelations(Vec<Relation>),
    /// Entity index → observations to append, in order.
    AddObservations(HashMap<usize, Vec<String>>),
    /// Names whose entities and incident relations go.
    DeleteEntities(HashSet<String>),
    /// Entity index → observations to remove.
    DeleteObservations(HashMap<usize, HashSet<String>>),
    DeleteRelations(HashSet<Relation>),
}

impl Plan {
    /// True when the change only adds records, so it can be appended to the file as is.
    pub(crate) fn is_append(&self) -> bool {
        matches!(
            self.kind,
            PlanKind::AppendEntities(_) | PlanKind::AppendRelations(_)
        )
    }

    /// The entities whose own resource changes.
    pub(crate) fn touched(&self) -> &HashSet<String> {
        &self.touched
    }

    /// Writes the records this plan adds, one JSON line each (append plans only).
    pub(crate) fn write_appended(&self, out: &mut impl Write) -> io::Result<()> {
        match &self.kind {
            PlanKind::AppendEntities(entities) => {
                for entity in entities {
                    write_entity(out, &entity.name, &entity.entity_type, &entity.observations)?;
                }
            }
            PlanKind::AppendRelations(relations) => {
                for relation in relations {
                    write_relation(out, relation)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The graph: entities by name in insertion order, relations as an ordered set.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    nodes: IndexMap<String, Node>,
    relations: IndexSet<Relation>,
}

/// What loading a record did, so the loader can report duplicates it merged.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Loaded {
    New,
    /// An entity of this name was already loaded: observations merged, first type kept.
    MergedEntity {
        type_conflict: bool,
    },
    DuplicateRelation,
}

impl Graph {
    /// Number of entities.
    pub(crate) fn entity_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of relations.
    pub(crate) fn relation_count(&self) -> usize {
        self.relations.len()
    }

    /// Adds an entity read from the file. A second record with the same name (which the
    /// reference can write) is merged into the first rather than dropped.
    pub(crate) fn load_entity(&mut self, entity: Entity) -> Loaded {
        match self.nodes.get_mut(&entity.name) {
            None => {
                self.nodes.insert(entity.name.clone(), Node::new(entity));
                Loaded::New
            }
            Some(node) => {
                let type_conflict = node.entity.entity_type != entity.entity_type;
                let mut observations = node.entity.observations.clone();
                for observation in entity.observations {
                    if !observations.contains(&observation) {
                        observations.push(observation);
                    }
                }
                node.set_observations(observations);
                Loaded::MergedEntity { type_conflict }
            }
        }
    }

    /// Adds a relation read from the file; an exact duplicate carries nothing and is dropped.
    pub(crate) fn load_relation(&mut self, relation: Relation) -> Loaded {
        if self.relations.insert(relation) {
            Loaded::New
        } else {
            Loaded::DuplicateRelation
        }
    }

    /// `create_entities`: the entities whose names are new, in call order; `None` when every
    /// name exists already.
    pub(crate) fn plan_create_entities(
        &self,
        entities: Vec<Entity>,
    ) -> (Vec<Entity>, Option<Plan>) {
        let mut seen = HashSet::new();
        let created: Vec<Entity> = entities
            .into_iter()
            .filter(|e| !self.nodes.contains_key(&e.name) && seen.insert(e.name.clone()))
            .collect();
        if created.is_empty() {
            return (created, None);
        }
        let plan = Plan {
            touched: seen,
            kind: PlanKind::AppendEntities(created.clone()),
        };
        (created, Some(plan))
    }

    /// `create_relations`: the relations that are new, in call order. Endpoints need not exist
    /// (the reference does not check them either).
    pub(crate) fn plan_create_relations(
        &self,
        relations: Vec<Relation>,
    ) -> (Vec<Relation>, Option<Plan>) {
        let mut seen = HashSet::new();
        let created: Vec<Relation> = relations
            .into_iter()
            .filter(|r| !self.relations.contains(r) && seen.insert(r.clone()))
            .collect();
        if created.is_empty() {
            return (created, None);
        }
        let touched = endpoints(&created);
        let plan = Plan {
            touched,
            kind: PlanKind::AppendRelations(created.clone()),
        };
        (created, Some(plan))
    }

    /// `add_observations`: per item, the contents the entity did not have yet (an earlier item
    /// of the same call counts). Fails as a whole, changing nothing, on an unknown entity.
    pub(crate) fn plan_add_observations(
        &self,
        additions: Vec<ObservationAddition>,
    ) -> Result<(Vec<AddedObservations>, Option<Plan>), UnknownEntity> {
        let mut pending: HashMap<usize, Vec<String>> = HashMap::new();
        let mut results = Vec::with_capacity(additions.len());
        for addition in additions {
            let Some((index, _, node)) = self.nodes.get_full(&addition.entity_name) else {
                return Err(UnknownEntity(addition.entity_name));
            };
            let earlier = pending.get(&index).map(Vec::as_slice).unwrap_or_default();
            // Like the reference, duplicates within one `contents` list are all added: the
            // filter looks only at what the entity had before this item.
            let added: Vec<String> = addition
                .contents
                .into_iter()
                .filter(|c| !node.entity.observations.contains(c) && !earlier.contains(c))
                .collect();
            if !added.is_empty() {
                pending
                    .entry(index)
                    .or_default()
                    .extend(added.iter().cloned());
            }
            results.push(AddedObservations {
                entity_name: addition.entity_name,
                added_observations: added,
            });
        }
        if pending.is_empty() {
            return Ok((results, None));
        }
        let touched = pending.keys().map(|&index| self.name_at(index)).collect();
        let plan = Plan {
            touched,
            kind: PlanKind::AddObservations(pending),
        };
        Ok((results, Some(plan)))
    }

    /// `delete_entities`: the named entities and every relation that starts or ends at one of
    /// the names (even a name with no entity). `None` when nothing matches.
    pub(crate) fn plan_delete_entities(&self, names: Vec<String>) -> Option<Plan> {
        let names: HashSet<String> = names.into_iter().collect();
        let mut touched: HashSet<String> = names
            .iter()
            .filter(|name| self.nodes.contains_key(*name))
            .cloned()
            .collect();
        for relation in &self.relations {
            if names.contains(&relation.from) || names.contains(&relation.to) {
                touched.insert(relation.from.clone());
                touched.insert(relation.to.clone());
            }
        }
        if touched.is_empty() {
            return None;
        }
        Some(Plan {
            touched,
            kind: PlanKind::DeleteEntities(names),
        })
    }

    /// `delete_observations`: removes every occurrence of the listed observations; unknown
    /// entities are ignored, as in the reference.
    pub(crate) fn plan_delete_observations(
        &self,
        deletions: Vec<ObservationDeletion>,
    ) -> Option<Plan> {
        let mut removals: HashMap<usize, HashSet<String>> = HashMap::new();
        for deletion in deletions {
            let Some((index, _, node)) = self.nodes.get_full(&deletion.entity_name) else {
                continue;
            };
            let present: Vec<String> = deletion
                .observations
                .into_iter()
                .filter(|o| node.entity.observations.contains(o))
                .collect();
            if !present.is_empty() {
                removals.entry(index).or_default().extend(present);
            }
        }
        if removals.is_empty() {
            return None;
        }
        let touched = removals.keys().map(|&index| self.name_at(index)).collect();
        Some(Plan {
            touched,
            kind: PlanKind::DeleteObservations(removals),
        })
    }

    /// `delete_relations`: removes the listed relations that exist.
    pub(crate) fn plan_delete_relations(&self, relations: Vec<Relation>) -> Option<Plan> {
        let doomed: HashSet<Relation> = relations
            .into_iter()
            .filter(|r| self.relations.contains(r))
            .collect();
        if doomed.is_empty() {
            return None;
        }
        Some(Plan {
            touched: endpoints(&doomed),
            kind: PlanKind::DeleteRelations(doomed),
        })
    }

    fn name_at(&self, index: usize) -> String {
        self.nodes
            .get_index(index)
            .map(|(name, _)| name.clone())
            .unwrap_or_default()
    }

    /// Applies a plan made from this very graph (the store holds its lock in between).
    pub(crate) fn apply(&mut self, plan: Plan) {
        match plan.kind {
            PlanKind::AppendEntities(entities) => {
                for entity in entities {
                    self.nodes.insert(entity.name.clone(), Node::new(entity));
                }
            }
            PlanKind::AppendRelations(relations) => self.relations.extend(relations),
            PlanKind::AddObservations(additions) => {
                for (index, added) in additions {
                    if let Some((_, node)) = self.nodes.get_index_mut(index) {
                        let mut observations = node.entity.observations.clone();
                        observations.extend(added);
                        node.set_observations(observations);
                    }
                }
            }
            PlanKind::DeleteEntities(names) => {
                self.nodes.retain(|name, _| !names.contains(name));
                self.relations
                    .retain(|r| !names.contains(&r.from) && !names.contains(&r.to));
            }
            PlanKind::DeleteObservations(removals) => {
                for (index, removed) in removals {
                    if let Some((_, node)) = self.nodes.get_index_mut(index) {
                        let kept = node
                            .entity
                            .observations
                            .iter()
                            .filter(|o| !removed.contains(*o))
                            .cloned()
                            .collect();
                        node.set_observations(kept);
                    }
                }
            }
            PlanKind::DeleteRelations(doomed) => self.relations.retain(|r| !doomed.contains(r)),
        }
    }

    /// Writes the whole graph as it will be once `plan` is applied (or as it is, without one):
    /// every entity line, then every relation line, each ending in a newline. This is the
    /// reference's layout, so either server reads the other's file.
    pub(crate) fn write_snapshot(
        &self,
        plan: Option<&Plan>,
        out: &mut impl Write,
    ) -> io::Result<()> {
        let kind = plan.map(|p| &p.kind);
        for (index, (name, node)) in self.nodes.iter().enumerate() {
            let entity = &node.entity;
            match kind {
                Some(PlanKind::DeleteEntities(names)) if names.contains(name) => continue,
                Some(PlanKind::AddObservations(additions)) if additions.contains_key(&index) => {
                    let all: Vec<&String> = entity
                        .observations
                        .iter()
                        .chain(additions.get(&index).into_iter().flatten())
                        .collect();
                    write_entity(out, name, &entity.entity_type, &all)?;
                }
                Some(PlanKind::DeleteObservations(removals)) if removals.contains_key(&index) => {
                    let removed = removals.get(&index);
                    let kept: Vec<&String> = entity
                        .observations
                        .iter()
                        .filter(|o| !removed.is_some_and(|r| r.contains(*o)))
                        .collect();
                    write_entity(out, name, &entity.entity_type, &kept)?;
                }
                _ => write_entity(out, name, &entity.entity_type, &entity.observations)?,
            }
        }
        if let Some(PlanKind::AppendEntities(entities)) = kind {
            for entity in entities {
                write_entity(out, &entity.name, &entity.entity_type, &entity.observations)?;
            }
        }
        for relation in &self.relations {
            let dropped = match kind {
                Some(PlanKind::DeleteEntities(names)) => {
                    names.contains(&relation.from) || names.contains(&relation.to)
                }
                Some(PlanKind::DeleteRelations(doomed)) => doomed.contains(relation),
                _ => false,
            };
            if !dropped {
                write_relation(out, relation)?;
            }
        }
        if let Some(PlanKind::AppendRelations(relations)) = kind {
            for relation in relations {
                write_relation(out, relation)?;
            }
        }
        Ok(())
    }

    /// `read_graph`.
    pub(crate) fn read(&self) -> KnowledgeGraph {
        KnowledgeGraph {
            entities: self.nodes.values().map(|n| n.entity.clone()).collect(),
            relations: self.relations.iter().cloned().collect(),
        }
    }

    /// `search_nodes`: entities whose name, type or any observation contains `query`, ignoring
    /// case, and the relations with at least one end among them.
    pub(crate) fn search(&self, query: &str) -> KnowledgeGraph {
        let needle = query.to_lowercase();
        let entities: Vec<Entity> = self
            .nodes
            .values()
            .filter(|node| node.matches(&needle))
            .map(|node| node.entity.clone())
            .collect();
        self.with_incident_relations(entities)
    }

    /// `open_nodes`: the named entities (in graph order, unknown names ignored) and the
    /// relations with at least one end among them.
    pub(crate) fn open(&self, names: &[String]) -> KnowledgeGraph {
        let mut indices: Vec<usize> = names
            .iter()
            .filter_map(|name| self.nodes.get_index_of(name))
            .collect();
        indices.sort_unstable();
        indices.dedup();
        let entities = indices
            .into_iter()
            .filter_map(|index| self.nodes.get_index(index))
            .map(|(_, node)| node.entity.clone())
            .collect();
        self.with_incident_relations(entities)
    }

    /// One entity and its incident relations, for `memory://entities/{name}`.
    pub(crate) fn entity(&self, name: &str) -> Option<KnowledgeGraph> {
        let node = self.nodes.get(name)?;
        Some(self.with_incident_relations(vec![node.entity.clone()]))
    }

    fn with_incident_relations(&self, entities: Vec<Entity>) -> KnowledgeGraph {
        let names: HashSet<&str> = entities.iter().map(|e| e.name.as_str()).collect();
        let relations = self
            .relations
            .iter()
            .filter(|r| names.contains(r.from.as_str()) || names.contains(r.to.as_str()))
            .cloned()
            .collect();
        KnowledgeGraph {
            entities,
            relations,
        }
    }
}

fn endpoints<'a>(relations: impl IntoIterator<Item = &'a Relation>) -> HashSet<String> {
    relations
        .into_iter()
        .flat_map(|r| [r.from.clone(), r.to.clone()])
        .collect()
}

/// One line of the file, as it is read. Unknown fields are ignored (the reference drops them
/// too); an unknown `type` is an error rather than a silently lost record.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum Record {
    Entity(Entity),
    Relation(Relation),
}

/// An entity line with the reference's key order: `type`, `name`, `entityType`, `observations`.
#[derive(Serialize)]
struct EntityLine<'a, O> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    #[serde(rename = "entityType")]
    entity_type: &'a str,
    observations: O,
}

/// A relation line with the reference's key order: `type`, `from`, `to`, `relationType`.
#[derive(Serialize)]
struct RelationLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    from: &'a str,
    to: &'a str,
    #[serde(rename = "relationType")]
    relation_type: &'a str,
}

fn write_entity<O: Serialize>(
    out: &mut impl Write,
    name: &str,
    entity_type: &str,
    observations: O,
) -> io::Result<()> {
    let line = EntityLine {
        kind: "entity",
        name,
        entity_type,
        observations,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}

fn write_relation(out: &mut impl Write, relation: &Relation) -> io::Result<()> {
    let line = RelationLine {
        kind: "relation",
        from: &relation.from,
        to: &relation.to,
        relation_type: &relation.relation_type,
    };
    serde_json::to_writer(&mut *out, &line)?;
    out.write_all(b"\n")
}
