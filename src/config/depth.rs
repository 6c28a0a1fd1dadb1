//! A bound on flow-collection nesting (`[[[…`, `{{{…`), checked before the YAML parser runs:
//! the parser's time grows with the square of the depth (a 200 KB file nested 100,000 deep
//! took 49 s of CPU to refuse), and a reload would wait on it. No configuration needs more
//! than a few levels.

use super::ConfigError;

/// Deeper flow collections are refused.
pub const MAX_FLOW_DEPTH: usize = 32;

/// Refuses `text` if a flow collection in it opens more than [`MAX_FLOW_DEPTH`] levels deep.
/// Quoted scalars and comments are skipped; a `[` or `{` counts only where a collection
/// can start (not inside a plain scalar such as `a[b`).
pub fn check_flow_depth(text: &str) -> Result<(), ConfigError> {
    let mut depth = 0usize;
    let mut previous = b'\n';
    let mut line = 1;
    let mut column = 0;
    let mut bytes = text.bytes().peekable();
    while let Some(b) = bytes.next() {
        column += 1;
        match b {
            b'\n' => {
                line += 1;
                column = 0;
            }
            b'#' if previous.is_ascii_whitespace() => {
                while bytes.next_if(|&c| c != b'\n').is_some() {}
            }
            b'\'' | b'"' if opens_collection(previous) => {
                // A quoted scalar: `''` escapes a single quote, `\` escapes in double quotes.
                while let Some(c) = bytes.next() {
                    if c == b'\n' {
                        line += 1;
                        column = 0;
                    }
                    if b == b'"' && c == b'\\' {
                        bytes.next();
                    } else if c == b && !(b == b'\'' && bytes.next_if_eq(&b'\'').is_some()) {
                        break;
                    }
                }
            }
            b'[' | b'{' if opens_collection(previous) => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err(ConfigError::new(
                        format!("line {line} column {column}"),
                        format!("not valid YAML: nested more than {MAX_FLOW_DEPTH} levels deep"),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if !matches!(b, b' ' | b'\t') {
            previous = b;
        } else if previous != b'\n' {
            previous = b' ';
        }
    }
    Ok(())
}

/// Whether a collection or quoted scalar may start after `previous` (the last byte that was
/// not a blank, or a blank after something): at a line's start, after an indicator
/// (`:`, `-`, `?` followed by a blank), or inside a flow collection.
fn opens_collection(previous: u8) -> bool {
    matches!(previous, b'\n' | b' ' | b'[' | b'{' | b',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_deep_flow_nesting_quickly_and_nothing_else() {
        let deep = format!("listen: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let started = std::time::Instant::now();
        let err = check_flow_depth(&deep).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(err.path, "line 1 column 41");
        let ok = [
            "listen: [127.0.0.1:1]\nroutes: [{ prefix: /a, auth: { provider: x } }]\n",
            "cmd: echo a[b[c[d\n",
            "s: '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[['\n",
            "s: \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[\"\n",
            "# [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\nx: 1\n",
        ];
        for text in ok {
            assert!(check_flow_depth(text).is_ok(), "{text}");
        }
        let nested = format!(
            "x: {}{}",
            "[".repeat(MAX_FLOW_DEPTH),
            "]".repeat(MAX_FLOW_DEPTH)
        );
        assert!(check_flow_depth(&nested).is_ok());
        let mapping = format!("x: {}", "{ a: ".repeat(MAX_FLOW_DEPTH + 1));
        assert!(check_flow_depth(&mapping).is_err());
    }
}
