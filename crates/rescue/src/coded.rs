//! The serialised shape of the vocabulary, `{"code": …, facts…, "message": …}`, written and read
//! without buffering.
//!
//! The vocabulary's enums derive serde's externally tagged form (`{"no_match": {…}}`), and these
//! adapters turn it into the report's shape on the way out and back on the way in: the variant's
//! name becomes the `"code"` field in front of the facts, the English sentence goes last as
//! `"message"`, and reading passes over `"message"` (the reader words the value itself).
//!
//! serde's own internally tagged form (`#[serde(tag = "code")]`) would give the same JSON, but to
//! read it serde first buffers every value into an intermediate tree whatever the order of its
//! fields, and that machinery, instantiated for every type the page receives from its worker, made
//! the page's wasm some 180 KiB larger. Here the facts are read straight from the input, which is
//! why `"code"` must come first: it does in everything kaifuku writes (the reports, the worker's
//! messages), and a value whose first field is another is refused with an error saying so.

use serde::de::value::StringDeserializer;
use serde::de::{
    self, DeserializeSeed, EnumAccess, IgnoredAny, IntoDeserializer, MapAccess, VariantAccess,
    Visitor,
};
use serde::ser::{self, Impossible, SerializeMap, SerializeStructVariant};
use serde::{forward_to_deserialize_any, Deserializer, Serialize, Serializer};
use std::fmt;

/// The name of the field that holds the variant.
const CODE: &str = "code";
/// The name of the field that holds the English sentence.
const MESSAGE: &str = "message";

/// A serializer that takes an externally tagged unit or struct variant and writes it as a map:
/// `"code"`, the fields, then `"message"`.
pub(crate) struct CodeTagged<'m, S> {
    /// Where the map goes.
    pub(crate) inner: S,
    /// The English sentence written last.
    pub(crate) message: &'m str,
}

/// The fields of a struct variant, between `"code"` and `"message"`.
pub(crate) struct CodeTaggedFields<'m, M> {
    map: M,
    message: &'m str,
}

fn not_a_variant<E: ser::Error>(what: &str) -> E {
    E::custom(format_args!(
        "a report value is a unit or struct variant, not {what}"
    ))
}

impl<'m, S: Serializer> Serializer for CodeTagged<'m, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = Impossible<S::Ok, S::Error>;
    type SerializeStructVariant = CodeTaggedFields<'m, S::SerializeMap>;

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        let mut map = self.inner.serialize_map(Some(2))?;
        map.serialize_entry(CODE, variant)?;
        map.serialize_entry(MESSAGE, self.message)?;
        map.end()
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        let mut map = self.inner.serialize_map(Some(len + 2))?;
        map.serialize_entry(CODE, variant)?;
        Ok(CodeTaggedFields {
            map,
            message: self.message,
        })
    }

    fn serialize_bool(self, _: bool) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a boolean"))
    }
    fn serialize_i8(self, _: i8) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a number"))
    }
    fn serialize_i16(self, _: i16) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a number"))
    }
    fn serialize_i32(self, _: i32) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a number"))
    }
    fn serialize_i64(self, _: i64) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a number"))
    }
    fn serialize_u8(self, _: u8) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a number"))
    }
    fn serialize_u16(self, _: u16) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a number"))
    }
    fn serialize_u32(self, _: u32) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a number"))
    }
    fn serialize_u64(self, _: u64) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a number"))
    }
    fn serialize_f32(self, _: f32) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a number"))
    }
    fn serialize_f64(self, _: f64) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a number"))
    }
    fn serialize_char(self, _: char) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a character"))
    }
    fn serialize_str(self, _: &str) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a string"))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("bytes"))
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("an option"))
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("an option"))
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a unit"))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a unit struct"))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a newtype struct"))
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_a_variant("a newtype variant"))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Err(not_a_variant("a sequence"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, S::Error> {
        Err(not_a_variant("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Err(not_a_variant("a tuple struct"))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        Err(not_a_variant("a tuple variant"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Err(not_a_variant("a map"))
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        Err(not_a_variant("a struct"))
    }
}

impl<M: SerializeMap> SerializeStructVariant for CodeTaggedFields<'_, M> {
    type Ok = M::Ok;
    type Error = M::Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), M::Error> {
        self.map.serialize_entry(key, value)
    }

    fn end(mut self) -> Result<M::Ok, M::Error> {
        self.map.serialize_entry(MESSAGE, self.message)?;
        self.map.end()
    }
}

/// A deserializer that reads the map `"code"`, facts, `"message"` as the externally tagged enum
/// the derived `Deserialize` asks for.
pub(crate) struct CodeFirst<D>(pub(crate) D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for CodeFirst<D> {
    type Error = D::Error;

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(CodeFirstVisitor(visitor))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, D::Error> {
        Err(de::Error::custom(
            "a report value is read as an enum, tagged by its \"code\"",
        ))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

/// Reads the `"code"` and hands the rest of the map to the variant.
struct CodeFirstVisitor<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for CodeFirstVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object whose first field is \"code\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<V::Value, A::Error> {
        let key: Option<String> = map.next_key()?;
        match key.as_deref() {
            Some(CODE) => {}
            Some(other) => {
                return Err(de::Error::custom(format_args!(
                    "expected \"code\" as the first field, found \"{other}\""
                )))
            }
            None => return Err(de::Error::missing_field(CODE)),
        }
        let code: String = map.next_value()?;
        self.0.visit_enum(Variant { code, map })
    }
}

/// The variant named by `"code"`, with the rest of the map.
struct Variant<A> {
    code: String,
    map: A,
}

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for Variant<A> {
    type Error = A::Error;
    type Variant = Facts<A>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Facts<A>), A::Error> {
        let code: StringDeserializer<A::Error> = self.code.into_deserializer();
        let variant = seed.deserialize(code)?;
        Ok((variant, Facts(self.map)))
    }
}

/// The fields after `"code"`: the variant's facts and the message.
struct Facts<A>(A);

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for Facts<A> {
    type Error = A::Error;

    fn unit_variant(mut self) -> Result<(), A::Error> {
        // Only the message follows; it is passed over.
        while self.0.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, A::Error> {
        Err(de::Error::custom(
            "a report value is a unit or struct variant, not a newtype variant",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::custom(
            "a report value is a unit or struct variant, not a tuple variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        // The derived visitor passes over fields it does not know: the message.
        visitor.visit_map(self.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::vocabulary::{Blocker, Reason, VolumeName};
    use kaifuku_ntfs::LogState;

    #[test]
    fn code_first_facts_then_message() {
        let json = serde_json::to_string(&Reason::DirectoryMissing {
            volume: VolumeName::place(Some(3)),
            directory: "\\D".into(),
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"code":"directory_missing","volume":{"partition":3,"label":null},"directory":"\\D","message":"partition 3: \\D does not exist"}"#
        );
        let json = serde_json::to_string(&Blocker::Hibernated).unwrap();
        assert!(json.starts_with(r#"{"code":"hibernated","message":"Windows is hibernated"#));
    }

    #[test]
    fn reading_needs_the_code_first_and_passes_over_the_message() {
        let read = |s: &str| serde_json::from_str::<Blocker>(s);
        assert_eq!(
            read(r#"{"code":"journal_not_clean","state":"v2.0","message":"x"}"#).unwrap(),
            Blocker::JournalNotClean {
                state: LogState::V2
            }
        );
        // Without a message too: it is the writer's words, not a fact.
        assert_eq!(
            read(r#"{"code":"quota_tracking"}"#).unwrap(),
            Blocker::QuotaTracking
        );
        let err = read(r#"{"message":"x","code":"hibernated"}"#).unwrap_err();
        assert!(
            err.to_string().contains("\"code\" as the first field"),
            "{err}"
        );
        assert!(read("{}").unwrap_err().to_string().contains("code"));
        assert!(read(r#"{"code":"no_such_code"}"#).is_err());
        assert!(read(r#""hibernated""#).is_err());
        // A fact missing is an error, not a default.
        assert!(read(r#"{"code":"journal_not_clean","message":"x"}"#).is_err());
    }
}
