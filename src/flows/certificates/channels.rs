//! The channels certificates are requested through besides the window: which
//! ones a municipality opened, a request by a registered client system, and
//! the operator's register of those clients and their secrets.

use super::*;

/// The certificate channels a municipality has enabled.
pub fn channels_enabled(list: &str) -> Vec<Channel> {
    list.split(',').filter_map(Channel::parse).collect()
}

/// Sets the certificate channels a municipality answers; logged in its chain.
pub fn set_channels(
    conn: &mut DbConn,
    audit_key: &crate::audit::AuditKey,
    actor: &Actor,
    code: crate::domain::MunicipalityCode,
    on: &[Channel],
) -> Result<(), DbError> {
    let list = on.iter().map(Channel::code).collect::<Vec<_>>().join(",");
    crate::db::write_transaction(conn, |conn| {
        crate::db::models::tenants::TenantRow::set_certificate_channels(
            conn,
            code.as_str(),
            &list,
        )?;
        audit::append(
            conn,
            audit_key,
            actor,
            Entry::done(
                code.as_str(),
                "tenant.certificate_channels",
                None,
                Some(format!("channels={list}")),
            ),
        )
    })
}

/// What a channel client sends: the person as the card read gives them.
#[derive(Debug, Clone)]
pub struct ChannelRequest {
    pub number: MyNumber,
    pub birth_date: NaiveDate,
    pub kind: CertificateKind,
    pub passport: Option<Passport>,
}

/// A registered client asking through its channel, and the channels the
/// municipality has enabled.
pub struct ChannelCaller<'a> {
    pub channel: Channel,
    pub client_id: &'a str,
    pub enabled: &'a [Channel],
}

/// Issues through an app or kiosk channel in the municipality's partition:
/// finds the person by individual number (purpose: certificate lookup) and
/// birth date. `None` when nobody matches; nothing of the application is
/// kept but the certificate's record and the log line.
pub fn issue_by_channel(
    scope: &Scope<'_>,
    conn: &mut TenantConn<'_>,
    issuer: &Issuer<'_>,
    caller: &ChannelCaller<'_>,
    request: &ChannelRequest,
    actor: &Actor,
) -> Result<Option<Issued>, CertError> {
    let log = |conn: &mut TenantConn<'_>, outcome: &str, detail: String| {
        log(
            scope,
            conn,
            actor,
            "certificate.channel",
            None,
            outcome,
            detail,
        )
    };
    let (channel, client_id) = (caller.channel, caller.client_id);
    if !caller.enabled.contains(&channel) {
        log(
            conn,
            "refused",
            format!(
                "channel={} client={client_id} reason=not_enabled",
                channel.code()
            ),
        )?;
        return Err(CertError::ChannelClosed);
    }
    let found = residents::find_by_my_number(
        scope,
        conn,
        &request.number,
        MyNumberPurpose::CertificateLookup,
    )?
    .filter(|r| r.birth_date.date() == request.birth_date);
    let Some(resident) = found else {
        log(
            conn,
            "no_match",
            format!(
                "channel={} client={client_id} purpose={}",
                channel.code(),
                MyNumberPurpose::CertificateLookup.code()
            ),
        )?;
        return Ok(None);
    };
    let app = Application {
        kind: request.kind,
        passport: request.passport.clone(),
        channel,
        identity: None,
        issued_by: client_id.to_string(),
    };
    issue(scope, conn, issuer, &resident, &app, actor).map(Some)
}
/// Registers a channel client (the operator's act) and returns its row and
/// its secret, shown once: only the secret's SHA-256 is kept (it is 256
/// random bits, so a slow hash adds nothing).
pub fn register_client(
    conn: &mut DbConn,
    audit_key: &crate::audit::AuditKey,
    actor: &Actor,
    name: &str,
    kind: Channel,
    networks: &[crate::domain::Network],
) -> Result<(Client, String), DbError> {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let secret = format!("vrsc_{}", B64URL.encode(raw));
    let row = ChannelClientRow {
        id: crate::domain::new_record_id(),
        name: name.to_string(),
        kind: kind.code().into(),
        networks: networks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        secret_hash: secret_hash(&secret),
        created_at: now(),
        created_by: actor.account_id.clone().unwrap_or_default(),
        revoked_at: None,
    };
    crate::db::write_transaction(conn, |conn| {
        row.insert(conn)?;
        audit::append(
            conn,
            audit_key,
            actor,
            Entry::done(
                audit::PLATFORM_CHAIN,
                "channel_client.register",
                Some(format!("channel_client:{}", row.id)),
                Some(format!("kind={} networks={}", row.kind, row.networks)),
            ),
        )
    })?;
    Ok((row.into(), secret))
}

pub fn revoke_client(
    conn: &mut DbConn,
    audit_key: &crate::audit::AuditKey,
    actor: &Actor,
    id: &str,
) -> Result<bool, DbError> {
    crate::db::write_transaction(conn, |conn| {
        let done = ChannelClientRow::revoke(conn, id, now())?;
        audit::append(
            conn,
            audit_key,
            actor,
            Entry {
                chain: audit::PLATFORM_CHAIN,
                action: "channel_client.revoke",
                target: Some(format!("channel_client:{id}")),
                outcome: if done { "ok" } else { "not_found" },
                detail: None,
            },
        )?;
        Ok(done)
    })
}

/// A registered channel client as the operator's register lists it (its
/// secret's hash stays in the flow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// Where it may call from (CIDRs); empty: anywhere.
    pub networks: Vec<String>,
    pub created_at: chrono::NaiveDateTime,
    pub revoked_at: Option<chrono::NaiveDateTime>,
}

impl From<ChannelClientRow> for Client {
    fn from(c: ChannelClientRow) -> Client {
        Client {
            networks: c
                .networks
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect(),
            id: c.id,
            name: c.name,
            kind: c.kind,
            created_at: c.created_at,
            revoked_at: c.revoked_at,
        }
    }
}

/// Every client ever registered, oldest first.
pub fn clients(conn: &mut DbConn) -> Result<Vec<Client>, DbError> {
    Ok(ChannelClientRow::all(conn)?
        .into_iter()
        .map(Client::from)
        .collect())
}

impl Client {
    /// Whether the client may call from this address: anywhere when it has
    /// no networks, else only from inside one of them.
    pub fn may_call_from(&self, ip: Option<std::net::IpAddr>) -> bool {
        let networks: Vec<crate::domain::Network> = self
            .networks
            .iter()
            .filter_map(|n| crate::domain::Network::parse(n).ok())
            .collect();
        networks.is_empty() || ip.is_some_and(|ip| networks.iter().any(|n| n.contains(&ip)))
    }
}

fn secret_hash(secret: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The registered, unrevoked client holding this secret.
pub fn authenticate_client(
    conn: &mut DbConn,
    secret: &str,
) -> Result<Option<(Client, Channel)>, DbError> {
    Ok(ChannelClientRow::by_secret(conn, &secret_hash(secret))?
        .and_then(|c| Channel::parse(&c.kind).map(|k| (c.into(), k))))
}
