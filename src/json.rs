//! JSON objects whose member names are unique. RFC 8259 §4 leaves duplicate names to the
//! parser, and parsers disagree (first wins, last wins, error): a token or document with
//! `"sub"` twice could mean one subject to the gateway and another to whoever reads it next.
//! RFC 7519 §4 lets a JWT parser refuse them; the gateway does, at every depth.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses a JSON object, refusing duplicate names anywhere in it.
pub fn object_with_unique_names(bytes: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Unique.deserialize(&mut de)?;
    de.end()?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(de::Error::custom("not a JSON object")),
    }
}

/// A `Value` seed whose maps refuse a name they have already seen.
#[derive(Clone, Copy)]
struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Unique)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value_seed(Unique)?;
            if object.insert(name, value).is_some() {
                return Err(de::Error::custom("a member name appears twice"));
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_repeated_names_at_any_depth() {
        let ok = object_with_unique_names(br#"{"a":1,"b":{"c":[{"d":null}]},"e":"x"}"#).unwrap();
        assert_eq!(ok["b"]["c"][0]["d"], Value::Null);
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"a":1,"b":{"c":[{"d":null}]},"e":"x"}"#
        );
        for bad in [
            &br#"{"sub":"a","sub":"b"}"#[..],
            br#"{"x":{"y":1,"y":2}}"#,
            br#"{"x":[{"y":1,"y":2}]}"#,
            br#"[1]"#,
            br#"{"a":1} x"#,
        ] {
            assert!(
                object_with_unique_names(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
