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
    rename: Vec<(String, String)>,
    remove: Vec<String>,
    add: Vec<(String, CompiledTemplate)>,
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
            rename: r
                .rename_fields
                .iter()
                .map(|(a, b)| (a.clone(), b.clone()))
                .collect(),
            remove: r.remove_fields.clone(),
            add: r
                .add_fields
                .iter()
                .map(|(k, t)| Ok((k.clone(), b.add(t.as_str())?)))
                .collect::<Result<_>>()?,
        })
    }

    /// The member path of a selector that only moves records (no filter or
    /// reshaping): such records may stay raw JSON text.
    pub fn raw_path(&self) -> Option<&[String]> {
        let plain =
            !self.needs_record_context() && self.rename.is_empty() && self.remove.is_empty();
        self.members.as_deref().filter(|_| plain)
    }

    pub fn needs_record_context(&self) -> bool {
        self.filter.is_some() || !self.add.is_empty()
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

    /// Applies filter and transformations in place; false when filtered out.
    pub fn transform(
        &self,
        record: &mut Value,
        templates: &Templates,
        ctx: &Context,
    ) -> Result<bool> {
        if self.needs_record_context() {
            let mut c = ctx.clone();
            c.record = Some(crate::template::to_value(&*record));
            let cv = c.to_value();
            if let Some(f) = &self.filter
                && !templates.test(f, &cv)?
            {
                return Ok(false);
            }
            self.reshape(record);
            for (k, t) in &self.add {
                let v = templates.render_value(t, &cv)?;
                if let Value::Object(m) = record {
                    m.insert(k.clone(), v);
                }
            }
        } else {
            self.reshape(record);
        }
        Ok(true)
    }

    fn reshape(&self, record: &mut Value) {
        let Value::Object(m) = record else { return };
        for (from, to) in &self.rename {
            if let Some(v) = m.shift_remove(from) {
                m.insert(to.clone(), v);
            }
        }
        for k in &self.remove {
            m.shift_remove(k);
        }
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
