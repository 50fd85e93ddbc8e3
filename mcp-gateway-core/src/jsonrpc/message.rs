//! Messages whose `params.arguments` stay text. A call's arguments (a tool's or a prompt's) are
//! the one part of a client's request the gateway never reads, and often the largest (a file to
//! store, an image): read from text, they are kept as the client wrote them and written into the
//! upstream's request as they are, so a large call costs a scan and a copy rather than a tree
//! built, written out and freed. The members the gateway does read (`name`, `_meta`, the method
//! and id) are parsed as before.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::SeqAccessDeserializer;
use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::one_line;

/// The member kept as text.
const ARGUMENTS: &str = "arguments";

/// A JSON-RPC message (or batch) whose `params.arguments` may be held as text: a client's message
/// as received, and the request the gateway writes upstream from it. A single message's
/// arguments are held when it was read with [`Message::from_slice`]; everything else is parsed.
/// Made from a `Value`, everything is parsed.
#[derive(Debug, Clone)]
pub struct Message {
    value: Value,
    /// `params.arguments`, absent from `value` while it is held here.
    arguments: Option<Box<RawValue>>,
}

impl Message {
    /// Reads a message or a batch from JSON text. A single message's `params.arguments` is kept
    /// as text (put on one line: JSON text has line breaks only between tokens, where a space
    /// does as well, and a stdio upstream reads one message per line).
    pub fn from_slice(text: &[u8]) -> serde_json::Result<Self> {
        let starts_object = text
            .iter()
            .find(|byte| !byte.is_ascii_whitespace())
            .is_some_and(|&byte| byte == b'{');
        if !starts_object {
            return serde_json::from_slice::<Value>(text).map(Self::from);
        }
        let mut reader = serde_json::Deserializer::from_slice(text);
        let message = reader.deserialize_map(MessageVisitor)?;
        reader.end()?;
        Ok(message)
    }

    /// The message, except `params.arguments` while that is held as text (see
    /// [`Message::arguments`]).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// `params.arguments`, parsed (`null` when there are none).
    pub fn arguments(&self) -> Cow<'_, Value> {
        held_or_member(&self.arguments, self.value.get("params"))
    }

    /// The message and its held arguments, which belong in its `params`.
    pub(crate) fn into_parts(self) -> (Value, Option<Box<RawValue>>) {
        (self.value, self.arguments)
    }

    /// A message with arguments held for its `params` (dropped unless those are an object).
    pub(crate) fn new(value: Value, arguments: Option<Box<RawValue>>) -> Self {
        let arguments = arguments.filter(|_| value.get("params").is_some_and(Value::is_object));
        Self { value, arguments }
    }
}

impl From<Value> for Message {
    fn from(value: Value) -> Self {
        Self {
            value,
            arguments: None,
        }
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (Value::Object(members), Some(arguments)) = (&self.value, &self.arguments) else {
            return self.value.serialize(serializer);
        };
        let mut map = serializer.serialize_map(Some(members.len()))?;
        for (key, member) in members {
            match member {
                Value::Object(params) if key == "params" => {
                    map.serialize_entry(key, &WithArguments { params, arguments })?
                }
                _ => map.serialize_entry(key, member)?,
            }
        }
        map.end()
    }
}

/// A request's params on their way to an upstream: the members the gateway reads, parsed, and
/// `arguments`, held as the client's text when the request was read from text. Made from a
/// `Value`, everything is parsed.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub(crate) value: Value,
    /// `arguments`, absent from `value` while it is held here; only ever held beside an object.
    arguments: Option<Box<RawValue>>,
}

impl Params {
    /// Params with arguments held for them (dropped unless the params are an object).
    pub(crate) fn new(value: Value, arguments: Option<Box<RawValue>>) -> Self {
        let arguments = arguments.filter(|_| value.is_object());
        Self { value, arguments }
    }

    /// `arguments`, parsed (`null` when there are none).
    pub fn arguments(&self) -> Cow<'_, Value> {
        held_or_member(&self.arguments, Some(&self.value))
    }

    /// The params and their held arguments, which belong in them.
    pub(crate) fn into_parts(self) -> (Value, Option<Box<RawValue>>) {
        (self.value, self.arguments)
    }
}

impl From<Value> for Params {
    fn from(value: Value) -> Self {
        Self {
            value,
            arguments: None,
        }
    }
}

/// Arguments held as text, parsed, or else the `arguments` member of `params`.
fn held_or_member<'a>(held: &Option<Box<RawValue>>, params: Option<&'a Value>) -> Cow<'a, Value> {
    match held {
        // Held text was read as valid JSON, and any valid JSON is a `Value`.
        Some(text) => Cow::Owned(serde_json::from_str(text.get()).unwrap_or(Value::Null)),
        None => params
            .and_then(|params| params.get(ARGUMENTS))
            .map_or(Cow::Owned(Value::Null), Cow::Borrowed),
    }
}

/// An object's members, written with `arguments` (held as text) added.
struct WithArguments<'a> {
    params: &'a Map<String, Value>,
    arguments: &'a RawValue,
}

impl Serialize for WithArguments<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.params.len() + 1))?;
        for (key, member) in self.params {
            map.serialize_entry(key, member)?;
        }
        map.serialize_entry(ARGUMENTS, self.arguments)?;
        map.end()
    }
}

/// Reads a message in one pass, holding its `params.arguments` as text.
struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Message;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON-RPC message")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let mut members = Map::new();
        let mut arguments = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "params" {
                let params = map.next_value_seed(ParamsVisitor)?;
                arguments = params.arguments;
                members.insert(key, params.value);
            } else {
                let member = map.next_value()?;
                members.insert(key, member);
            }
        }
        Ok(Message {
            value: Value::Object(members),
            arguments,
        })
    }
}

/// Reads `params`: an object's members parsed, except `arguments`, held as text on one line;
/// anything else (invalid for a request, but the handler says so) as a plain value.
struct ParamsVisitor;

impl<'de> DeserializeSeed<'de> for ParamsVisitor {
    type Value = Params;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Params, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = Params;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("JSON-RPC params")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
        let mut members = Map::new();
        let mut arguments = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == ARGUMENTS {
                let text: &RawValue = map.next_value()?;
                arguments = Some(on_one_line(text).map_err(A::Error::custom)?);
            } else {
                let member = map.next_value()?;
                members.insert(key, member);
            }
        }
        Ok(Params {
            value: Value::Object(members),
            arguments,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Params::from)
    }

    fn visit_unit<E>(self) -> Result<Params, E> {
        Ok(Value::Null.into())
    }

    fn visit_bool<E>(self, value: bool) -> Result<Params, E> {
        Ok(Value::from(value).into())
    }

    fn visit_i64<E>(self, value: i64) -> Result<Params, E> {
        Ok(Value::from(value).into())
    }

    fn visit_u64<E>(self, value: u64) -> Result<Params, E> {
        Ok(Value::from(value).into())
    }

    fn visit_f64<E>(self, value: f64) -> Result<Params, E> {
        Ok(Value::from(value).into())
    }

    fn visit_str<E>(self, value: &str) -> Result<Params, E> {
        Ok(Value::from(value).into())
    }
}

/// JSON text put on one line ([`one_line`]).
fn on_one_line(text: &RawValue) -> serde_json::Result<Box<RawValue>> {
    match one_line(text.get()) {
        Cow::Borrowed(_) => Ok(text.to_owned()),
        Cow::Owned(joined) => RawValue::from_string(joined),
    }
}
