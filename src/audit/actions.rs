//! Every action the operation log records, with the group a reviewer
//! reads it under. Pages show an action by its label (`log.action.<code>`
//! in the locales) and filter by choosing one from this list; the reports
//! count lines by group. A line with an action missing here fails the
//! tests (see `audit::line`).

/// What kind of access a line is, as the per-account report counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// A lookup by individual number.
    Number,
    /// Opening a resident's record, a search, a queue of records.
    View,
    /// A download of personal data.
    Export,
    /// A ticket or certificate on paper or as a file for the resident.
    Print,
    /// A change to personal data.
    Change,
    /// An inquiry or an answer between municipalities.
    Transfer,
    /// Logins, logouts and an account's own settings.
    Session,
    /// The municipality's settings, accounts, sites and keys.
    Admin,
}

impl Group {
    pub const ALL: [Group; 8] = [
        Group::Number,
        Group::View,
        Group::Export,
        Group::Print,
        Group::Change,
        Group::Transfer,
        Group::Session,
        Group::Admin,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Group::Number => "number",
            Group::View => "view",
            Group::Export => "export",
            Group::Print => "print",
            Group::Change => "change",
            Group::Transfer => "transfer",
            Group::Session => "session",
            Group::Admin => "admin",
        }
    }

    pub fn parse(code: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.code() == code)
    }

    /// The actions of this group.
    pub fn actions(self) -> impl Iterator<Item = &'static str> {
        ACTIONS
            .iter()
            .filter(move |(_, g)| *g == self)
            .map(|(a, _)| *a)
    }
}

/// Every action, with its group.
pub const ACTIONS: &[(&str, Group)] = &[
    ("resident.lookup_by_number", Group::Number),
    ("my_number.access", Group::Number),
    ("resident.view", Group::View),
    ("resident.search", Group::View),
    ("residents.reconcile", Group::View),
    ("resident.address_view", Group::View),
    ("resident.access_record", Group::View),
    ("doses.queue.view", Group::View),
    ("certificate.view", Group::View),
    ("provisions.read", Group::View),
    ("statistics.municipal", Group::View),
    ("doses.export", Group::Export),
    ("export.request", Group::Export),
    ("export.decide", Group::Admin),
    ("tenant.export_approval", Group::Admin),
    ("account.export", Group::Export),
    ("log.export", Group::Export),
    ("transfer.bulk_result", Group::Export),
    ("doses.batch_result", Group::Export),
    ("ticket.print", Group::Print),
    ("ticket.reissue", Group::Print),
    ("notices.run", Group::Print),
    ("notices.print", Group::Print),
    ("residents.due", Group::View),
    ("residents.due_export", Group::Export),
    ("certificate.issue", Group::Print),
    ("certificate.download", Group::Print),
    ("certificate.prepare", Group::Print),
    ("resident.correct", Group::Change),
    ("resident.flag", Group::Change),
    ("resident.protection", Group::Change),
    ("residents.import", Group::Change),
    ("residents.changes", Group::Change),
    ("resident.erase", Group::Change),
    ("residents.retention", Group::Admin),
    ("residents.retention_export", Group::Export),
    ("doses.record", Group::Change),
    ("doses.batch", Group::Change),
    ("doses.change", Group::Change),
    ("tickets.scan", Group::Change),
    ("certificate.revoke", Group::Change),
    ("transfer.inquire", Group::Transfer),
    ("transfer.answer", Group::Transfer),
    ("transfer.bulk", Group::Transfer),
    ("transfer.hold", Group::Transfer),
    ("transfer.release", Group::Transfer),
    ("provisions.purge", Group::Transfer),
    ("certificate.channel", Group::Transfer),
    ("login", Group::Session),
    ("logout", Group::Session),
    ("account.locked", Group::Session),
    ("account.password_change", Group::Session),
    ("account.totp_enrol", Group::Session),
    ("account.create", Group::Admin),
    ("account.disable", Group::Admin),
    ("account.unlock", Group::Admin),
    ("account.review", Group::Admin),
    ("account.device_code", Group::Admin),
    ("account.shared_review", Group::Admin),
    ("account.device_enrol", Group::Session),
    ("account.device_revoke", Group::Admin),
    ("tenant.require_devices", Group::Admin),
    ("log.review", Group::Admin),
    ("log.settings", Group::Admin),
    ("network.add", Group::Admin),
    ("network.remove", Group::Admin),
    ("tenant.require_totp", Group::Admin),
    ("tenant.password_rules", Group::Admin),
    ("tenant.certificate_channels", Group::Admin),
    ("sites.register", Group::Admin),
    ("sites.close", Group::Admin),
    ("vaccines.product.add", Group::Admin),
    ("vaccines.lot.add", Group::Admin),
    ("vaccines.product.in_use", Group::Admin),
    ("channel_client.register", Group::Admin),
    ("channel_client.revoke", Group::Admin),
    ("issuer.rotate", Group::Admin),
    ("municipality.enable", Group::Admin),
    ("notice.close", Group::Admin),
];

/// Every outcome a line can have.
pub const OUTCOMES: &[&str] = &[
    "ok",
    "refused",
    "not_found",
    "no_match",
    "provided",
    "held",
    "rejected",
    "failed",
];

pub fn group_of(action: &str) -> Option<Group> {
    ACTIONS.iter().find(|(a, _)| *a == action).map(|(_, g)| *g)
}

pub fn is_known(action: &str) -> bool {
    group_of(action).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_and_outcome_has_a_label_in_both_languages() {
        for lang in [crate::i18n::Lang::Ja, crate::i18n::Lang::En] {
            let t = crate::i18n::T::new(lang, "/");
            for (a, _) in ACTIONS {
                let key = format!("log.action.{a}");
                assert_ne!(t.s(&key), key, "{lang:?} has no label for {a}");
            }
            for o in OUTCOMES {
                let key = format!("log.outcome.{o}");
                assert_ne!(t.s(&key), key, "{lang:?} has no label for outcome {o}");
            }
            for g in Group::ALL {
                let key = format!("log.group.{}", g.code());
                assert_ne!(t.s(&key), key, "{lang:?} has no label for group {g:?}");
            }
        }
    }

    #[test]
    fn no_action_is_listed_twice() {
        let mut seen = std::collections::HashSet::new();
        for (a, _) in ACTIONS {
            assert!(seen.insert(*a), "{a} listed twice");
        }
    }
}
