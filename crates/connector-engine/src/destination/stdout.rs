//! `-`: JSON Lines on stdout. Bare records for one stream; with several
//! streams each line is `{"stream": …, "record": …}`. State is kept only
//! when `--state FILE` names a file.

use super::{Destination, StreamInfo, WriteMode};
use crate::error::Result;
use crate::raw_records::{RawRecords, minify_into};
use crate::state::{State, StateFile};
use serde_json::Value;
use std::io::{BufWriter, Stdout, Write};

pub struct StdoutDestination {
    out: BufWriter<Stdout>,
    tagged: bool,
    state: Option<StateFile>,
}

impl StdoutDestination {
    pub fn new(tagged: bool, state: Option<StateFile>) -> Self {
        StdoutDestination {
            out: BufWriter::with_capacity(256 * 1024, std::io::stdout()),
            tagged,
            state,
        }
    }
}

impl Destination for StdoutDestination {
    fn load_state(&mut self) -> Result<Option<State>> {
        self.state
            .as_ref()
            .map(StateFile::load)
            .transpose()
            .map(Option::flatten)
    }

    fn open_stream(
        &mut self,
        _stream: &StreamInfo,
        _mode: WriteMode,
        _resume: Option<&Value>,
    ) -> Result<()> {
        Ok(())
    }

    fn write_batch(&mut self, stream: &str, records: &[Value]) -> Result<()> {
        for r in records {
            if self.tagged {
                serde_json::to_writer(
                    &mut self.out,
                    &serde_json::json!({ "stream": stream, "record": r }),
                )
                .map_err(std::io::Error::from)?;
            } else {
                serde_json::to_writer(&mut self.out, r).map_err(std::io::Error::from)?;
            }
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn keeps_raw_json(&self) -> bool {
        true
    }

    fn takes_any_json(&self) -> bool {
        true
    }

    fn write_raw(&mut self, stream: &str, records: &RawRecords) -> Result<()> {
        let prefix = self.tagged.then(|| {
            format!(
                "{{\"stream\":{},\"record\":",
                Value::String(stream.to_string())
            )
        });
        let mut lines =
            Vec::with_capacity(records.iter().map(<[u8]>::len).sum::<usize>() + records.len());
        for r in records.iter() {
            if let Some(p) = &prefix {
                lines.extend_from_slice(p.as_bytes());
            }
            minify_into(r, &mut lines);
            if prefix.is_some() {
                lines.push(b'}');
            }
            lines.push(b'\n');
        }
        self.out.write_all(&lines)?;
        Ok(())
    }

    fn commit(&mut self, state: &mut State, durable: bool) -> Result<()> {
        self.out.flush()?;
        if let Some(sf) = &self.state
            && !super::is_preview_commit(state, durable)
        {
            sf.save(state, durable)?;
        }
        Ok(())
    }

    fn close_stream(&mut self, _stream: &str) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }

    fn describe(&self) -> String {
        "stdout".into()
    }
}
