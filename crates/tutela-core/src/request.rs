//! Data-subject requests (issue 6; R2, R26, R32, R33, R35, R36, R45): the workflow as a
//! pure function of (request, event, now).
//!
//! received → identity_verified → in_progress → completed | refused, with
//! `awaiting_controller` before `received` for end users' requests (R26: no substantive
//! answer without the tenant's written instruction). Nothing is answered before the
//! requester's identity is verified (R35). Requests whose fulfilment has consequences
//! (deletion, restriction, account closure) show them and proceed only once confirmed
//! (R33). The answer is due 30 days after receipt (the policy's limit); one extension,
//! with a reason, is possible.

use crate::tenant::SubjectKind;
use time::{Duration, OffsetDateTime};

closed_vocab!(
    /// What the subject asks for.
    RequestType, "request type", {
        Access = "access",
        Correct = "correct",
        Delete = "delete",
        /// Narrow the scope of authorization (withdraw consents).
        Restrict = "restrict",
        CloseAccount = "close_account",
        /// A complaint to the personal information protection officer (R45).
        Complaint = "complaint",
    }
);

closed_vocab!(
    /// Where a request stands.
    RequestStatus, "request status", {
        /// An end user's request, waiting for the tenant's written instruction (R26).
        AwaitingController = "awaiting_controller",
        Received = "received",
        IdentityVerified = "identity_verified",
        InProgress = "in_progress",
        Completed = "completed",
        Refused = "refused",
    }
);

impl RequestStatus {
    pub fn is_final(self) -> bool {
        matches!(self, RequestStatus::Completed | RequestStatus::Refused)
    }
}

impl RequestType {
    /// What stops working if this request is fulfilled (R33), in Chinese and English.
    /// Empty when fulfilling it changes nothing the subject relies on.
    pub fn consequences(self) -> &'static [(&'static str, &'static str)] {
        match self {
            RequestType::Delete => &[
                (
                    "删除支付数据后将无法在线支付。",
                    "Deleting payment data stops online payments.",
                ),
                (
                    "删除管理员联系数据后将无法收到服务通知。",
                    "Deleting administrator contact data stops service notices reaching you.",
                ),
                (
                    "删除后无法恢复；法律要求保留的数据将被冻结而非删除。",
                    "Deletion cannot be undone; data the law requires us to keep is frozen instead.",
                ),
            ],
            RequestType::Restrict => &[(
                "撤回授权后，依赖该授权的功能将停止。",
                "Features that rely on a withdrawn authorization stop working.",
            )],
            RequestType::CloseAccount => &[
                (
                    "注销账户后在线服务将停止。",
                    "Closing the account stops the online services.",
                ),
                (
                    "数据将按保留期冻结，期满后删除或匿名化。",
                    "Data is frozen for its retention period, then deleted or anonymized.",
                ),
            ],
            RequestType::Access | RequestType::Correct | RequestType::Complaint => &[],
        }
    }

    pub fn needs_confirmation(self) -> bool {
        !self.consequences().is_empty()
    }
}

/// What happens to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEvent {
    /// The tenant's written instruction for an end user's request (R26).
    Instruct,
    /// The requester's identity was verified (R35).
    VerifyIdentity,
    /// The requester confirmed after seeing the consequences (R33).
    Confirm,
    Start,
    /// More time, once, with a reason (the edge records and notifies it).
    Extend {
        days: u32,
    },
    Complete,
    Refuse,
}

/// The workflow-relevant part of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLife {
    pub kind: RequestType,
    pub status: RequestStatus,
    pub received_at: OffsetDateTime,
    pub due_at: OffsetDateTime,
    pub confirmed: bool,
    pub extended: bool,
}

/// Why an event does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("a request that is {0} cannot take this step")]
    WrongStatus(&'static str),
    #[error("the requester's identity must be verified first (R35)")]
    IdentityNotVerified,
    #[error("the consequences must be confirmed by the requester first (R33)")]
    NotConfirmed,
    #[error("nothing to confirm: this request has no consequences, or they were confirmed")]
    NothingToConfirm,
    #[error("a request can be extended once, by 1 to 30 days")]
    BadExtension,
}

/// Whether a request about a subject of `kind` goes to the tenant first (R26).
///
/// Only an end user's request does: the tenant is the controller of its end users' data
/// and must instruct before any substantive answer. An administrator's or a contact's
/// own request is about data the operator controls (the customer relationship), so the
/// operator answers it directly. A request the tenant's own administrator files for one
/// of its end users carries the tenant's instruction already (`filed_by_tenant`).
pub fn routed_to_tenant(kind: SubjectKind, filed_by_tenant: bool) -> bool {
    kind == SubjectKind::EndUser && !filed_by_tenant
}

/// The longest single extension.
pub const MAX_EXTENSION_DAYS: u32 = 30;

impl RequestLife {
    /// A new request: one routed to the tenant ([`routed_to_tenant`]) waits for its
    /// instruction (R26); due `answer_days` after receipt (R35).
    pub fn file(kind: RequestType, to_tenant: bool, now: OffsetDateTime, answer_days: u32) -> Self {
        Self {
            kind,
            status: if to_tenant {
                RequestStatus::AwaitingController
            } else {
                RequestStatus::Received
            },
            received_at: now,
            due_at: now + Duration::days(i64::from(answer_days)),
            confirmed: false,
            extended: false,
        }
    }

    pub fn is_overdue(&self, now: OffsetDateTime) -> bool {
        !self.status.is_final() && now > self.due_at
    }

    pub fn apply(&self, event: RequestEvent, _now: OffsetDateTime) -> Result<Self, RequestError> {
        use RequestStatus as S;
        let wrong = || RequestError::WrongStatus(self.status.as_str());
        let confirmed_if_needed = || {
            if self.kind.needs_confirmation() && !self.confirmed {
                Err(RequestError::NotConfirmed)
            } else {
                Ok(())
            }
        };
        let to = |status| Ok(Self { status, ..*self });
        match event {
            RequestEvent::Instruct => match self.status {
                S::AwaitingController => to(S::Received),
                _ => Err(wrong()),
            },
            RequestEvent::VerifyIdentity => match self.status {
                S::Received => to(S::IdentityVerified),
                _ => Err(wrong()),
            },
            RequestEvent::Confirm => {
                if self.status.is_final() {
                    Err(wrong())
                } else if !self.kind.needs_confirmation() || self.confirmed {
                    Err(RequestError::NothingToConfirm)
                } else {
                    Ok(Self {
                        confirmed: true,
                        ..*self
                    })
                }
            }
            RequestEvent::Start => match self.status {
                S::IdentityVerified => {
                    confirmed_if_needed()?;
                    to(S::InProgress)
                }
                S::AwaitingController | S::Received => Err(RequestError::IdentityNotVerified),
                _ => Err(wrong()),
            },
            RequestEvent::Complete => match self.status {
                S::IdentityVerified | S::InProgress => {
                    confirmed_if_needed()?;
                    to(S::Completed)
                }
                S::AwaitingController | S::Received => Err(RequestError::IdentityNotVerified),
                _ => Err(wrong()),
            },
            RequestEvent::Refuse => match self.status {
                S::IdentityVerified | S::InProgress => to(S::Refused),
                S::AwaitingController | S::Received => Err(RequestError::IdentityNotVerified),
                _ => Err(wrong()),
            },
            RequestEvent::Extend { days } => {
                if self.status.is_final() {
                    Err(wrong())
                } else if self.extended || days == 0 || days > MAX_EXTENSION_DAYS {
                    Err(RequestError::BadExtension)
                } else {
                    Ok(Self {
                        due_at: self.due_at + Duration::days(i64::from(days)),
                        extended: true,
                        ..*self
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-29 08:00 UTC);

    #[test]
    fn an_access_request_runs_received_verified_completed_r35() {
        let r = RequestLife::file(RequestType::Access, false, T0, 30);
        assert_eq!(r.status, RequestStatus::Received);
        assert_eq!(r.due_at, T0 + Duration::days(30));
        assert_eq!(
            r.apply(RequestEvent::Complete, T0),
            Err(RequestError::IdentityNotVerified),
            "no answer before identity is verified"
        );
        let r = r.apply(RequestEvent::VerifyIdentity, T0).unwrap();
        let r = r.apply(RequestEvent::Start, T0).unwrap();
        let done = r.apply(RequestEvent::Complete, T0).unwrap();
        assert_eq!(done.status, RequestStatus::Completed);
        assert!(done.apply(RequestEvent::Refuse, T0).is_err(), "final");
    }

    #[test]
    fn end_users_wait_for_their_tenants_instruction_r26() {
        let r = RequestLife::file(RequestType::Access, true, T0, 30);
        assert_eq!(r.status, RequestStatus::AwaitingController);
        assert!(r.apply(RequestEvent::VerifyIdentity, T0).is_err());
        assert_eq!(
            r.apply(RequestEvent::Refuse, T0),
            Err(RequestError::IdentityNotVerified)
        );
        let r = r.apply(RequestEvent::Instruct, T0).unwrap();
        assert_eq!(r.status, RequestStatus::Received);
    }

    #[test]
    fn only_end_users_requests_are_routed_to_the_tenant_r26() {
        assert!(routed_to_tenant(SubjectKind::EndUser, false));
        assert!(
            !routed_to_tenant(SubjectKind::EndUser, true),
            "the tenant's own filing is its instruction"
        );
        for kind in [SubjectKind::Administrator, SubjectKind::Contact] {
            for by_tenant in [false, true] {
                assert!(!routed_to_tenant(kind, by_tenant), "{kind}");
            }
        }
    }

    #[test]
    fn deletion_proceeds_only_after_its_consequences_are_confirmed_r33() {
        assert!(!RequestType::Delete.consequences().is_empty());
        assert!(RequestType::Access.consequences().is_empty());
        let r = RequestLife::file(RequestType::Delete, false, T0, 30)
            .apply(RequestEvent::VerifyIdentity, T0)
            .unwrap();
        assert_eq!(
            r.apply(RequestEvent::Start, T0),
            Err(RequestError::NotConfirmed)
        );
        assert_eq!(
            r.apply(RequestEvent::Complete, T0),
            Err(RequestError::NotConfirmed)
        );
        let r = r.apply(RequestEvent::Confirm, T0).unwrap();
        assert_eq!(
            r.apply(RequestEvent::Confirm, T0),
            Err(RequestError::NothingToConfirm)
        );
        assert_eq!(
            r.apply(RequestEvent::Complete, T0).unwrap().status,
            RequestStatus::Completed
        );
        // Refusal needs no confirmation: nothing is deleted.
        let fresh = RequestLife::file(RequestType::Delete, false, T0, 30)
            .apply(RequestEvent::VerifyIdentity, T0)
            .unwrap();
        assert_eq!(
            fresh.apply(RequestEvent::Refuse, T0).unwrap().status,
            RequestStatus::Refused
        );
    }

    #[test]
    fn requests_fall_overdue_after_thirty_days_and_extend_once_r35() {
        let r = RequestLife::file(RequestType::Complaint, false, T0, 30);
        assert!(!r.is_overdue(T0 + Duration::days(30)));
        assert!(r.is_overdue(T0 + Duration::days(31)));
        let e = r.apply(RequestEvent::Extend { days: 15 }, T0).unwrap();
        assert!(!e.is_overdue(T0 + Duration::days(31)));
        assert_eq!(
            e.apply(RequestEvent::Extend { days: 1 }, T0),
            Err(RequestError::BadExtension)
        );
        assert_eq!(
            r.apply(RequestEvent::Extend { days: 31 }, T0),
            Err(RequestError::BadExtension)
        );
        // A final request is never overdue.
        let done = r
            .apply(RequestEvent::VerifyIdentity, T0)
            .unwrap()
            .apply(RequestEvent::Complete, T0)
            .unwrap();
        assert!(!done.is_overdue(T0 + Duration::days(90)));
    }
}
