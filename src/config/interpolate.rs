//! `${VAR}` and `${VAR:-default}` in string values, so secrets stay out of the file.
//!
//! Interpolation runs on the parsed YAML tree, not on the raw text: a secret that contains
//! YAML syntax cannot change the document's structure, and an error can name its key path.

use serde_norway::Value;

use super::ConfigError;

/// Replaces every `${…}` in every string of `value`, reading variables through `lookup`.
pub fn interpolate_tree(
    value: &mut Value,
    path: &mut String,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        Value::String(s) if s.contains("${") => {
            *s = interpolate_str(s, lookup)
                .map_err(|reason| ConfigError::new(path.as_str(), reason))?;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                interpolate_tree(item, path, lookup)?;
                path.truncate(len);
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key.as_str().unwrap_or("?"));
                interpolate_tree(item, path, lookup)?;
                path.truncate(len);
            }
        }
        Value::Tagged(tagged) => interpolate_tree(&mut tagged.value, path, lookup)?,
        _ => {}
    }
    Ok(())
}

/// Expands one string. `$${` stands for a literal `${`.
pub fn interpolate_str(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let body_start = start + 2;
        let end = rest[body_start..]
            .find('}')
            .ok_or_else(|| "unclosed `${` in value".to_string())?;
        let body = &rest[body_start..body_start + end];
        let (name, default) = match body.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (body, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{body}}}` is not a valid variable reference"));
        }
        match (lookup(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(format!("environment variable {name} is not set")),
        }
        rest = &rest[body_start + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_defaulted_and_escaped() {
        assert_eq!(interpolate_str("a ${KEY} b", &env).unwrap(), "a s3cret b");
        assert_eq!(interpolate_str("${NOPE:-x}", &env).unwrap(), "x");
        assert_eq!(interpolate_str("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(interpolate_str("$${KEY}", &env).unwrap(), "${KEY}");
        assert_eq!(
            interpolate_str("${KEY:-x}${KEY}", &env).unwrap(),
            "s3crets3cret"
        );
    }

    #[test]
    fn refuses_missing_and_malformed() {
        assert!(interpolate_str("${NOPE}", &env)
            .unwrap_err()
            .contains("NOPE is not set"));
        assert!(interpolate_str("${KEY", &env)
            .unwrap_err()
            .contains("unclosed"));
        assert!(interpolate_str("${A B}", &env)
            .unwrap_err()
            .contains("not a valid"));
    }

    #[test]
    fn names_the_key_path() {
        let mut v: Value = serde_norway::from_str("routes:\n  - upstream: ${NOPE}\n").unwrap();
        let err = interpolate_tree(&mut v, &mut String::new(), &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "routes[0].upstream: environment variable NOPE is not set"
        );
    }
}
