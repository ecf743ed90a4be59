//! Logs on stderr through tracing: warnings by default, `-v` info (each
//! request with its status, latency and size, waits, retries, resumes),
//! `-vv` debug (request headers, redacted); `RUST_LOG` overrides. Every line
//! has a UTC timestamp. Colours only on a terminal, and never with
//! `NO_COLOR` set. `--log-format json` writes one JSON object per line:
//! `{"time", "level", "stream", "message", "fields"}` for log shippers.

use crate::cli::{Global, LogFormat};
use std::fmt::Write as _;
use std::io::IsTerminal;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub fn init(global: &Global) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info,hyper=warn,reqwest=warn,rustls=warn,h2=warn",
        (false, _) => "debug,hyper=info,reqwest=info,rustls=info,h2=info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour);
    let _ = match global.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.event_format(JsonLines).try_init(),
    };
}

/// One JSON object per event.
struct JsonLines;

/// Collects an event's message and fields.
#[derive(Default)]
struct Fields {
    message: String,
    stream: Option<String>,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        self.put(field, serde_json::Value::String(text));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, serde_json::Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        match (field.name(), value) {
            ("message", serde_json::Value::String(s)) => self.message = s,
            ("stream", serde_json::Value::String(s)) => self.stream = Some(s),
            (name, v) => {
                self.fields.insert(name.to_string(), v);
            }
        }
    }
}

/// The stream a message is about, from its text: `stream posts: …`.
fn stream_of(message: &str) -> Option<String> {
    let rest = message.strip_prefix("stream ")?;
    let name = rest.split([':', ' ', ',']).next()?.trim_matches('`');
    (!name.is_empty()).then(|| name.to_string())
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut f = Fields::default();
        event.record(&mut f);
        let stream = f.stream.clone().or_else(|| stream_of(&f.message));
        let line = serde_json::json!({
            "time": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            "level": event.metadata().level().as_str().to_ascii_lowercase(),
            "stream": stream,
            "message": f.message,
            "fields": f.fields,
        });
        let mut text = String::new();
        let _ = write!(text, "{line}");
        writeln!(writer, "{text}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stream_is_read_from_the_message() {
        assert_eq!(
            super::stream_of("stream posts: resuming").as_deref(),
            Some("posts")
        );
        assert_eq!(super::stream_of("retrying http://x"), None);
    }
}
