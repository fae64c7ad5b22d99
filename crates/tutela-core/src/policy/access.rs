//! Access rules (R29: "restrict access by role"; issue 14): which role may use which
//! purposes on which categories, and what it must show beyond its role (a grant, a named
//! basis, its token's scope). Written as `[[access]]` in `policy/statement.toml`,
//! validated by the loader and compiled into a dense `role x category x action x purpose`
//! table, so the check in `decide` is one index.
//!
//! Least privilege by default: a (role, category, action, purpose) that no rule names is
//! denied. A role with no rule at all reads nothing personal (the auditor).

use crate::actor::Role;
use crate::clause::Clause;
use crate::vocab::{Category, Purpose};

closed_vocab!(
    /// What an access rule lets a role do with a category.
    AccessAction, "access action", {
        Read = "read",
        Write = "write",
        /// Erasure of a record; it declares no purpose (R33), so a delete rule's purposes
        /// are ignored.
        Delete = "delete",
    }
);

closed_vocab!(
    /// What a caller must show beyond its role.
    AccessCondition, "access condition", {
        /// An active, customer-approved support grant that this engineer requested, for
        /// the subject's tenant and covering the category (R7).
        Grant = "grant",
        /// The privacy officer names the obligation: an open, identity-verified request
        /// about this subject, or a legal obligation with its reference (R29, R35).
        NamedBasis = "named_basis",
        /// Within the purposes and categories the service token was created for.
        TokenScope = "token_scope",
    }
);

impl AccessCondition {
    /// The one role each condition can apply to; the loader refuses other pairings so a
    /// rule cannot silently never match.
    pub fn role(self) -> Role {
        match self {
            AccessCondition::Grant => Role::Support,
            AccessCondition::NamedBasis => Role::PrivacyOfficer,
            AccessCondition::TokenScope => Role::Service,
        }
    }
}

/// One `[[access]]` rule as loaded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccessRule {
    pub role: Role,
    pub categories: Vec<Category>,
    /// The purposes the rule allows; every purpose when the file says `["*"]`.
    pub purposes: Vec<Purpose>,
    pub actions: Vec<AccessAction>,
    pub requires: Option<AccessCondition>,
    pub clause: Clause,
}

/// The compiled verdict for one (role, category, action, purpose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessGrant {
    pub requires: Option<AccessCondition>,
    pub clause: Clause,
}

/// The compiled rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTable {
    /// `[role][category][action][purpose]`; `None` = no rule, denied.
    cells: Vec<Option<AccessGrant>>,
    /// Roles that have at least one rule.
    roles_with_rules: Vec<bool>,
}

fn cell(role: Role, category: Category, action: AccessAction, purpose: Purpose) -> usize {
    ((role.index() * Category::COUNT + category.index()) * AccessAction::COUNT + action.index())
        * Purpose::COUNT
        + purpose.index()
}

impl AccessTable {
    /// Compiles rules; a later rule for the same cell replaces an earlier one only if the
    /// earlier one carried a condition and the later one does not (the more permissive of
    /// two rules wins, so the order of rules in the file never matters).
    pub fn compile(rules: &[AccessRule]) -> Self {
        let mut cells: Vec<Option<AccessGrant>> =
            vec![None; Role::COUNT * Category::COUNT * AccessAction::COUNT * Purpose::COUNT];
        let mut roles_with_rules = vec![false; Role::COUNT];
        for r in rules {
            if let Some(flag) = roles_with_rules.get_mut(r.role.index()) {
                *flag = true;
            }
            for &c in &r.categories {
                for &a in &r.actions {
                    for &p in &r.purposes {
                        let grant = AccessGrant {
                            requires: r.requires,
                            clause: r.clause,
                        };
                        if let Some(slot) = cells.get_mut(cell(r.role, c, a, p)) {
                            let replace = match slot {
                                None => true,
                                Some(old) => old.requires.is_some() && grant.requires.is_none(),
                            };
                            if replace {
                                *slot = Some(grant);
                            }
                        }
                    }
                }
            }
        }
        Self {
            cells,
            roles_with_rules,
        }
    }

    /// The rule allowing `role` to do `action` with `category` data for `purpose`, if any.
    /// Deletion declares no purpose: any delete rule for the category applies.
    pub fn lookup(
        &self,
        role: Role,
        category: Category,
        action: AccessAction,
        purpose: Purpose,
    ) -> Option<AccessGrant> {
        if action == AccessAction::Delete {
            return self.lookup_delete(role, category);
        }
        self.cells
            .get(cell(role, category, action, purpose))
            .copied()
            .flatten()
    }

    /// The rule allowing `role` to delete `category` data: any delete rule for the
    /// category, the one without a condition first (a deletion declares no purpose, R33).
    pub fn lookup_delete(&self, role: Role, category: Category) -> Option<AccessGrant> {
        Purpose::ALL
            .iter()
            .filter_map(|p| {
                self.cells
                    .get(cell(role, category, AccessAction::Delete, *p))
                    .copied()
            })
            .flatten()
            .min_by_key(|g| g.requires.is_some())
    }

    /// Whether the role may touch personal data at all.
    pub fn role_has_rules(&self, role: Role) -> bool {
        self.roles_with_rules
            .get(role.index())
            .copied()
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(role: Role, requires: Option<AccessCondition>) -> AccessRule {
        AccessRule {
            role,
            categories: vec![Category::Support],
            purposes: vec![Purpose::Support],
            actions: vec![AccessAction::Read],
            requires,
            clause: Clause::r(29),
        }
    }

    #[test]
    fn unnamed_cells_are_denied_and_roles_without_rules_are_known() {
        let t = AccessTable::compile(&[rule(Role::Support, Some(AccessCondition::Grant))]);
        assert!(t
            .lookup(
                Role::Support,
                Category::Support,
                AccessAction::Read,
                Purpose::Support
            )
            .is_some());
        assert!(t
            .lookup(
                Role::Support,
                Category::Support,
                AccessAction::Write,
                Purpose::Support
            )
            .is_none());
        assert!(t
            .lookup(
                Role::Support,
                Category::Payment,
                AccessAction::Read,
                Purpose::Support
            )
            .is_none());
        assert!(t.role_has_rules(Role::Support));
        assert!(!t.role_has_rules(Role::Auditor));
    }

    #[test]
    fn the_more_permissive_of_two_rules_wins_in_any_order() {
        let a = rule(Role::Support, Some(AccessCondition::Grant));
        let b = rule(Role::Support, None);
        for rules in [vec![a.clone(), b.clone()], vec![b, a]] {
            let t = AccessTable::compile(&rules);
            let g = t.lookup(
                Role::Support,
                Category::Support,
                AccessAction::Read,
                Purpose::Support,
            );
            assert_eq!(g.map(|g| g.requires), Some(None));
        }
    }

    #[test]
    fn a_delete_rule_applies_whatever_purpose_is_passed() {
        let mut r = rule(Role::Service, Some(AccessCondition::TokenScope));
        r.actions = vec![AccessAction::Delete];
        let t = AccessTable::compile(&[r]);
        assert!(t
            .lookup(
                Role::Service,
                Category::Support,
                AccessAction::Delete,
                Purpose::Marketing
            )
            .is_some());
    }
}
