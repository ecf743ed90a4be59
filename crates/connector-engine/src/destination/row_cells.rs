//! A raw JSON record read straight into one cell per known column, its
//! strings borrowed from the record's text. The Parquet ingest reads records
//! this way instead of building a `serde_json::Value` tree per record (a
//! map, an allocation per key and per string) only to copy it into Arrow
//! builders: the profile of a 200,000-post sync had that tree at over half
//! of the ingest thread. SQLite binds the cells as the row's parameters.
//!
//! A record *fits* when every field with a value has a column and no value
//! would widen its column (the rule of [`Columns::fit`]). Only a record that
//! fits is taken from its cells; the caller reads any other one as a `Value`
//! and fits the columns to it as before, so both ways give the same rows.

use super::schema::{ColumnKind, Columns};
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// One top-level value of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// `null`, or no such field in the record.
    Null,
    Bool(bool),
    Int(i64),
    /// An integer beyond `i64`, kept exactly as text.
    Big(u64),
    Real(f64),
    Str(Cow<'a, str>),
    /// An object or array.
    Nested(Value),
}

impl Cell<'_> {
    /// The kind of column the value needs, as [`ColumnKind::of`] gives for
    /// the same value; `None` for null.
    pub fn kind(&self) -> Option<ColumnKind> {
        Some(match self {
            Cell::Null => return None,
            Cell::Bool(_) => ColumnKind::Boolean,
            Cell::Int(_) => ColumnKind::Integer,
            Cell::Big(_) | Cell::Str(_) => ColumnKind::Text,
            Cell::Real(_) => ColumnKind::Real,
            Cell::Nested(_) => ColumnKind::Json,
        })
    }

    /// The value as JSON text (what `Value::to_string` gives).
    pub fn json_text(&self) -> String {
        match self {
            Cell::Null => "null".into(),
            Cell::Bool(b) => b.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Big(u) => u.to_string(),
            Cell::Real(f) => Value::from(*f).to_string(),
            Cell::Str(s) => Value::from(s.as_ref()).to_string(),
            Cell::Nested(v) => v.to_string(),
        }
    }
}

/// Reads records into cells, one per column of the `Columns` given.
#[derive(Debug, Default)]
pub struct RowCells<'a> {
    cells: Vec<Cell<'a>>,
    /// The record's fields without a column, and whether each has a value
    /// (a field only ever `null` gets no column).
    others: Vec<(Cow<'a, str>, bool)>,
}

impl<'a> RowCells<'a> {
    /// Reads `record`, a JSON object's text. True when it fits the columns
    /// (see the module's overview): the cells then hold the record, `Null`
    /// for fields it lacks. False when it does not fit or is not an object
    /// of valid JSON.
    pub fn read(&mut self, record: &'a [u8], columns: &Columns) -> bool {
        self.cells.clear();
        self.cells.resize(columns.len(), Cell::Null);
        self.others.clear();
        let mut de = serde_json::Deserializer::from_slice(record);
        let row = Row {
            columns,
            cells: &mut self.cells,
            others: &mut self.others,
        };
        if row.deserialize(&mut de).is_err() || de.end().is_err() {
            return false;
        }
        // Judged on each field's last value, which is the one a `Value` keeps.
        let widens = self.cells.iter().zip(&columns.cols).any(|(cell, col)| {
            cell.kind().is_some_and(|kind| {
                let text = match cell {
                    Cell::Str(s) => Some(s.as_ref()),
                    _ => None,
                };
                col.kind.widened_for(kind, text) != col.kind
            })
        });
        !widens && !self.others.iter().any(|(_, has_value)| *has_value)
    }

    /// The cells of the record read last, in column order.
    pub fn cells(&self) -> &[Cell<'a>] {
        &self.cells
    }
}

/// A record's fields into their columns' cells.
struct Row<'c, 'v, 'a> {
    columns: &'c Columns,
    cells: &'v mut Vec<Cell<'a>>,
    others: &'v mut Vec<(Cow<'a, str>, bool)>,
}

impl<'de> DeserializeSeed<'de> for Row<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Row<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let cols = &self.columns.cols;
        // Records mostly list their fields in the columns' order: try the
        // column after the last one found before looking the name up.
        let mut next = 0;
        while let Some(key) = map.next_key_seed(Key)? {
            let cell = map.next_value_seed(CellSeed)?;
            let at = match cols.get(next) {
                Some(c) if c.field == key => Some(next),
                _ => self.columns.index(&key),
            };
            match at {
                Some(i) => {
                    next = i + 1;
                    // A field given twice keeps its last value.
                    self.cells[i] = cell;
                }
                None => {
                    let has_value = !matches!(cell, Cell::Null);
                    match self.others.iter_mut().find(|(k, _)| *k == key) {
                        Some(other) => other.1 = has_value,
                        None => self.others.push((key, has_value)),
                    }
                }
            }
        }
        Ok(())
    }
}

/// An object's key, borrowed when it has no escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

/// One value as a cell.
struct CellSeed;

impl<'de> DeserializeSeed<'de> for CellSeed {
    type Value = Cell<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CellSeed {
    type Value = Cell<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Cell::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Cell::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Cell::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Self::Value, E> {
        Ok(Cell::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(u).map_or(Cell::Big(u), Cell::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Self::Value, E> {
        Ok(Cell::Real(f))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cell::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cell::Str(Cow::Owned(s.to_string())))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cell::Str(Cow::Owned(s)))
    }
    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Cell::Nested)
    }
    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Cell::Nested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn columns(kinds: &[(&str, ColumnKind)]) -> Columns {
        let mut c = Columns::new(&[], 0);
        for (f, k) in kinds {
            c.add(f, *k);
        }
        c
    }

    /// Whether the record fits, and its cells; checked against what
    /// `Columns::fit` makes of the same record as a `Value`.
    fn read(text: &str, cols: &Columns) -> (bool, Vec<Cell<'static>>) {
        let bytes: &'static [u8] = Box::leak(text.as_bytes().to_vec().into_boxed_slice());
        let mut row = RowCells::default();
        let fits = row.read(bytes, cols);
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            let widened = !cols.clone().fit(std::slice::from_ref(&v)).is_empty();
            if v.is_object() {
                assert_eq!(fits, !widened, "{text}");
            }
        }
        (fits, row.cells().to_vec())
    }

    #[test]
    fn a_record_of_known_fields_fits_with_its_values_borrowed() {
        use ColumnKind::*;
        let cols = columns(&[("id", Integer), ("t", Text), ("x", Real), ("j", Json)]);
        let (fits, cells) = read(
            r#"{"t":"a\"b","id":7,"x":1,"j":{"k":[1,2]},"z":null}"#,
            &cols,
        );
        assert!(fits);
        assert_eq!(
            cells,
            vec![
                Cell::Int(7),
                Cell::Str("a\"b".into()),
                Cell::Int(1),
                Cell::Nested(json!({"k": [1, 2]}))
            ]
        );
        let mut row = RowCells::default();
        let text = br#"{"id":1,"t":"plain"}"#;
        assert!(row.read(text, &cols));
        assert!(matches!(&row.cells()[1], Cell::Str(Cow::Borrowed("plain"))));
        assert_eq!(row.cells()[3], Cell::Null, "a missing field is null");
    }

    #[test]
    fn a_new_field_or_a_wider_value_does_not_fit() {
        use ColumnKind::*;
        let cols = columns(&[("id", Integer), ("at", Timestamp), ("d", Date), ("n", Real)]);
        for (text, fits) in [
            (r#"{"id":1,"extra":2}"#, false),
            (r#"{"id":1,"extra":null}"#, true),
            (r#"{"id":1.5}"#, false),
            (r#"{"id":"1"}"#, false),
            (r#"{"id":18446744073709551615}"#, false),
            (r#"{"id":-3,"n":2}"#, true),
            (r#"{"at":"2024-01-02T03:04:05Z","d":"2024-01-02"}"#, true),
            (r#"{"at":"yesterday"}"#, false),
            (r#"{"d":"2024-1-2"}"#, false),
            (r#"{"n":true}"#, false),
            (r#"{"id":1,"id":"x"}"#, false),
            (r#"{"id":"x","id":1}"#, true),
            (r#"{"extra":1,"extra":null}"#, true),
            (r#"{"extra":null,"extra":1}"#, false),
        ] {
            assert_eq!(read(text, &cols).0, fits, "{text}");
        }
    }

    #[test]
    fn what_is_not_one_json_object_does_not_fit() {
        let cols = columns(&[("id", ColumnKind::Integer)]);
        for text in ["[1]", "7", r#"{"id":1} {"id":2}"#, r#"{"id":"#, "{\"id\":1"] {
            assert!(!read(text, &cols).0, "{text}");
        }
    }

    #[test]
    fn cells_give_the_json_text_a_value_does() {
        let cases = [
            "null",
            "true",
            "-12",
            "18446744073709551615",
            "1.0",
            "1e300",
            "0.1",
            r#""é\u00e9\n\"""#,
            r#"{"b":[1,{"c":null}],"a":2}"#,
        ];
        for text in cases {
            let v: Value = serde_json::from_str(text).unwrap();
            let record = format!(r#"{{"v":{text}}}"#);
            let cols = columns(&[("v", ColumnKind::Json)]);
            let record: &'static str = Box::leak(record.into_boxed_str());
            let mut row = RowCells::default();
            row.read(record.as_bytes(), &cols);
            assert_eq!(row.cells()[0].json_text(), v.to_string(), "{text}");
        }
    }
}
