//! The sealer lease: one audit sealer per deployment (`DESIGN.md`, "the audit sealer is
//! elected by an advisory lock").
//!
//! On PostgreSQL the lease is a session-level advisory lock held on a connection taken
//! out of the pool for as long as the lease lives; if the process dies, PostgreSQL ends
//! the session and the lock passes to the next replica that asks. SQLite is written by one
//! process (its single writer thread), which is therefore always the sealer.

use crate::{db, Result, Store};
use sqlx::Connection as _;

/// Advisory-lock key of the sealer ("sealer" in ASCII).
const SEALER_LOCK: i64 = 0x7365_616c_6572;

/// Held by the replica that seals; dropping it releases the lock.
pub struct SealerLease {
    session: Option<sqlx::PgConnection>,
}

impl std::fmt::Debug for SealerLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealerLease(postgres: {})", self.session.is_some())
    }
}

impl SealerLease {
    /// Gives the lease up now (on shutdown), rather than when PostgreSQL notices the
    /// closed socket.
    pub async fn release(self) {
        if let Some(session) = self.session {
            let _ = session.close().await;
        }
    }

    /// Whether the lease still holds: its session answers. A lease that fails this must
    /// be dropped and sealing stopped, since another replica may hold the lock now.
    pub async fn is_held(&mut self) -> bool {
        match &mut self.session {
            None => true,
            Some(c) => c.ping().await.is_ok(),
        }
    }
}

impl Store {
    /// Takes the sealer lease if no other replica holds it.
    pub async fn try_sealer_lease(&self) -> Result<Option<SealerLease>> {
        match self.pg_pool() {
            None => Ok(Some(SealerLease { session: None })),
            Some(pool) => Ok(db::try_session_lock(pool, SEALER_LOCK)
                .await?
                .map(|session| SealerLease {
                    session: Some(session),
                })),
        }
    }
}
