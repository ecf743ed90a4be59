//! `connector-run state show|reset`.

use crate::cli::{Global, StateAction, StateArgs};
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE, Failure, Outcome, connectors};
use connector_engine::destination::DestinationOptions;
use connector_engine::{DestinationUri, State};

pub fn run(global: &Global, args: &StateArgs) -> Outcome {
    let (_, spec) = match connectors::load(&global.connectors_dir, &args.connector) {
        Ok(x) => x,
        Err(report) => {
            return Err(Failure::Spec(report));
        }
    };
    if let Some(s) = &args.stream
        && !spec.streams.contains_key(s)
    {
        let hint = connector_spec::did_you_mean(s, spec.streams.keys().map(String::as_str))
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        return Err(Failure::Usage(format!(
            "connector `{}` has no stream `{s}`{hint}",
            spec.name
        )));
    }
    let dest_text = args
        .dest
        .clone()
        .unwrap_or_else(|| crate::sync::default_dest(&spec.name));
    let uri = match DestinationUri::parse(&dest_text) {
        Ok(u) => u,
        Err(e) => {
            return Err(Failure::Usage(format!("{e}")));
        }
    };
    if args.state.is_none() && !uri.keeps_state() {
        eprintln!("error: `{dest_text}` keeps no state; name the state file with --state");
        return Ok(EXIT_USAGE);
    }
    let opened = uri.open_with(&DestinationOptions {
        connector: spec.name.clone(),
        streams: Vec::new(),
        state_file: args.state.clone(),
        write_mode: None,
        schemas: Default::default(),
    });
    let mut dest = match opened {
        Ok(d) => d,
        Err(e) => {
            return Err(Failure::Usage(format!("{e}")));
        }
    };
    let mut state = match dest.load_state() {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_FAILURE);
        }
    };
    match args.action {
        StateAction::Show => {
            let shown = match &args.stream {
                Some(s) => serde_json::to_value(state.streams.get(s).cloned().unwrap_or_default()),
                None => serde_json::to_value(&state),
            };
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&shown.unwrap_or_default()).unwrap_or_default()
            );
            Ok(EXIT_OK)
        }
        StateAction::Reset => {
            match &args.stream {
                Some(s) => {
                    state.streams.remove(s);
                }
                None => state = State::default(),
            }
            if let Err(e) = dest.commit(&mut state, true) {
                eprintln!("error: {e}");
                return Ok(EXIT_FAILURE);
            }
            if !global.quiet {
                eprintln!(
                    "state of {} reset in {}",
                    args.stream.as_deref().unwrap_or("every stream"),
                    dest.describe()
                );
            }
            Ok(EXIT_OK)
        }
    }
}
