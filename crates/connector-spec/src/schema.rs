//! The JSON Schema of the spec language, generated from the types.

use crate::Spec;

/// The JSON Schema (draft 2020-12) that editors validate connector files with.
/// `schemas/connector.schema.json` is this value, pretty-printed.
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<Spec>();
    let mut value = serde_json::to_value(&schema).expect("a schema serializes");
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "$id".into(),
            "https://connector-run.dev/schemas/connector.schema.json".into(),
        );
    }
    value
}

/// The schema as committed: pretty JSON with a final newline.
pub fn json_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&json_schema()).expect("a schema serializes");
    s.push('\n');
    s
}
