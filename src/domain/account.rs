use super::{FieldError, Reason};

/// The six roles of PRODUCT.md, each with exactly its reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Operator,
    NationalViewer,
    PrefecturalViewer,
    MunicipalAdmin,
    MunicipalStaff,
    SiteTablet,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Operator,
        Role::NationalViewer,
        Role::PrefecturalViewer,
        Role::MunicipalAdmin,
        Role::MunicipalStaff,
        Role::SiteTablet,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::NationalViewer => "national_viewer",
            Role::PrefecturalViewer => "prefectural_viewer",
            Role::MunicipalAdmin => "municipal_admin",
            Role::MunicipalStaff => "municipal_staff",
            Role::SiteTablet => "site_tablet",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == s)
    }

    /// Roles that belong to one municipality.
    pub fn is_municipal(&self) -> bool {
        matches!(
            self,
            Role::MunicipalAdmin | Role::MunicipalStaff | Role::SiteTablet
        )
    }

    /// The catalogue key of the role's name.
    pub fn label_key(&self) -> &'static str {
        match self {
            Role::Operator => "role.operator",
            Role::NationalViewer => "role.national_viewer",
            Role::PrefecturalViewer => "role.prefectural_viewer",
            Role::MunicipalAdmin => "role.municipal_admin",
            Role::MunicipalStaff => "role.municipal_staff",
            Role::SiteTablet => "role.site_tablet",
        }
    }
}

/// What a municipal staff account may do beyond seeing its own
/// municipality's pages. Administrators grant only what the work needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Register and manage residents, issue tickets.
    Residents,
    /// Enter or see individual numbers (LG-WAN terminals only).
    MyNumber,
    /// Send transfer inquiries to other municipalities.
    Inquiry,
    /// Issue vaccination certificates.
    Certificates,
    /// Download the municipality's records as CSV.
    Export,
    /// See the address of a resident under a support measure (支援措置:
    /// DV and similar), each time with a reason that is logged.
    ProtectedAddress,
    /// Produce a resident's access record, the answer to a disclosure
    /// request (開示請求).
    Disclosure,
}

impl Permission {
    pub const ALL: [Permission; 7] = [
        Permission::Residents,
        Permission::MyNumber,
        Permission::Inquiry,
        Permission::Certificates,
        Permission::Export,
        Permission::ProtectedAddress,
        Permission::Disclosure,
    ];

    pub fn code(&self) -> &'static str {
        match self {
            Permission::Residents => "residents",
            Permission::MyNumber => "my_number",
            Permission::Inquiry => "inquiry",
            Permission::Certificates => "certificates",
            Permission::Export => "export",
            Permission::ProtectedAddress => "protected_address",
            Permission::Disclosure => "disclosure",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.code() == s)
    }

    pub fn label_key(&self) -> &'static str {
        match self {
            Permission::Residents => "perm.residents",
            Permission::MyNumber => "perm.my_number",
            Permission::Inquiry => "perm.inquiry",
            Permission::Certificates => "perm.certificates",
            Permission::Export => "perm.export",
            Permission::ProtectedAddress => "perm.protected_address",
            Permission::Disclosure => "perm.disclosure",
        }
    }

    /// The stored list ("residents,export") as permissions; unknown words
    /// grant nothing.
    pub fn parse_list(stored: &str) -> Vec<Permission> {
        stored
            .split(',')
            .filter_map(|w| Permission::parse(w.trim()))
            .collect()
    }
}

/// ログインID: 3–64 of lowercase ASCII letters, digits, `.`, `_`, `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginId(String);

impl LoginId {
    pub const FIELD: &'static str = "ログインID";

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let s = input.trim().to_ascii_lowercase();
        let err = |reason| FieldError {
            field: Self::FIELD,
            reason,
        };
        if s.is_empty() {
            return Err(err(Reason::Empty));
        }
        if s.len() > 64 {
            return Err(err(Reason::TooLong(64)));
        }
        if s.len() < 3
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err(err(Reason::LoginIdChars));
        }
        Ok(LoginId(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password as chosen: 12–128 characters, with letters and digits.
pub struct NewPassword(String);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(…)")
    }
}

impl NewPassword {
    pub const FIELD: &'static str = "新しいパスワード";

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let err = |reason| FieldError {
            field: Self::FIELD,
            reason,
        };
        let n = input.chars().count();
        if n < 12 {
            return Err(err(Reason::PasswordShort));
        }
        if n > 128 {
            return Err(err(Reason::TooLong(128)));
        }
        let letters = input.chars().any(|c| c.is_alphabetic());
        let digits = input.chars().any(|c| c.is_numeric());
        if !(letters && digits) {
            return Err(err(Reason::PasswordClasses));
        }
        Ok(NewPassword(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A random password for a new account, shown once to whoever creates it.
    pub fn generate() -> NewPassword {
        use rand::Rng;
        const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut rng = rand::rngs::OsRng;
        loop {
            let s: String = (0..16)
                .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
                .collect();
            if let Ok(p) = NewPassword::parse(&s) {
                return p;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.code()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn permission_lists() {
        assert_eq!(
            Permission::parse_list("residents,bogus,my_number"),
            vec![Permission::Residents, Permission::MyNumber]
        );
        assert!(Permission::parse_list("").is_empty());
    }

    #[test]
    fn login_ids() {
        assert_eq!(
            LoginId::parse(" Koga.Admin ").unwrap().as_str(),
            "koga.admin"
        );
        assert_eq!(
            LoginId::parse("a b").unwrap_err().reason,
            Reason::LoginIdChars
        );
        assert_eq!(LoginId::parse("").unwrap_err().reason, Reason::Empty);
    }

    #[test]
    fn password_policy() {
        assert_eq!(
            NewPassword::parse("short1").unwrap_err().reason,
            Reason::PasswordShort
        );
        assert_eq!(
            NewPassword::parse("onlyletterslong").unwrap_err().reason,
            Reason::PasswordClasses
        );
        assert!(NewPassword::parse("letters and 12345").is_ok());
        assert!(NewPassword::parse(NewPassword::generate().as_str()).is_ok());
    }
}
