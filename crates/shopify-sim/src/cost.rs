//! Shopify's documented query cost model, computed from the parsed document.
//!
//! Scalars and enums cost 0, objects 1, a connection 2 plus one item's cost
//! per requested (`first`/`last`) item, and every mutation field 10. The
//! *requested* cost is known before execution; the *actual* cost replaces the
//! requested item count of each top-level connection by the number of items
//! returned, which is what makes a short last page cheap.
//!
//! The walk is type-agnostic on purpose: a field with a sub-selection is an
//! object, one with `first`/`last` or `edges`/`nodes`/`pageInfo` is a
//! connection. That is exact for the simulated schema and keeps this module
//! independent of it.

use async_graphql::Variables;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet, VariableDefinition,
};
use async_graphql::{Name, Positioned, Value};

/// Cost of each mutation field, whatever it selects.
pub(crate) const MUTATION_COST: u64 = 10;

/// What the document will cost and touch, computed before execution.
#[derive(Debug, Clone, Default)]
pub(crate) struct CostPlan {
    pub requested: u64,
    pub mutation: bool,
    /// Names (not aliases) of the root fields, for counters and logs.
    pub root_fields: Vec<String>,
    connections: Vec<ConnSite>,
}

/// A connection whose returned size can reduce the actual cost.
#[derive(Debug, Clone)]
struct ConnSite {
    /// Response keys from the root to the connection object.
    path: Vec<String>,
    requested_items: u64,
    per_item: u64,
}

/// Picks the operation async-graphql will run, by the same rules.
pub(crate) fn select_operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(map), Some(n)) => map.get(n).map(|op| &op.node),
        (DocumentOperations::Multiple(map), None) if map.len() == 1 => map.values().next().map(|op| &op.node),
        _ => None,
    }
}

impl CostPlan {
    /// The plan for the selected operation of `doc`.
    pub fn of(doc: &ExecutableDocument, op: &OperationDefinition, vars: &Variables) -> Self {
        let mut w = Walk {
            doc,
            vars,
            defs: &op.variable_definitions,
            sites: Vec::new(),
            in_item: false,
        };
        let roots = w.fields(&op.selection_set.node);
        let root_fields: Vec<String> = roots
            .iter()
            .filter(|f| !f.name.node.starts_with("__"))
            .map(|f| f.name.node.to_string())
            .collect();
        if op.ty == OperationType::Mutation {
            return Self {
                requested: MUTATION_COST * root_fields.len() as u64,
                mutation: true,
                root_fields,
                connections: Vec::new(),
            };
        }
        let mut path = Vec::new();
        let requested = roots.iter().map(|f| w.field(f, &mut path)).sum();
        Self {
            requested,
            mutation: false,
            root_fields,
            connections: w.sites,
        }
    }

    /// The actual cost, given the response `data`.
    pub fn actual(&self, data: &Value) -> u64 {
        let mut unused = 0;
        for site in &self.connections {
            let returned = returned_items(data, &site.path).unwrap_or(site.requested_items);
            unused += site.requested_items.saturating_sub(returned) * site.per_item;
        }
        self.requested.saturating_sub(unused)
    }
}

/// Items a connection returned; `None` when that cannot be told from the data
/// (a list on the way, or neither `edges` nor `nodes` selected).
fn returned_items(data: &Value, path: &[String]) -> Option<u64> {
    let mut cur = data;
    for key in path {
        match cur {
            Value::Object(map) => match map.get(key.as_str()) {
                Some(v) => cur = v,
                None => return Some(0),
            },
            Value::Null => return Some(0),
            _ => return None,
        }
    }
    let Value::Object(conn) = cur else {
        return Some(0);
    };
    let len = |k: &str| match conn.get(k) {
        Some(Value::List(items)) => Some(items.len() as u64),
        _ => None,
    };
    match (len("edges"), len("nodes")) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).max(b.unwrap_or(0))),
    }
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    vars: &'a Variables,
    defs: &'a [Positioned<VariableDefinition>],
    sites: Vec<ConnSite>,
    /// Inside a connection item: nested connections are already multiplied
    /// into the item cost, so they must not be refunded separately.
    in_item: bool,
}

impl<'a> Walk<'a> {
    /// The fields of a selection set with fragments flattened and
    /// `@skip`/`@include` applied.
    fn fields(&self, set: &'a SelectionSet) -> Vec<&'a Field> {
        let mut out = Vec::new();
        self.collect(set, &mut out, 0);
        out
    }

    fn collect(&self, set: &'a SelectionSet, out: &mut Vec<&'a Field>, depth: usize) {
        // Fragment cycles are a validation error, but this runs before
        // validation has rejected them.
        if depth > 32 {
            return;
        }
        for sel in &set.items {
            if self.skipped(sel.node.directives()) {
                continue;
            }
            match &sel.node {
                Selection::Field(f) => out.push(&f.node),
                Selection::FragmentSpread(s) => {
                    if let Some(frag) = self.doc.fragments.get(&s.node.fragment_name.node) {
                        self.collect(&frag.node.selection_set.node, out, depth + 1);
                    }
                }
                Selection::InlineFragment(i) => self.collect(&i.node.selection_set.node, out, depth + 1),
            }
        }
    }

    fn skipped(&self, directives: &[Positioned<async_graphql::parser::types::Directive>]) -> bool {
        directives.iter().any(|d| {
            let cond = d
                .node
                .get_argument("if")
                .and_then(|v| v.node.clone().into_const_with(|n| self.variable(n)).ok())
                .and_then(|v| match v {
                    Value::Boolean(b) => Some(b),
                    _ => None,
                });
            matches!(
                (d.node.name.node.as_str(), cond),
                ("skip", Some(true)) | ("include", Some(false))
            )
        })
    }

    /// A variable's value, or its declared default. (The parser's
    /// non-constant `Value` type is not exported, so callers convert with
    /// `into_const_with(|n| self.variable(n))` inline.)
    fn variable(&self, name: Name) -> Result<Value, ()> {
        self.vars
            .get(&name)
            .cloned()
            .or_else(|| {
                self.defs
                    .iter()
                    .find(|d| d.node.name.node == name)
                    .and_then(|d| d.node.default_value().cloned())
            })
            .ok_or(())
    }

    fn arg_u64(&self, f: &Field, name: &str) -> Option<u64> {
        let arg = f.get_argument(name)?.node.clone();
        match arg.into_const_with(|n| self.variable(n)).ok()? {
            Value::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    fn is_connection(&self, f: &'a Field) -> bool {
        f.get_argument("first").is_some()
            || f.get_argument("last").is_some()
            || self
                .fields(&f.selection_set.node)
                .iter()
                .any(|c| matches!(c.name.node.as_str(), "edges" | "nodes" | "pageInfo"))
    }

    fn set(&mut self, set: &'a SelectionSet, path: &mut Vec<String>) -> u64 {
        let fields = self.fields(set);
        fields.into_iter().map(|f| self.field(f, path)).sum()
    }

    fn field(&mut self, f: &'a Field, path: &mut Vec<String>) -> u64 {
        if f.selection_set.node.items.is_empty() {
            return 0;
        }
        path.push(f.response_key().node.to_string());
        let cost = if self.is_connection(f) {
            let items = self
                .arg_u64(f, "first")
                .or_else(|| self.arg_u64(f, "last"))
                .unwrap_or(0);
            let per_item = self.item_cost(f, path);
            if !self.in_item {
                self.sites.push(ConnSite {
                    path: path.clone(),
                    requested_items: items,
                    per_item,
                });
            }
            2 + items * per_item
        } else {
            1 + self.set(&f.selection_set.node, path)
        };
        path.pop();
        cost
    }

    /// One connection item: the node object plus whatever objects it selects,
    /// taking the larger of the `edges { node }` and `nodes` selections.
    fn item_cost(&mut self, conn: &'a Field, path: &mut Vec<String>) -> u64 {
        let outer = std::mem::replace(&mut self.in_item, true);
        let mut nested = 0;
        for child in self.fields(&conn.selection_set.node) {
            match child.name.node.as_str() {
                "edges" => {
                    for g in self.fields(&child.selection_set.node) {
                        if g.name.node == "node" {
                            nested = nested.max(self.set(&g.selection_set.node, path));
                        }
                    }
                }
                "nodes" => nested = nested.max(self.set(&child.selection_set.node, path)),
                _ => {}
            }
        }
        self.in_item = outer;
        1 + nested
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn plan(q: &str, vars: serde_json::Value) -> CostPlan {
        let doc = parse_query(q).unwrap();
        let op = select_operation(&doc, None).unwrap();
        CostPlan::of(&doc, op, &Variables::from_json(vars))
    }

    #[test]
    fn objects_cost_one_and_scalars_nothing() {
        let p = plan("{ shop { name plan { displayName } } }", serde_json::json!({}));
        assert_eq!(p.requested, 2);
        assert_eq!(p.root_fields, vec!["shop"]);
        assert!(!p.mutation);
    }

    #[test]
    fn connection_costs_two_plus_items_and_refunds_the_unreturned() {
        let q = "query($n: Int) { webhookSubscriptions(first: $n) { edges { cursor node { id endpoint { __typename } } } pageInfo { hasNextPage } } }";
        let p = plan(q, serde_json::json!({"n": 250}));
        // Each item is the node plus its `endpoint` object.
        assert_eq!(p.requested, 2 + 250 * 2);
        let data = Value::from_json(serde_json::json!({
            "webhookSubscriptions": {"edges": [{}, {}, {}], "pageInfo": {"hasNextPage": false}}
        }))
        .unwrap();
        assert_eq!(p.actual(&data), 2 + 3 * 2);
        // A null connection (resolver error) returned nothing.
        let data = Value::from_json(serde_json::json!(null)).unwrap();
        assert_eq!(p.actual(&data), 2);
    }

    #[test]
    fn aliases_fragments_and_skip_are_honoured() {
        let q = r#"
            query Q($skip: Boolean = true) {
              a: webhookSubscriptions(first: 10) { nodes { ...F } }
              b: webhookSubscriptions(last: 5) @skip(if: $skip) { nodes { id } }
              shop @include(if: false) { name }
            }
            fragment F on WebhookSubscription { id apiVersion { handle } }
        "#;
        let p = plan(q, serde_json::json!({}));
        assert_eq!(p.requested, 2 + 10 * 2);
        let data = Value::from_json(serde_json::json!({"a": {"nodes": [{}]}})).unwrap();
        assert_eq!(p.actual(&data), 2 + 2);
    }

    #[test]
    fn each_mutation_field_costs_ten() {
        let q = r#"mutation {
            a: webhookSubscriptionDelete(id: "gid://shopify/WebhookSubscription/1") { userErrors { message } }
            b: webhookSubscriptionDelete(id: "gid://shopify/WebhookSubscription/2") { userErrors { message } }
            __typename
        }"#;
        let p = plan(q, serde_json::json!({}));
        assert!(p.mutation);
        assert_eq!(p.requested, 20);
        assert_eq!(p.actual(&Value::Null), 20);
        assert_eq!(p.root_fields.len(), 2);
    }
}
