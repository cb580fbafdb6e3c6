//! A serde `Deserializer` over the YAML node tree.
//!
//! The field type decides how a scalar is read, and this avoids the YAML 1.1
//! surprises. A `String` field gets the text exactly as written, so `010`, `no`
//! and `2122:22` stay strings. A `bool` accepts only `true` and `false`, and
//! integers accept only plain decimal numbers. Every error is tagged with the
//! field path and the site of the node it came from.

use std::fmt::Display;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::suggest::unknown_name_message;
use super::yaml::{Entry, Node, Site, Style, Value};

/// A typing error. The innermost node that the error passes through fills in `path` and `site`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    pub message: String,
    pub path: Option<String>,
    pub site: Option<Site>,
    missing_field: Option<&'static str>,
}

impl DeError {
    fn new(message: String) -> Self {
        DeError {
            message,
            path: None,
            site: None,
            missing_field: None,
        }
    }

    /// Attaches a location unless a node nearer the problem already did.
    fn locate(mut self, path: &str, site: &Site) -> Self {
        if self.path.is_none() {
            let path = match self.missing_field {
                Some(field) => child_path(path, field),
                None => path.to_owned(),
            };
            self.path = Some(path);
            self.site = Some(site.clone());
        }
        self
    }
}

impl std::error::Error for DeError {}

impl Display for DeError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl de::Error for DeError {
    fn custom<T: Display>(message: T) -> Self {
        DeError::new(message.to_string())
    }

    fn invalid_type(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        DeError::new(format!("expected {expected}, found {unexpected}"))
    }

    fn invalid_value(unexpected: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        DeError::new(format!("invalid value {unexpected}; expected {expected}"))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(unknown_name_message("field", field, expected))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(unknown_name_message("value", variant, expected))
    }

    fn missing_field(field: &'static str) -> Self {
        let mut error = DeError::new(format!("missing required field `{field}`"));
        error.missing_field = Some(field);
        error
    }
}

pub fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Deserializes `T` from the root node.
pub fn from_node<T: de::DeserializeOwned>(root: &Node) -> Result<T, DeError> {
    let deserializer = NodeDeserializer {
        node: root,
        path: String::new(),
    };
    T::deserialize(deserializer).map_err(|error| error.locate("", &root.site))
}

struct NodeDeserializer<'a> {
    node: &'a Node,
    path: String,
}

impl<'a> NodeDeserializer<'a> {
    fn fail<T>(&self, message: String) -> Result<T, DeError> {
        Err(DeError::new(message).locate(&self.path, &self.node.site))
    }

    fn scalar(&self, expected: &str) -> Result<(&'a str, Style), DeError> {
        match &self.node.value {
            Value::Scalar { text, style } => Ok((text.as_str(), *style)),
            _ => self.fail(format!(
                "expected {expected}, found {}",
                self.node.describe()
            )),
        }
    }

    /// Returns the text of a plain scalar, rejecting quoted text where a number or bool is expected.
    fn plain_scalar(&self, expected: &str) -> Result<&'a str, DeError> {
        let (text, style) = self.scalar(expected)?;
        if style != Style::Plain {
            return self.fail(format!(
                "expected {expected}, found the quoted string \"{text}\"; remove the quotes"
            ));
        }
        Ok(text)
    }

    fn integer(&self, min: i128, max: i128) -> Result<i128, DeError> {
        let expected = format!("a whole number from {min} to {max}");
        let text = self.plain_scalar(&expected)?;
        let value = super::scalar::parse_integer(text).or_else(|message| self.fail(message))?;

        if value < 0 && min == 0 {
            return self.fail(format!("negative value `{text}`; expected {expected}"));
        }
        if value < min || value > max {
            return self.fail(format!("`{text}` is out of range; expected {expected}"));
        }
        Ok(value)
    }

    fn float(&self) -> Result<f64, DeError> {
        let text = self.plain_scalar("a number")?;
        super::scalar::parse_float(text).or_else(|message| self.fail(message))
    }
}

macro_rules! deserialize_integer {
    ($method:ident, $visit:ident, $type:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let value = self.integer(<$type>::MIN as i128, <$type>::MAX as i128)?;
            // The range check above makes this conversion lossless.
            visitor.$visit(value as $type)
        }
    };
}

impl<'de, 'a> de::Deserializer<'de> for NodeDeserializer<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Scalar {
                text,
                style: Style::Plain,
            } => visit_plain_scalar(text, self.node.is_null(), visitor),
            Value::Scalar { text, .. } => visitor.visit_str(text),
            Value::Sequence(items) => visitor.visit_seq(SeqReader::new(items, &self.path)),
            Value::Mapping(entries) => visitor.visit_map(MapReader::new(entries, &self.path)),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let text = self.plain_scalar("true or false")?;
        match super::scalar::parse_bool(text) {
            Ok(value) => visitor.visit_bool(value),
            Err(message) => self.fail(message),
        }
    }

    deserialize_integer!(deserialize_i8, visit_i8, i8);
    deserialize_integer!(deserialize_i16, visit_i16, i16);
    deserialize_integer!(deserialize_i32, visit_i32, i32);
    deserialize_integer!(deserialize_i64, visit_i64, i64);
    deserialize_integer!(deserialize_u8, visit_u8, u8);
    deserialize_integer!(deserialize_u16, visit_u16, u16);
    deserialize_integer!(deserialize_u32, visit_u32, u32);
    deserialize_integer!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_f64(self.float()?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let (text, _) = self.scalar("a string")?;
        visitor.visit_str(text)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_unit()
        } else {
            self.fail(format!("expected no value, found {}", self.node.describe()))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Sequence(items) => visitor.visit_seq(SeqReader::new(items, &self.path)),
            _ if self.node.is_null() => visitor.visit_seq(SeqReader::new(&[], &self.path)),
            _ => self.fail(format!(
                "expected a list such as [\"a\", \"b\"], found {}",
                self.node.describe()
            )),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Mapping(entries) => visitor.visit_map(MapReader::new(entries, &self.path)),
            _ if self.node.is_null() => visitor.visit_map(MapReader::new(&[], &self.path)),
            _ => self.fail(format!(
                "expected a mapping of `key: value` lines, found {}",
                self.node.describe()
            )),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Mapping(entries) => visitor.visit_map(MapReader::new(entries, &self.path)),
            _ => self.fail(format!(
                "expected a mapping of `key: value` lines, found {}",
                self.node.describe()
            )),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let expected = format!("one of `{}`", variants.join("`, `"));
        let (text, _) = self.scalar(&expected)?;
        let access: StrDeserializer<'_, DeError> = text.into_deserializer();
        visitor.visit_enum(access)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// Reads a plain scalar the way YAML 1.2's core schema types it, for untyped targets.
fn visit_plain_scalar<'de, V: Visitor<'de>>(
    text: &str,
    is_null: bool,
    visitor: V,
) -> Result<V::Value, DeError> {
    if is_null {
        return visitor.visit_unit();
    }
    if let Ok(value) = super::scalar::parse_bool(text) {
        return visitor.visit_bool(value);
    }
    if let Ok(value) = super::scalar::parse_integer(text) {
        if let Ok(unsigned) = u64::try_from(value) {
            return visitor.visit_u64(unsigned);
        }
        if let Ok(signed) = i64::try_from(value) {
            return visitor.visit_i64(signed);
        }
    }
    if let Ok(value) = super::scalar::parse_float(text) {
        return visitor.visit_f64(value);
    }
    visitor.visit_str(text)
}

struct SeqReader<'a> {
    items: std::iter::Enumerate<std::slice::Iter<'a, Node>>,
    path: &'a str,
}

impl<'a> SeqReader<'a> {
    fn new(items: &'a [Node], path: &'a str) -> Self {
        SeqReader {
            items: items.iter().enumerate(),
            path,
        }
    }
}

impl<'de, 'a> de::SeqAccess<'de> for SeqReader<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some((index, node)) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{index}]", self.path);
        let deserializer = NodeDeserializer {
            node,
            path: path.clone(),
        };
        seed.deserialize(deserializer)
            .map(Some)
            .map_err(|error| error.locate(&path, &node.site))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapReader<'a> {
    entries: std::slice::Iter<'a, Entry>,
    current: Option<&'a Entry>,
    path: &'a str,
}

impl<'a> MapReader<'a> {
    fn new(entries: &'a [Entry], path: &'a str) -> Self {
        MapReader {
            entries: entries.iter(),
            current: None,
            path,
        }
    }
}

impl<'de, 'a> de::MapAccess<'de> for MapReader<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.current = Some(entry);

        let path = child_path(self.path, &entry.key);
        let key: StrDeserializer<'_, DeError> = entry.key.as_str().into_deserializer();
        seed.deserialize(key)
            .map(Some)
            .map_err(|error| error.locate(&path, &entry.key_site))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some(entry) = self.current.take() else {
            return Err(DeError::new(
                "a mapping value was requested before its key".to_owned(),
            ));
        };

        let path = child_path(self.path, &entry.key);
        let deserializer = NodeDeserializer {
            node: &entry.value,
            path: path.clone(),
        };
        seed.deserialize(deserializer)
            .map_err(|error| error.locate(&path, &entry.value.site))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}
