//! Serde for the fields that take either a number or a string, as Kubernetes' `IntOrString` does.
//!
//! Derived untagged enums would report a failure as "did not match any variant",
//! which names neither the value nor the accepted forms.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::types::{IntOrPercent, PortRef};

impl Serialize for PortRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            PortRef::Number(number) => serializer.serialize_u16(*number),
            PortRef::Name(name) => serializer.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for PortRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PortRefVisitor)
    }
}

struct PortRefVisitor;

impl Visitor<'_> for PortRefVisitor {
    type Value = PortRef;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a port number from 1 to 65535 or a port name")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<PortRef, E> {
        match u16::try_from(value) {
            Ok(number) if number > 0 => Ok(PortRef::Number(number)),
            _ => Err(E::custom(format!(
                "port {value} is out of range; expected a port number from 1 to 65535 or a port name"
            ))),
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<PortRef, E> {
        Err(E::custom(format!(
            "negative port {value}; expected a port number from 1 to 65535 or a port name"
        )))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<PortRef, E> {
        Ok(PortRef::Name(value.to_owned()))
    }
}

impl Serialize for IntOrPercent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrPercent::Int(count) => serializer.serialize_u32(*count),
            IntOrPercent::Percent(percent) => serializer.serialize_str(&format!("{percent}%")),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrPercent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IntOrPercentVisitor)
    }
}

struct IntOrPercentVisitor;

impl Visitor<'_> for IntOrPercentVisitor {
    type Value = IntOrPercent;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a whole number such as 1 or a percentage such as 25%")
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<IntOrPercent, E> {
        u32::try_from(value).map(IntOrPercent::Int).map_err(|_| {
            E::custom(format!(
                "{value} is too large; expected at most {}",
                u32::MAX
            ))
        })
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<IntOrPercent, E> {
        Err(E::custom(format!(
            "negative value {value}; expected a whole number such as 1 or a percentage such as 25%"
        )))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<IntOrPercent, E> {
        let invalid = || {
            E::custom(format!(
                "invalid value `{value}`; expected a whole number such as 1 or a percentage such as 25%"
            ))
        };
        if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(E::custom(format!(
                "expected a whole number or a percentage, found the quoted string \"{value}\"; \
                 write {value} without quotes"
            )));
        }
        let digits = value.strip_suffix('%').ok_or_else(invalid)?;
        if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(invalid());
        }
        digits
            .parse()
            .map(IntOrPercent::Percent)
            .map_err(|_| invalid())
    }
}
