//! `-`: JSON Lines on stdout. Bare records for one stream; with several
//! streams each line is `{"stream": …, "record": …}`.

use super::Destination;
use crate::error::Result;
use serde_json::Value;
use std::io::{BufWriter, Stdout, Write};

pub struct StdoutDestination {
    out: BufWriter<Stdout>,
    tagged: bool,
}

impl StdoutDestination {
    pub fn new(tagged: bool) -> Self {
        StdoutDestination {
            out: BufWriter::with_capacity(256 * 1024, std::io::stdout()),
            tagged,
        }
    }
}

impl Destination for StdoutDestination {
    fn open_stream(&mut self, _stream: &str) -> Result<()> {
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

    fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
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
