//! Record extraction: the JSONPath selector, then filter, rename, remove and
//! add. Simple member paths (`$`, `$.data`, `$.data[*]`) move records out of
//! the page without copying; other paths go through serde_json_path.

use crate::error::Result;
use crate::template::{CompiledTemplate, Context, Templates, TemplatesBuilder};
use connector_spec::Records;
use connector_spec::jsonpath_text::member_chain;
use serde_json::Value;
use serde_json_path::JsonPath;

/// What happens to a record that cannot be a row (`records.on_invalid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInvalid {
    Fail,
    Skip,
}

impl From<connector_spec::InvalidRecords> for OnInvalid {
    fn from(i: connector_spec::InvalidRecords) -> OnInvalid {
        match i {
            connector_spec::InvalidRecords::Fail => OnInvalid::Fail,
            connector_spec::InvalidRecords::Skip => OnInvalid::Skip,
        }
    }
}

pub struct RecordSelector {
    /// `Some(keys)` for a plain member chain; the general path otherwise.
    members: Option<Vec<String>>,
    path: JsonPath,
    path_text: String,
    filter: Option<CompiledTemplate>,
    expand: Option<(String, Vec<(String, String)>)>,
    base: Reshape,
    transforms: Vec<Reshape>,
}

/// One set of field changes, applied where `when` holds (or always).
struct Reshape {
    when: Option<CompiledTemplate>,
    rename: Vec<(String, String)>,
    remove: Vec<String>,
    flatten: Vec<String>,
    add: Vec<(String, CompiledTemplate)>,
}

impl Reshape {
    fn is_empty(&self) -> bool {
        self.when.is_none()
            && self.rename.is_empty()
            && self.remove.is_empty()
            && self.flatten.is_empty()
            && self.add.is_empty()
    }

    fn compile(
        when: Option<&str>,
        rename: &indexmap::IndexMap<String, String>,
        remove: &[String],
        flatten: &[String],
        add: &indexmap::IndexMap<String, connector_spec::Template>,
        b: &mut TemplatesBuilder,
    ) -> Result<Reshape> {
        Ok(Reshape {
            when: when.map(|w| b.add_condition(w)).transpose()?,
            rename: rename.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
            remove: remove.to_vec(),
            flatten: flatten.to_vec(),
            add: add
                .iter()
                .map(|(k, t)| Ok((k.clone(), b.add(t.as_str())?)))
                .collect::<Result<_>>()?,
        })
    }

    /// Renames, removes, flattens; the additions need the record's context.
    fn apply_fields(&self, record: &mut Value) {
        for (from, to) in &self.rename {
            if let Some(v) = take_field(record, from) {
                set_field(record, to, v);
            }
        }
        for k in &self.remove {
            take_field(record, k);
        }
        for f in &self.flatten {
            if let Some(Value::Object(inner)) = take_field(record, f) {
                if let Value::Object(m) = record {
                    for (k, v) in inner {
                        m.entry(k).or_insert(v);
                    }
                }
            }
        }
    }
}

/// Removes a field by dotted path (a key with its dots first).
fn take_field(record: &mut Value, path: &str) -> Option<Value> {
    let Value::Object(m) = record else {
        return None;
    };
    if m.contains_key(path) {
        return m.shift_remove(path);
    }
    let (head, rest) = path.split_once('.')?;
    take_field(m.get_mut(head)?, rest)
}

/// Sets a field by dotted path, making the objects on the way.
fn set_field(record: &mut Value, path: &str, v: Value) {
    let Value::Object(m) = record else { return };
    match path.split_once('.') {
        Some((head, rest)) if !m.contains_key(path) => {
            let inner = m
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Default::default()));
            if !inner.is_object() {
                *inner = Value::Object(Default::default());
            }
            set_field(inner, rest, v);
        }
        _ => {
            m.insert(path.to_string(), v);
        }
    }
}

impl RecordSelector {
    pub fn compile(r: &Records, b: &mut TemplatesBuilder) -> Result<RecordSelector> {
        let path = JsonPath::parse(r.path.as_str()).map_err(|e| {
            crate::EngineError::Plan(format!("JSONPath `{}`: {e}", r.path.as_str()))
        })?;
        Ok(RecordSelector {
            members: member_chain(r.path.as_str()),
            path,
            path_text: r.path.as_str().to_string(),
            filter: r
                .filter
                .as_deref()
                .map(|f| b.add_condition(f))
                .transpose()?,
            expand: r.expand.as_ref().map(|e| {
                (
                    e.path.clone(),
                    e.copy.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                )
            }),
            base: Reshape::compile(
                None,
                &r.rename_fields,
                &r.remove_fields,
                &r.flatten,
                &r.add_fields,
                b,
            )?,
            transforms: r
                .transforms
                .iter()
                .map(|t| {
                    Reshape::compile(
                        t.when.as_deref(),
                        &t.rename_fields,
                        &t.remove_fields,
                        &t.flatten,
                        &t.add_fields,
                        b,
                    )
                })
                .collect::<Result<_>>()?,
        })
    }

    /// The member path of a selector that only moves records (no filter or
    /// reshaping): such records may stay raw JSON text.
    pub fn raw_path(&self) -> Option<&[String]> {
        let plain = self.filter.is_none()
            && self.expand.is_none()
            && self.base.is_empty()
            && self.transforms.is_empty();
        self.members.as_deref().filter(|_| plain)
    }

    /// Expands a record into one record per item of its nested array
    /// (`records.expand`); without it, the record itself.
    pub fn expand(&self, record: Value) -> Vec<Value> {
        let Some((path, copy)) = &self.expand else {
            return vec![record];
        };
        let Some(Value::Array(items)) = crate::record_key::field(&record, path).cloned() else {
            return Vec::new();
        };
        items
            .into_iter()
            .map(|mut item| {
                for (name, from) in copy {
                    if let Some(v) = crate::record_key::field(&record, from) {
                        set_field(&mut item, name, v.clone());
                    }
                }
                item
            })
            .collect()
    }

    /// The number of records in a page body, leaving the body as it is (the
    /// paginator reads the whole body before the records are taken out).
    pub fn count(&self, body: &Value) -> Result<usize, String> {
        if let Some(keys) = &self.members {
            let mut v = body;
            for k in keys {
                match v.get(k.as_str()) {
                    Some(next) => v = next,
                    None => return Err(self.missing(v)),
                }
            }
            return Ok(match v {
                Value::Array(items) => items.len(),
                Value::Null => 0,
                _ => 1,
            });
        }
        let nodes = self.path.query(body);
        if nodes.is_empty() {
            return Err(self.missing(body));
        }
        if nodes.len() == 1
            && let Some(Value::Array(items)) = nodes.first()
        {
            return Ok(items.len());
        }
        Ok(nodes.len())
    }

    /// The member chain of the records path (`$.data` → `["data"]`), for
    /// plain member paths.
    pub fn members(&self) -> Option<&[String]> {
        self.members.as_deref()
    }

    /// Takes the records out of one page body, leaving the rest of the body
    /// (cursors, totals, links) for the paginator. Errors when the path finds
    /// nothing at all (the body has another shape); an empty array is an
    /// empty page.
    pub fn select(&self, body: &mut Value) -> Result<Vec<Value>, String> {
        if let Some(keys) = &self.members {
            let mut v = &mut *body;
            for k in keys {
                if v.get(k.as_str()).is_none() {
                    let shown = v.clone();
                    return Err(self.missing(&shown));
                }
                v = &mut v[k.as_str()];
            }
            return Ok(match v {
                Value::Array(items) => std::mem::take(items),
                Value::Null => Vec::new(),
                // A single record stays in the body too: paginators may read it.
                other => vec![other.clone()],
            });
        }
        let nodes = self.path.query(body);
        if nodes.is_empty() {
            return Err(self.missing(body));
        }
        if nodes.len() == 1
            && let Some(Value::Array(items)) = nodes.first()
        {
            return Ok(items.clone());
        }
        Ok(nodes.all().into_iter().cloned().collect())
    }

    fn missing(&self, body: &Value) -> String {
        let shape = match body {
            Value::Object(m) if m.is_empty() => "an empty object".into(),
            Value::Object(m) => format!(
                "an object with keys {}",
                m.keys()
                    .take(8)
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Array(_) => "an array".into(),
            other => format!(
                "`{}`",
                other.to_string().chars().take(60).collect::<String>()
            ),
        };
        format!(
            "the records path `{}` matches nothing in the response, which is {shape}",
            self.path_text
        )
    }

    /// Applies the filter and the transformations in place; false when
    /// filtered out.
    pub fn transform(
        &self,
        record: &mut Value,
        templates: &Templates,
        ctx: &Context,
    ) -> Result<bool> {
        let context = |record: &Value| {
            let mut c = ctx.clone();
            c.record = Some(crate::template::to_value(record));
            c.to_value()
        };
        if let Some(f) = &self.filter
            && !templates.test(f, &context(record))?
        {
            return Ok(false);
        }
        for r in std::iter::once(&self.base).chain(&self.transforms) {
            if let Some(w) = &r.when
                && !templates.test(w, &context(record))?
            {
                continue;
            }
            // Additions see the record as it was before this step.
            let cv = (!r.add.is_empty()).then(|| context(record));
            r.apply_fields(record);
            if let Some(cv) = cv {
                for (k, t) in &r.add {
                    let v = templates.render_value(t, &cv)?;
                    set_field(record, k, v);
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(path: &str) -> RecordSelector {
        let r = Records {
            path: connector_spec::JsonPath(path.into()),
            ..Default::default()
        };
        RecordSelector::compile(&r, &mut TemplatesBuilder::default()).unwrap()
    }

    #[test]
    fn counting_leaves_the_body_whole() {
        let body = json!({"data": [{"id": 1}, {"id": 2}], "has_more": true});
        assert_eq!(sel("$.data").count(&body).unwrap(), 2);
        assert_eq!(sel("$.data[?@.id > 1]").count(&body).unwrap(), 1);
        assert_eq!(body["data"].as_array().unwrap().len(), 2);
        assert!(sel("$.items").count(&body).is_err());
    }

    #[test]
    fn selects_arrays_objects_and_nested_paths() {
        assert_eq!(
            sel("$")
                .select(&mut json!([{"id": 1}, {"id": 2}]))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            sel("$").select(&mut json!({"id": 1})).unwrap(),
            vec![json!({"id": 1})]
        );
        assert_eq!(
            sel("$.data[*]")
                .select(&mut json!({"data": [{"id": 1}]}))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            sel("$.data")
                .select(&mut json!({"data": []}))
                .unwrap()
                .len(),
            0
        );
        assert_eq!(
            sel("$.a.b")
                .select(&mut json!({"a": {"b": [1, 2, 3]}}))
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            sel("$.data[?@.ok == true]")
                .select(&mut json!({"data": [{"ok": true}, {"ok": false}]}))
                .unwrap()
                .len(),
            1
        );
        let err = sel("$.data")
            .select(&mut json!({"unexpected": true}))
            .unwrap_err();
        assert!(err.contains("`unexpected`"), "{err}");
    }
}

#[cfg(test)]
mod reshape_tests {
    use super::*;
    use serde_json::json;

    fn selector(yaml: &str) -> (RecordSelector, Templates) {
        let r: Records = serde_saphyr::from_str(yaml).unwrap();
        let mut b = TemplatesBuilder::default();
        let s = RecordSelector::compile(&r, &mut b).unwrap();
        (s, b.build())
    }

    fn shape(yaml: &str, record: Value) -> Vec<Value> {
        let (s, t) = selector(yaml);
        s.expand(record)
            .into_iter()
            .filter_map(|mut r| {
                s.transform(&mut r, &t, &Context::default())
                    .unwrap()
                    .then_some(r)
            })
            .collect()
    }

    #[test]
    fn nested_paths_flatten_and_conditions() {
        let got = shape(
            r#"{rename_fields: {"properties.email": contact.email}, remove_fields: [properties.secret], flatten: [properties], add_fields: {"meta.source": hubspot}, transforms: [{when: "record.kind == 'a'", add_fields: {is_a: "{{ true }}"}}]}"#,
            json!({"id": 1, "kind": "a", "properties": {"email": "x@y", "secret": "s", "name": "N", "id": 99}}),
        );
        assert_eq!(
            got,
            vec![
                json!({"id": 1, "kind": "a", "contact": {"email": "x@y"}, "name": "N", "meta": {"source": "hubspot"}, "is_a": true})
            ]
        );
        let other = shape(
            r#"{transforms: [{when: "record.kind == 'a'", remove_fields: [kind]}]}"#,
            json!({"kind": "b"}),
        );
        assert_eq!(other, vec![json!({"kind": "b"})]);
    }

    #[test]
    fn expansion_copies_outer_fields() {
        let got = shape(
            "{expand: {path: line_items, copy: {order_id: id, order_at: meta.at}}}",
            json!({"id": 7, "meta": {"at": "t"}, "line_items": [{"sku": "a"}, {"sku": "b"}]}),
        );
        assert_eq!(
            got,
            vec![
                json!({"sku": "a", "order_id": 7, "order_at": "t"}),
                json!({"sku": "b", "order_id": 7, "order_at": "t"})
            ]
        );
        assert!(shape("{expand: {path: line_items}}", json!({"id": 1})).is_empty());
    }
}
