//! Finding connector files: a path, or a name in the connectors folder.

use std::path::{Path, PathBuf};

/// Resolves `NAME_OR_PATH`: an existing file, a path-like argument, or
/// `<dir>/<NAME>.yaml`.
pub fn resolve(dir: &Path, name_or_path: &str) -> PathBuf {
    let p = Path::new(name_or_path);
    let looks_like_path = name_or_path.contains('/')
        || name_or_path.ends_with(".yaml")
        || name_or_path.ends_with(".yml");
    if looks_like_path || p.is_file() {
        return p.to_path_buf();
    }
    let yaml = dir.join(format!("{name_or_path}.yaml"));
    if !yaml.exists() {
        let yml = dir.join(format!("{name_or_path}.yml"));
        if yml.exists() {
            return yml;
        }
    }
    yaml
}

/// Every connector file in `dir`, sorted.
pub fn all(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    Ok(files)
}

/// Names of connectors in `dir`, for did-you-mean.
pub fn names(dir: &Path) -> Vec<String> {
    all(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect()
}

/// Reads and parses a connector file into a spec, or the rendered diagnostics.
pub fn load(dir: &Path, name_or_path: &str) -> Result<(PathBuf, connector_spec::Spec), String> {
    let path = resolve(dir, name_or_path);
    let text = match std::fs::read(&path) {
        Ok(bytes) => connector_spec::decode(&bytes, &path.display().to_string())
            .map_err(|d| d.to_string())?,
        Err(e) => {
            let mut msg = format!("{}: error: cannot read connector: {e}", path.display());
            let names = names(dir);
            if let Some(s) =
                connector_spec::did_you_mean(name_or_path, names.iter().map(String::as_str))
            {
                msg.push_str(&format!("\n  hint: did you mean `{s}`?"));
            } else if !names.is_empty() {
                msg.push_str(&format!(
                    "\n  hint: connectors in {}: {}",
                    dir.display(),
                    names.join(", ")
                ));
            }
            return Err(msg);
        }
    };
    connector_spec::parse(&text, &path.display().to_string())
        .map(|spec| (path, spec))
        .map_err(|diags| {
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })
}
