//! Fresh ids. UUIDv7 bits make ids sort by creation time, which keeps index inserts
//! local on both backends.

use tutela_core::{SubjectId, TenantId};

/// 128 fresh bits for an id.
pub fn bits() -> [u8; 16] {
    uuid::Uuid::now_v7().into_bytes()
}

pub fn tenant() -> TenantId {
    TenantId::from_bytes(bits())
}

pub fn subject() -> SubjectId {
    SubjectId::from_bytes(bits())
}
