//! The objects of the access model — plans, tenants, teams, users (keys
//! are in [`crate::keys`]) — and the checks every one of them passes before
//! it is stored. Each is stored as a JSON document (see [`crate::store`]);
//! these structs are that document.

use crate::error::{ErrorKind, GatewayError};
use crate::limits::Limits;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The kinds of object the admin API manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Plan,
    Tenant,
    Team,
    User,
    Key,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Plan, Kind::Tenant, Kind::Team, Kind::User, Kind::Key];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Plan => "plan",
            Kind::Tenant => "tenant",
            Kind::Team => "team",
            Kind::User => "user",
            Kind::Key => "key",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The prefix of ids the gateway makes for this kind.
    pub fn id_prefix(self) -> &'static str {
        match self {
            Kind::Plan => "plan",
            Kind::Tenant => "ten",
            Kind::Team => "team",
            Kind::User => "usr",
            Kind::Key => "key",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Trial,
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Trial => "trial",
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

fn active() -> TenantStatus {
    TenantStatus::Active
}

/// A spending cap for one calendar period (docs/cost.md#budgets). When the
/// period's spend (committed + reserved by requests in flight) would pass
/// it, `on_exceed` says what happens: refused with 429 `insufficient_quota`
/// until the period ends (`block`), served from a cheaper route
/// (`downgrade`), or let through at a lower rate (`throttle`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub period: crate::budget::Period,
    /// Dollars per period (at most nine decimals).
    #[serde(default)]
    pub max_usd: Option<f64>,
    /// Tokens (input + output) per period.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default)]
    pub on_exceed: OnExceed,
    /// `downgrade`: the route that serves requests once the budget is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downgrade_to: Option<String>,
    /// `throttle`: requests per minute let through once the budget is spent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_rpm: Option<u64>,
}

/// What a budget does to a request that would pass it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExceed {
    #[default]
    Block,
    Downgrade,
    Throttle,
}

impl Budget {
    /// `max_usd` in nano-dollars, exactly.
    pub fn max_nanos(&self) -> Option<i64> {
        self.max_usd.map(|usd| (usd * 1e9).round() as i64)
    }

    /// The action as the ledger's caps carry it.
    pub fn action(&self) -> crate::budget::Action {
        match (self.on_exceed, &self.downgrade_to, self.throttle_rpm) {
            (OnExceed::Downgrade, Some(route), _) => {
                crate::budget::Action::Downgrade(std::sync::Arc::from(route.as_str()))
            }
            (OnExceed::Throttle, _, Some(rpm)) => crate::budget::Action::Throttle(rpm),
            _ => crate::budget::Action::Block,
        }
    }
}

/// Checks `budgets` (the field is `param`): each caps something, money in
/// whole nano-dollars, at most one budget per period.
pub fn check_budgets(budgets: &[Budget], param: &str) -> Result<(), GatewayError> {
    for (i, b) in budgets.iter().enumerate() {
        let at = format!("{param}[{i}]");
        if b.max_usd.is_none() && b.max_tokens.is_none() {
            return Err(invalid(&at, format!("'{at}' caps nothing: give max_usd, max_tokens or both.")));
        }
        if let Some(usd) = b.max_usd {
            let nanos = usd * 1e9;
            if !usd.is_finite() || !(0.0..=1e9).contains(&usd) || (nanos - nanos.round()).abs() > 1e-3 {
                return Err(invalid(
                    &format!("{at}.max_usd"),
                    format!("'{at}.max_usd' must be 0 to 10^9 dollars with at most nine decimals."),
                ));
            }
        }
        if b.max_tokens.is_some_and(|t| t > MAX_LIMIT) {
            return Err(invalid(&format!("{at}.max_tokens"), format!("'{at}.max_tokens' is at most 10^12.")));
        }
        if budgets[..i].iter().any(|o| o.period == b.period) {
            return Err(invalid(&format!("{at}.period"), format!("'{at}': one budget per period.")));
        }
        check_action(b, &at)?;
    }
    if budgets.len() > 2 {
        return Err(invalid(param, format!("'{param}' holds at most one daily and one monthly budget.")));
    }
    Ok(())
}

/// `downgrade_to` with `downgrade` only (and required by it), `throttle_rpm`
/// likewise with `throttle`.
fn check_action(b: &Budget, at: &str) -> Result<(), GatewayError> {
    let route_field = format!("{at}.downgrade_to");
    let rpm_field = format!("{at}.throttle_rpm");
    match (b.on_exceed, &b.downgrade_to, b.throttle_rpm) {
        (OnExceed::Downgrade, None, _) => {
            Err(invalid(&route_field, format!("'{at}' downgrades: name the route in '{route_field}'.")))
        }
        (OnExceed::Downgrade, Some(route), _) if route.is_empty() || route.len() > 256 => {
            Err(invalid(&route_field, format!("'{route_field}' must be a route name (1 to 256 bytes).")))
        }
        (OnExceed::Throttle, _, None) => {
            Err(invalid(&rpm_field, format!("'{at}' throttles: give the rate in '{rpm_field}'.")))
        }
        (OnExceed::Throttle, _, Some(rpm)) if rpm == 0 || rpm > MAX_LIMIT => {
            Err(invalid(&rpm_field, format!("'{rpm_field}' must be 1 to 10^12 requests per minute.")))
        }
        (action, Some(_), _) if action != OnExceed::Downgrade => {
            Err(invalid(&route_field, format!("'{route_field}' goes with \"on_exceed\": \"downgrade\" only.")))
        }
        (action, _, Some(_)) if action != OnExceed::Throttle => {
            Err(invalid(&rpm_field, format!("'{rpm_field}' goes with \"on_exceed\": \"throttle\" only.")))
        }
        _ => Ok(()),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: String,
    pub name: String,
    /// Per tenant on the plan.
    #[serde(default)]
    pub limits: Limits,
    /// Per key of those tenants.
    #[serde(default)]
    pub key_limits: Limits,
    #[serde(default)]
    pub allowed_routes: Option<Vec<String>>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    #[serde(default = "active")]
    pub status: TenantStatus,
    #[serde(default)]
    pub trial_ends_at: Option<i64>,
    #[serde(default)]
    pub plan_id: Option<String>,
    /// Overrides the plan's `limits`, field by field.
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub budgets: Vec<Budget>,
    #[serde(default)]
    pub allowed_routes: Option<Vec<String>>,
    /// Its requests' data classification when neither the request nor the
    /// key names one (`None`: `classification.default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<switchyard_types::Classification>,
    /// Regions its requests may be served in (providers' `region`);
    /// `None`: any. A deployment without a region is then not allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_regions: Option<Vec<String>>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Tenant {
    /// Why the tenant's keys are refused at `now`, if they are.
    pub fn refusal(&self, now_ms: i64) -> Option<&'static str> {
        match self.status {
            TenantStatus::Active => None,
            TenantStatus::Suspended => Some("This organization is suspended."),
            TenantStatus::Trial if self.trial_ends_at.is_some_and(|t| t <= now_ms) => {
                Some("This organization's trial has ended.")
            }
            TenantStatus::Trial => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub budgets: Vec<Budget>,
    #[serde(default)]
    pub allowed_routes: Option<Vec<String>>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: String,
    pub tenant_id: String,
    #[serde(default)]
    pub team_id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What the admin API needs to know about each kind, to handle them all
/// with one code path.
pub trait Entity: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    const KIND: Kind;
    /// Fields a client may send on create.
    const CREATE_FIELDS: &'static [&'static str];
    /// Fields a client may send on `PATCH`.
    const PATCH_FIELDS: &'static [&'static str];
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    /// The tenant it belongs to (a tenant belongs to itself; plans to none).
    fn tenant_id(&self) -> Option<&str>;
    fn set_updated_at(&mut self, at: i64);
}

macro_rules! entity {
    ($t:ty, $kind:expr, create: $create:expr, patch: $patch:expr, tenant: |$s:ident| $tenant:expr) => {
        impl Entity for $t {
            const KIND: Kind = $kind;
            const CREATE_FIELDS: &'static [&'static str] = $create;
            const PATCH_FIELDS: &'static [&'static str] = $patch;
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn tenant_id(&self) -> Option<&str> {
                let $s = self;
                $tenant
            }
            fn set_updated_at(&mut self, at: i64) {
                self.updated_at = at;
            }
        }
    };
}

entity!(Plan, Kind::Plan,
    create: &["id", "name", "limits", "key_limits", "allowed_routes", "metadata"],
    patch: &["name", "limits", "key_limits", "allowed_routes", "metadata"],
    tenant: |s| { let _ = s; None });
entity!(Tenant, Kind::Tenant,
    create: &["id", "name", "status", "trial_ends_at", "plan_id", "limits", "budgets", "allowed_routes", "classification", "allowed_regions", "metadata"],
    patch: &["name", "status", "trial_ends_at", "plan_id", "limits", "budgets", "allowed_routes", "classification", "allowed_regions", "metadata"],
    tenant: |s| Some(&s.id));
entity!(Team, Kind::Team,
    create: &["tenant_id", "name", "limits", "budgets", "allowed_routes", "metadata"],
    patch: &["name", "limits", "budgets", "allowed_routes", "metadata"],
    tenant: |s| Some(&s.tenant_id));
entity!(User, Kind::User,
    create: &["tenant_id", "team_id", "name", "email", "metadata"],
    patch: &["team_id", "name", "email", "metadata"],
    tenant: |s| Some(&s.tenant_id));
entity!(crate::keys::KeyRecord, Kind::Key,
    create: &["tenant_id", "team_id", "user_id", "name", "roles", "allowed_routes", "expires_at", "limits", "budgets", "unlimited", "classification", "metadata"],
    patch: &["team_id", "user_id", "name", "roles", "allowed_routes", "expires_at", "limits", "budgets", "unlimited", "classification", "metadata"],
    tenant: |s| Some(&s.tenant_id));

/// The largest limit accepted (10¹²): bigger means "no limit" and should
/// be written as null.
pub const MAX_LIMIT: u64 = 1_000_000_000_000;
const MAX_NAME: usize = 100;
const MAX_METADATA_ENTRIES: usize = 32;
const MAX_METADATA_BYTES: usize = 4096;
const MAX_ROUTES: usize = 256;
const MAX_EMAIL: usize = 254;

pub fn invalid(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidRequest, message).with_param(param)
}

/// Checks the fields every kind shares on a JSON body before it is turned
/// into an object: only `allowed` fields, and sizes within bounds (so an
/// oversize value is refused before it is parsed further).
pub fn check_body(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), GatewayError> {
    for (field, value) in body {
        if !allowed.contains(&field.as_str()) {
            let why = if ["id", "created_at", "updated_at", "status", "prefix", "replaced_by", "key", "hash"]
                .contains(&field.as_str())
            {
                format!("'{field}' cannot be set here.")
            } else {
                format!("Unknown field '{field}'. Allowed: {}.", allowed.join(", "))
            };
            return Err(invalid(field, why));
        }
        match (field.as_str(), value) {
            ("name", Value::String(s)) => check_name(s, "name")?,
            ("metadata", Value::Object(m)) => {
                if m.len() > MAX_METADATA_ENTRIES {
                    return Err(invalid(
                        "metadata",
                        format!("'metadata' holds at most {MAX_METADATA_ENTRIES} entries."),
                    ));
                }
                if value.to_string().len() > MAX_METADATA_BYTES {
                    return Err(invalid(
                        "metadata",
                        format!("'metadata' is at most {MAX_METADATA_BYTES} bytes as JSON."),
                    ));
                }
            }
            ("allowed_regions", Value::Array(a)) if a.len() > MAX_ROUTES => {
                return Err(invalid("allowed_regions", format!("'allowed_regions' holds at most {MAX_ROUTES} names.")));
            }
            ("allowed_routes", Value::Array(a)) if a.len() > MAX_ROUTES => {
                return Err(invalid("allowed_routes", format!("'allowed_routes' holds at most {MAX_ROUTES} names.")));
            }
            ("email", Value::String(e))
                if e.len() > MAX_EMAIL || e.matches('@').count() != 1 || e.starts_with('@') || e.ends_with('@') =>
            {
                return Err(invalid("email", "'email' must be an address of at most 254 characters."));
            }
            ("id", Value::String(id)) => {
                let ok = !id.is_empty()
                    && id.len() <= 64
                    && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !ok {
                    return Err(invalid("id", "'id' must be 1 to 64 characters of a-z, 0-9 and '-'."));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn check_name(s: &str, param: &str) -> Result<(), GatewayError> {
    let ok = !s.trim().is_empty()
        && s.chars().count() <= MAX_NAME
        && s.chars().all(|c| c.is_alphanumeric() || " -_.@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(param, format!("'{param}' must be 1 to {MAX_NAME} characters of letters, digits, space and -_.@")))
    }
}

pub fn check_limits(l: &Limits, param: &str) -> Result<(), GatewayError> {
    for (name, v) in [("rpm", l.rpm), ("tpm", l.tpm), ("max_concurrent", l.max_concurrent)] {
        if v.is_some_and(|v| v > MAX_LIMIT) {
            return Err(invalid(&format!("{param}.{name}"), format!("'{param}.{name}' is at most 10^12.")));
        }
    }
    Ok(())
}

/// Decodes `value` into `T`, naming the field that is wrong.
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T, GatewayError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let named = unknown_field(&message).or_else(|| missing_field(&message));
        let param = match (path.as_str(), named) {
            (".", field) => field.unwrap_or_default(),
            (p, Some(field)) if !p.ends_with(&field) => format!("{p}.{field}"),
            _ => path,
        };
        invalid(&param, format!("Invalid value for '{param}': {message}."))
    })
}

/// serde names a missing field in its message: "missing field `x`".
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// serde names an unknown field in its message: "unknown field `x`, expected …".
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn unknown_and_server_fields_are_named() {
        let e = check_body(&body(json!({"name": "a", "colour": 1})), Team::CREATE_FIELDS).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("colour"));
        let e = check_body(&body(json!({"status": "revoked"})), crate::keys::KeyRecord::PATCH_FIELDS).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("status"));
        assert!(e.message.contains("cannot be set"));
    }

    #[test]
    fn oversize_values_are_refused() {
        let long = "x".repeat(101);
        assert_eq!(check_body(&body(json!({"name": long})), Team::CREATE_FIELDS).unwrap_err().param.unwrap(), "name");
        let many: Map<String, Value> = (0..33).map(|i| (format!("k{i}"), json!(i))).collect();
        let e = check_body(&body(json!({"metadata": many})), Team::CREATE_FIELDS).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("metadata"));
        let big = json!({"metadata": {"k": "v".repeat(5000)}});
        assert_eq!(check_body(&body(big), Team::CREATE_FIELDS).unwrap_err().param.unwrap(), "metadata");
        let routes: Vec<String> = (0..257).map(|i| format!("r{i}")).collect();
        let e = check_body(&body(json!({"allowed_routes": routes})), Team::CREATE_FIELDS).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("allowed_routes"));
        assert!(check_body(&body(json!({"id": "Acme!"})), Tenant::CREATE_FIELDS).is_err());
        assert!(check_body(&body(json!({"email": "no-at"})), User::CREATE_FIELDS).is_err());
        assert!(check_name("ok name-1.x@y", "name").is_ok());
        assert!(check_name("  ", "name").is_err());
        assert!(check_name("semi;colon", "name").is_err());
    }

    #[test]
    fn decode_names_the_path() {
        let e = decode::<Team>(json!({"id": "t", "tenant_id": "a", "name": "n", "limits": {"rpm": "ten"},
            "created_at": 0, "updated_at": 0}))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("limits.rpm"));
        let e = decode::<Team>(json!({"id": "t", "tenant_id": "a", "name": "n", "limits": {"rpn": 1},
            "created_at": 0, "updated_at": 0}))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("limits.rpn"), "{}", e.message);
        let e = decode::<Team>(json!({"id": "t", "tenant_id": "a", "name": 5, "created_at": 0, "updated_at": 0}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("name"));
        let e = check_limits(&Limits { rpm: Some(MAX_LIMIT + 1), ..Limits::default() }, "limits").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("limits.rpm"));
    }

    #[test]
    fn trial_and_suspended_tenants_are_refused() {
        let mut t: Tenant = decode(json!({"id": "a", "name": "A", "created_at": 0, "updated_at": 0})).unwrap();
        assert_eq!(t.status, TenantStatus::Active);
        assert!(t.refusal(10).is_none());
        t.status = TenantStatus::Trial;
        t.trial_ends_at = Some(10);
        assert!(t.refusal(9).is_none());
        assert!(t.refusal(10).is_some());
        t.status = TenantStatus::Suspended;
        assert!(t.refusal(0).is_some());
    }
}
