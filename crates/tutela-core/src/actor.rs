//! Who is calling: a role with its scope (tenant, subject, region), as carried by an API
//! token. The scope rules live here so every route applies the same ones (R2).

use crate::ids::{SubjectId, TenantId, TokenId};
use crate::vocab::{Category, Purpose, Region};

closed_vocab!(
    /// A caller's role (API.md "Roles").
    Role, "role", {
        /// Platform administration.
        Operator = "operator",
        /// The personal information protection officer's office (R45).
        PrivacyOfficer = "privacy_officer",
        /// Read-only access to the audit log.
        Auditor = "auditor",
        /// An internal system such as billing or support tooling.
        Service = "service",
        /// A support engineer, in China or overseas (R7).
        Support = "support",
        /// A verified administrator of one tenant (R2).
        TenantAdmin = "tenant_admin",
        /// One data subject acting for themself.
        EndUser = "end_user",
    }
);

/// Why an actor's scope is inconsistent with its role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("role `{0}` needs a tenant (--tenant)")]
    TenantRequired(Role),
    #[error("role `{0}` needs a subject (--subject)")]
    SubjectRequired(Role),
    #[error("role `{0}` is not scoped to a tenant; drop --tenant")]
    TenantNotAllowed(Role),
    #[error("role `{0}` is not scoped to a subject; drop --subject")]
    SubjectNotAllowed(Role),
    #[error("only `service` tokens are scoped to purposes and categories; drop --purposes/--categories for role `{0}`")]
    DataScopeNotAllowed(Role),
}

/// The purposes and categories a `service` token was created for (issue 14, R29). An
/// empty scope covers nothing: an unscoped service reads nothing personal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataScope {
    purposes: Vec<Purpose>,
    categories: Vec<Category>,
}

impl DataScope {
    /// A scope; duplicates are dropped and the order is normalised.
    pub fn new(mut purposes: Vec<Purpose>, mut categories: Vec<Category>) -> Self {
        purposes.sort();
        purposes.dedup();
        categories.sort();
        categories.dedup();
        Self {
            purposes,
            categories,
        }
    }
    pub fn purposes(&self) -> &[Purpose] {
        &self.purposes
    }
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }
    pub fn is_empty(&self) -> bool {
        self.purposes.is_empty() && self.categories.is_empty()
    }
    /// Whether the scope names the category and, unless none is declared (erasure), the
    /// purpose.
    pub fn covers(&self, category: Category, purpose: Option<Purpose>) -> bool {
        self.categories.contains(&category) && purpose.is_none_or(|p| self.purposes.contains(&p))
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    token: TokenId,
    role: Role,
    tenant: Option<TenantId>,
    subject: Option<SubjectId>,
    region: Region,
    scope: DataScope,
}

/// The outcome of a scope check on a tenant-owned resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeAccess {
    Allowed,
    /// The role may never do this (403).
    RoleDenied,
    /// The resource belongs to another tenant or subject: answer as if it did not exist
    /// (404), so existence never leaks across tenants (R2).
    Hidden,
}

impl Actor {
    /// Builds an actor, checking that the scope fits the role: a tenant admin names a
    /// tenant, an end user names a subject (and its tenant), platform roles name neither.
    pub fn new(
        token: TokenId,
        role: Role,
        tenant: Option<TenantId>,
        subject: Option<SubjectId>,
        region: Region,
    ) -> Result<Self, ScopeError> {
        match role {
            Role::TenantAdmin => {
                if tenant.is_none() {
                    return Err(ScopeError::TenantRequired(role));
                }
                if subject.is_some() {
                    return Err(ScopeError::SubjectNotAllowed(role));
                }
            }
            Role::EndUser => {
                if subject.is_none() {
                    return Err(ScopeError::SubjectRequired(role));
                }
                if tenant.is_none() {
                    return Err(ScopeError::TenantRequired(role));
                }
            }
            Role::Operator
            | Role::PrivacyOfficer
            | Role::Auditor
            | Role::Service
            | Role::Support => {
                if tenant.is_some() {
                    return Err(ScopeError::TenantNotAllowed(role));
                }
                if subject.is_some() {
                    return Err(ScopeError::SubjectNotAllowed(role));
                }
            }
        }
        Ok(Self {
            token,
            role,
            tenant,
            subject,
            region,
            scope: DataScope::default(),
        })
    }

    /// Narrows a `service` actor to the purposes and categories its token names.
    pub fn with_scope(mut self, scope: DataScope) -> Result<Self, ScopeError> {
        if self.role != Role::Service && !scope.is_empty() {
            return Err(ScopeError::DataScopeNotAllowed(self.role));
        }
        self.scope = scope;
        Ok(self)
    }

    /// The data scope of a `service` token (empty for every other role).
    pub fn scope(&self) -> &DataScope {
        &self.scope
    }

    pub fn token(&self) -> &TokenId {
        &self.token
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }
    pub fn subject(&self) -> Option<&SubjectId> {
        self.subject.as_ref()
    }
    pub fn region(&self) -> Region {
        self.region
    }

    /// May this actor read a tenant's profile? Operators and the privacy office see all;
    /// a tenant admin sees only its own tenant (others are hidden, R2).
    pub fn may_view_tenant(&self, tenant: &TenantId) -> ScopeAccess {
        match self.role {
            Role::Operator | Role::PrivacyOfficer => ScopeAccess::Allowed,
            Role::TenantAdmin => self.own_tenant(tenant),
            Role::Auditor | Role::Service | Role::Support | Role::EndUser => {
                ScopeAccess::RoleDenied
            }
        }
    }

    /// May this actor register subjects under a tenant (API.md: operator, that tenant_admin)?
    pub fn may_manage_subjects(&self, tenant: &TenantId) -> ScopeAccess {
        match self.role {
            Role::Operator => ScopeAccess::Allowed,
            Role::TenantAdmin => self.own_tenant(tenant),
            _ => ScopeAccess::RoleDenied,
        }
    }

    /// May this actor see a subject's profile (not its data)? The subject itself, its
    /// tenant's admin, and platform roles that administer subjects.
    pub fn may_view_subject(&self, tenant: &TenantId, subject: &SubjectId) -> ScopeAccess {
        match self.role {
            Role::Operator | Role::PrivacyOfficer => ScopeAccess::Allowed,
            Role::TenantAdmin => self.own_tenant(tenant),
            Role::EndUser => {
                if self.subject.as_ref() == Some(subject) {
                    ScopeAccess::Allowed
                } else {
                    ScopeAccess::Hidden
                }
            }
            Role::Auditor | Role::Service | Role::Support => ScopeAccess::RoleDenied,
        }
    }

    /// May this actor record a consent or withdrawal for a subject (issue 4)? The
    /// subject itself, its tenant's admin (e.g. entering a paper form), and integrated
    /// systems (`service`), per API.md. Anyone but the subject grants only with evidence
    /// of the subject's own act ([`crate::consent::provenance`], issue 14).
    pub fn may_record_consent(&self, tenant: &TenantId, subject: &SubjectId) -> ScopeAccess {
        match self.role {
            Role::Service => ScopeAccess::Allowed,
            Role::TenantAdmin | Role::EndUser => self.may_view_subject(tenant, subject),
            Role::Operator | Role::PrivacyOfficer | Role::Auditor | Role::Support => {
                ScopeAccess::RoleDenied
            }
        }
    }

    /// May this actor read a subject's consent history? The subject, its tenant's admin
    /// and the privacy officer.
    pub fn may_view_consents(&self, tenant: &TenantId, subject: &SubjectId) -> ScopeAccess {
        match self.role {
            Role::PrivacyOfficer => ScopeAccess::Allowed,
            Role::TenantAdmin | Role::EndUser => self.may_view_subject(tenant, subject),
            Role::Operator | Role::Auditor | Role::Service | Role::Support => {
                ScopeAccess::RoleDenied
            }
        }
    }

    fn own_tenant(&self, tenant: &TenantId) -> ScopeAccess {
        if self.tenant.as_ref() == Some(tenant) {
            ScopeAccess::Allowed
        } else {
            ScopeAccess::Hidden
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> TokenId {
        TokenId::from_bytes([1; 16])
    }
    fn ten(n: u8) -> TenantId {
        TenantId::from_bytes([n; 16])
    }
    fn sub(n: u8) -> SubjectId {
        SubjectId::from_bytes([n; 16])
    }

    fn check_scope(role: Role, tenant: bool, subject: bool, ok: bool) {
        let a = Actor::new(
            tok(),
            role,
            tenant.then(|| ten(1)),
            subject.then(|| sub(1)),
            Region::Cn,
        );
        assert_eq!(a.is_ok(), ok, "{role} tenant={tenant} subject={subject}");
    }

    #[test]
    fn scope_must_fit_role() {
        check_scope(Role::Operator, false, false, true);
        check_scope(Role::Operator, true, false, false);
        check_scope(Role::TenantAdmin, true, false, true);
        check_scope(Role::TenantAdmin, false, false, false);
        check_scope(Role::TenantAdmin, true, true, false);
        check_scope(Role::EndUser, true, true, true);
        check_scope(Role::EndUser, false, true, false);
        check_scope(Role::EndUser, true, false, false);
        check_scope(Role::Support, false, false, true);
        check_scope(Role::Auditor, false, true, false);
    }

    #[test]
    fn only_services_carry_a_data_scope_and_an_empty_one_covers_nothing() {
        let scope = DataScope::new(vec![Purpose::Transaction], vec![Category::Payment]);
        let svc = Actor::new(tok(), Role::Service, None, None, Region::Cn)
            .unwrap()
            .with_scope(scope.clone())
            .unwrap();
        assert!(svc
            .scope()
            .covers(Category::Payment, Some(Purpose::Transaction)));
        assert!(!svc
            .scope()
            .covers(Category::Payment, Some(Purpose::Marketing)));
        assert!(!svc
            .scope()
            .covers(Category::Customer, Some(Purpose::Transaction)));
        assert!(svc.scope().covers(Category::Payment, None));
        assert!(!DataScope::default().covers(Category::Payment, None));
        let op = Actor::new(tok(), Role::Operator, None, None, Region::Cn).unwrap();
        assert_eq!(
            op.with_scope(scope),
            Err(ScopeError::DataScopeNotAllowed(Role::Operator))
        );
    }

    #[test]
    fn tenant_admin_sees_only_its_tenant() {
        let admin = Actor::new(tok(), Role::TenantAdmin, Some(ten(1)), None, Region::Cn).unwrap();
        assert_eq!(admin.may_view_tenant(&ten(1)), ScopeAccess::Allowed);
        assert_eq!(admin.may_view_tenant(&ten(2)), ScopeAccess::Hidden);
        assert_eq!(admin.may_manage_subjects(&ten(2)), ScopeAccess::Hidden);
        let support = Actor::new(tok(), Role::Support, None, None, Region::Overseas).unwrap();
        assert_eq!(support.may_view_tenant(&ten(1)), ScopeAccess::RoleDenied);
    }

    #[test]
    fn end_user_sees_only_itself() {
        let user =
            Actor::new(tok(), Role::EndUser, Some(ten(1)), Some(sub(1)), Region::Cn).unwrap();
        assert_eq!(
            user.may_view_subject(&ten(1), &sub(1)),
            ScopeAccess::Allowed
        );
        assert_eq!(user.may_view_subject(&ten(1), &sub(2)), ScopeAccess::Hidden);
    }
}
