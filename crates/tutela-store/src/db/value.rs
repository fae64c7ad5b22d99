//! Values crossing the store boundary: bound parameters and decoded columns, the same on
//! both engines.
//!
//! Each variant carries its SQL type even when it is NULL, because PostgreSQL types every
//! parameter: a NULL sent as text into a `BIGINT` column is an error there, where SQLite
//! would take anything.

use crate::{Result, StoreError};

/// A bound parameter or a decoded column.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(Option<i64>),
    Real(Option<f64>),
    Bool(Option<bool>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Bool(_) => "boolean",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }

    fn is_null(&self) -> bool {
        matches!(
            self,
            Value::Int(None)
                | Value::Real(None)
                | Value::Bool(None)
                | Value::Text(None)
                | Value::Blob(None)
        )
    }
}

macro_rules! value_from {
    ($variant:ident: $($t:ty => |$v:ident| $e:expr),+ $(,)?) => {$(
        impl From<$t> for Value {
            fn from($v: $t) -> Self {
                Value::$variant(Some($e))
            }
        }
        impl From<Option<$t>> for Value {
            fn from(v: Option<$t>) -> Self {
                Value::$variant(v.map(|$v| $e))
            }
        }
    )+};
}

value_from!(Int: i64 => |v| v, i32 => |v| i64::from(v), u32 => |v| i64::from(v));
value_from!(Real: f64 => |v| v);
value_from!(Bool: bool => |v| v);
value_from!(Text: String => |v| v, &String => |v| v.clone(), &str => |v| v.to_owned());
value_from!(Blob: Vec<u8> => |v| v, &Vec<u8> => |v| v.clone(), &[u8] => |v| v.to_vec());

impl<const N: usize> From<&[u8; N]> for Value {
    fn from(v: &[u8; N]) -> Self {
        Value::Blob(Some(v.to_vec()))
    }
}

/// A column value converted to a Rust type.
pub trait FromValue: Sized {
    fn from_value(v: Value) -> Result<Self>;
}

fn mismatch(want: &str, got: &Value) -> StoreError {
    StoreError::Corrupt(format!("expected {want}, found {}", got.kind()))
}

impl FromValue for Value {
    fn from_value(v: Value) -> Result<Self> {
        Ok(v)
    }
}

impl FromValue for i64 {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Int(Some(i)) => Ok(i),
            Value::Bool(Some(b)) => Ok(i64::from(b)),
            other => Err(mismatch("integer", &other)),
        }
    }
}

impl FromValue for f64 {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Real(Some(f)) => Ok(f),
            // SQLite stores a whole REAL as an integer when it can.
            #[allow(clippy::cast_precision_loss, reason = "stored reals are small")]
            Value::Int(Some(i)) => Ok(i as f64),
            other => Err(mismatch("real", &other)),
        }
    }
}

impl FromValue for bool {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Bool(Some(b)) => Ok(b),
            // SQLite has no boolean type: 0 and 1.
            Value::Int(Some(i)) => Ok(i != 0),
            other => Err(mismatch("boolean", &other)),
        }
    }
}

impl FromValue for String {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Text(Some(s)) => Ok(s),
            other => Err(mismatch("text", &other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Blob(Some(b)) => Ok(b),
            other => Err(mismatch("blob", &other)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Result<Self> {
        if v.is_null() {
            Ok(None)
        } else {
            T::from_value(v).map(Some)
        }
    }
}

/// One result row: its columns in SELECT order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row(pub(crate) Vec<Value>);

impl Row {
    /// Column `i` (0-based) as `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = self
            .0
            .get(i)
            .cloned()
            .ok_or_else(|| StoreError::Corrupt(format!("row has no column {i}")))?;
        T::from_value(v).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A row decoded into a Rust type: tuples of [`FromValue`] columns, or a whole [`Row`].
pub trait FromRow: Sized {
    fn from_row(row: Row) -> Result<Self>;
}

impl FromRow for Row {
    fn from_row(row: Row) -> Result<Self> {
        Ok(row)
    }
}

// Tuples of columns, in SELECT order (as `sqlx::query_as` decoded them before).
macro_rules! tuple_from_row {
    ($n:literal: $($t:ident $i:tt),+) => {
        impl<$($t: FromValue),+> FromRow for ($($t,)+) {
            fn from_row(row: Row) -> Result<Self> {
                if row.len() != $n {
                    return Err(StoreError::Corrupt(format!(
                        "expected {} columns, found {}", $n, row.len()
                    )));
                }
                let mut it = row.0.into_iter();
                Ok(($(
                    $t::from_value(it.next().unwrap_or(Value::Int(None)))
                        .map_err(|e| StoreError::Corrupt(format!("column {}: {e}", $i)))?,
                )+))
            }
        }
    };
}

tuple_from_row!(1: A 0);
tuple_from_row!(2: A 0, B 1);
tuple_from_row!(3: A 0, B 1, C 2);
tuple_from_row!(4: A 0, B 1, C 2, D 3);
tuple_from_row!(5: A 0, B 1, C 2, D 3, E 4);
tuple_from_row!(6: A 0, B 1, C 2, D 3, E 4, F 5);
tuple_from_row!(7: A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_from_row!(8: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_from_row!(9: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_from_row!(10: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_from_row!(11: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_from_row!(12: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
tuple_from_row!(13: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12);
tuple_from_row!(14: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13);
tuple_from_row!(15: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14);
tuple_from_row!(16: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15);
tuple_from_row!(17: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15, Q 16);
tuple_from_row!(18: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15, Q 16, R 17);
tuple_from_row!(19: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15, Q 16, R 17, S 18);
tuple_from_row!(20: A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15, Q 16, R 17, S 18, T 19);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn tuples_decode_in_order_and_nulls_become_none() {
        let row = Row(vec![
            Value::from("a"),
            Value::Int(Some(1)),
            Value::Text(None),
        ]);
        let (a, b, c): (String, bool, Option<String>) = FromRow::from_row(row).unwrap();
        assert_eq!((a.as_str(), b, c), ("a", true, None));
    }

    #[test]
    fn a_wrong_type_or_width_is_corruption_not_a_panic() {
        let row = Row(vec![Value::from("a")]);
        assert!(matches!(
            <(i64,)>::from_row(row.clone()),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            <(String, String)>::from_row(row),
            Err(StoreError::Corrupt(_))
        ));
    }
}
