//! `OrderedMap`: a YAML/JSON mapping that keeps the order its keys were written in.
//!
//! Pods deploy in the order `svc.yml` lists them and ports are assigned in the order a task
//! lists them, so the spec cannot use a sorted or hashed map. Duplicate keys are refused.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Named entries in the order they were written. Invariant: names are unique.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderedMap<T>(Vec<(String, T)>);

impl<T> Default for OrderedMap<T> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<T> OrderedMap<T> {
    /// Builds a map from entries; panics on a duplicate name (a programming error).
    pub fn from_entries(entries: Vec<(String, T)>) -> Self {
        for (index, (name, _)) in entries.iter().enumerate() {
            assert!(
                !entries[..index].iter().any(|(other, _)| other == name),
                "duplicate entry {name}"
            );
        }
        OrderedMap(entries)
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The entry named `name`, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.0.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Entries in written order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Entries in written order, values mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut T)> {
        self.0.iter_mut().map(|(n, v)| (n.as_str(), v))
    }

    /// Names in written order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Serialize> Serialize for OrderedMap<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrderedMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for OrderedVisitor<T> {
            type Value = OrderedMap<T>;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a mapping of names to entries")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, T)> = Vec::new();
                while let Some(name) = access.next_key::<String>()? {
                    if entries.iter().any(|(other, _)| *other == name) {
                        return Err(de::Error::custom(format!("duplicate key `{name}`")));
                    }
                    let value = access.next_value()?;
                    entries.push((name, value));
                }
                Ok(OrderedMap(entries))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap(Vec::new()))
            }
        }

        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
}
