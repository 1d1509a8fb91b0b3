//! Config versions: every config the gateway runs is stored — the file's
//! text before `${VAR}` interpolation (so no secret from the environment is
//! stored), who made it active and why. A rollback activates an earlier
//! text as a new version, atomically (the next request sees it); a route
//! rollback restores one route's entry from the last version where it was
//! different. Both are audited. The file stays the source of truth: the
//! next change to it is loaded and becomes the newest version.

use crate::access::audit::{Actor, ActorKind, AuditRecord, Origin};
use crate::access::Principal;
use crate::error::{ErrorKind, GatewayError};
use crate::store::{ConfigVersion, StoreError};
use crate::Gateway;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use switchyard_config::interpolate::ProcessEnv;

impl Gateway {
    /// The stored config version running and when it was made (0, 0:
    /// none stored yet).
    pub fn config_version(&self) -> (i64, i64) {
        (self.config_version.load(Ordering::Acquire), self.config_made_at.load(Ordering::Acquire))
    }

    fn set_running(&self, version: i64, made_at: i64) {
        self.config_made_at.store(made_at, Ordering::Release);
        self.config_version.store(version, Ordering::Release);
    }

    /// At start, with the file's config running: the file is news when its
    /// text differs from the newest version that came from a file — then it
    /// is stored and keeps running. Otherwise the newest version runs — so
    /// changes made over the API (rollouts, rollbacks) survive a restart
    /// until the file itself changes. A newest version that does not run
    /// here leaves the file running, stored as the newest.
    pub async fn start_config(&self, file_text: &str) {
        let versions = match self.store.config_versions().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "config versions not read; running the file");
                return;
            }
        };
        let newest_file = versions.iter().rev().find(|v| v.source == "file");
        let newest = match (versions.last(), newest_file) {
            (Some(newest), Some(file)) if file.text == file_text => {
                self.set_running(newest.version, newest.created_at);
                if newest.version == file.version {
                    return;
                }
                newest
            }
            _ => {
                self.record_config(file_text, "system", "file").await;
                return;
            }
        };
        match self.run_text(&newest.text) {
            Ok(()) => tracing::info!(
                version = newest.version,
                "running the newest stored config version (made over the API after the file)"
            ),
            Err(e) => {
                tracing::error!(error = %e, "the newest stored config version does not run; running the file");
                self.record_config(file_text, "system", "file").await;
            }
        }
    }

    /// Loads a stored config's text and swaps it in.
    fn run_text(&self, text: &str) -> Result<(), String> {
        let config = switchyard_config::load_str(text, "config version", &ProcessEnv).map_err(|e| e.to_string())?;
        self.install(self.prepare(config)?);
        Ok(())
    }

    /// Stores the file's `text` as a new version unless it is the newest
    /// already. Failures are logged: the config runs whether or not it is
    /// stored.
    pub async fn record_config(&self, text: &str, actor: &str, source: &str) -> Option<i64> {
        for _ in 0..3 {
            let newest = match self.store.newest_config_version().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "config version not stored");
                    return None;
                }
            };
            if let Some(n) = newest.as_ref().filter(|n| n.text == text) {
                self.set_running(n.version, n.created_at);
                return Some(n.version);
            }
            let v = ConfigVersion {
                version: 0,
                created_at: crate::now_unix_ms(),
                actor: actor.into(),
                source: source.into(),
                text: text.into(),
            };
            match self.store.put_config_version(&v, newest.map_or(0, |n| n.version)).await {
                Ok(n) => {
                    self.set_running(n, v.created_at);
                    self.announce_config(n);
                    return Some(n);
                }
                // Another replica stored one meanwhile: look again.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "config version not stored");
                    return None;
                }
            }
        }
        None
    }

    /// Tells other replicas (Redis, when configured) that version `n` was
    /// stored; they poll for it anyway every `admin.refresh_interval`.
    fn announce_config(&self, n: i64) {
        if let Some(feed) = &self.changes {
            feed.announce_config(n);
        }
    }

    /// Runs the newest stored version if it is newer than the one running:
    /// how a change made through another replica reaches this one. Called
    /// by the server every `admin.refresh_interval`, and at once when
    /// another replica announces a version. A version that does not load here
    /// (an environment variable this replica lacks) is logged and skipped.
    pub async fn sync_config(&self) {
        // The number first: the text is read only when there is news.
        let (running, _) = self.config_version();
        match self.store.newest_config_version_number().await {
            Ok(n) if n > running => {}
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(error = %e, "config versions not polled");
                return;
            }
        }
        let newest = match self.store.newest_config_version().await {
            Ok(Some(n)) if n.version > running => n,
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(error = %e, "config versions not read");
                return;
            }
        };
        match self.run_text(&newest.text) {
            Ok(()) => {
                self.metrics.config_reloads.inc(&["ok"]);
                tracing::info!(version = newest.version, source = %newest.source, actor = %newest.actor, "config version from the store applied");
            }
            Err(e) => {
                self.metrics.config_reloads.inc(&["error"]);
                tracing::error!(version = newest.version, error = %e, "stored config version does not run here; the running config stays");
            }
        }
        self.set_running(newest.version, newest.created_at);
    }

    /// `GET /api/v1/config/versions`: newest first, without texts.
    pub async fn config_versions_list(&self, who: &Principal) -> Result<Value, GatewayError> {
        platform_admin(who)?;
        let versions = self.store.config_versions().await.map_err(unavailable)?;
        let active = versions.last().map(|v| v.version);
        let data: Vec<Value> = versions
            .iter()
            .enumerate()
            .rev()
            .map(|(i, v)| {
                let (added, removed) = i.checked_sub(1).map_or((line_count(&v.text), 0), |p| {
                    let d = diff(&versions[p].text, &v.text);
                    (d.iter().filter(|l| l.starts_with('+')).count(), d.iter().filter(|l| l.starts_with('-')).count())
                });
                json!({"version": v.version, "created_at": v.created_at, "actor": v.actor, "source": v.source,
                       "active": Some(v.version) == active, "lines_added": added, "lines_removed": removed})
            })
            .collect();
        Ok(json!({"object": "list", "data": data}))
    }

    /// `GET /api/v1/config/versions/{n}`: its text (literal secrets
    /// redacted) and its diff against the version before it.
    pub async fn config_version_show(&self, who: &Principal, n: i64) -> Result<Value, GatewayError> {
        platform_admin(who)?;
        let versions = self.store.config_versions().await.map_err(unavailable)?;
        let i = versions.iter().position(|v| v.version == n).ok_or_else(|| not_found(n))?;
        let v = &versions[i];
        let before = i.checked_sub(1).map_or("", |p| versions[p].text.as_str());
        Ok(json!({"version": v.version, "created_at": v.created_at, "actor": v.actor, "source": v.source,
                  "active": i + 1 == versions.len(), "text": redact(&v.text),
                  "diff": diff(&redact(before), &redact(&v.text))}))
    }

    /// `POST /api/v1/config/rollback` `{"version": n}`: activates version
    /// n's text as a new version.
    pub async fn config_rollback(&self, who: &Principal, body: &[u8], origin: &Origin) -> Result<Value, GatewayError> {
        platform_admin(who)?;
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            version: i64,
        }
        let body: Body = serde_json::from_slice(body).map_err(|e| {
            GatewayError::new(ErrorKind::InvalidRequest, format!("Expected {{\"version\": n}}: {e}."))
                .with_param("version")
        })?;
        let versions = self.store.config_versions().await.map_err(unavailable)?;
        let target = versions.iter().find(|v| v.version == body.version).ok_or_else(|| not_found(body.version))?;
        let reason = format!("to version {}", body.version);
        let after = versions.last().map_or(0, |v| v.version);
        self.activate(who.actor(), &target.text, "rollback", &reason, origin, after, ErrorKind::Conflict)
            .await
            .map(|n| json!({"version": n, "restored": body.version}))
    }

    /// `POST /api/v1/models/{route}/rollback`: the route's entry as it was in
    /// the last version where it differed from now, in a new version.
    pub async fn route_rollback(&self, who: &Principal, route: &str, origin: &Origin) -> Result<Value, GatewayError> {
        platform_admin(who)?;
        let versions = self.store.config_versions().await.map_err(unavailable)?;
        let Some(current) = versions.last() else {
            return Err(GatewayError::new(ErrorKind::Conflict, "No config version is stored yet."));
        };
        let mut doc: serde_yaml::Value = parse(&current.text)?;
        let now = route_entry(&doc, route).cloned();
        if now.is_none() {
            return Err(GatewayError::new(
                ErrorKind::NotFound,
                format!("No route named `{route}` in the active config."),
            ));
        }
        let earlier = versions.iter().rev().skip(1).find_map(|v| {
            let old = parse(&v.text).ok()?;
            let entry = route_entry(&old, route).cloned()?;
            (Some(&entry) != now.as_ref()).then_some((v.version, entry))
        });
        let Some((from, entry)) = earlier else {
            return Err(GatewayError::new(
                ErrorKind::Conflict,
                format!("No earlier version defines `{route}` differently: nothing to roll back to."),
            ));
        };
        if let Some(slot) = route_entry_mut(&mut doc, route) {
            *slot = entry;
        }
        let text = serde_yaml::to_string(&doc)
            .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("config could not be written: {e}")))?;
        let reason = format!("route {route} as in version {from}");
        self.activate(who.actor(), &text, "route-rollback", &reason, origin, current.version, ErrorKind::Conflict)
            .await
            .map(|n| json!({"version": n, "route": route, "restored_from": from}))
    }

    /// Changes the newest stored config with `edit` (which says why) and
    /// activates the result as a new version.
    pub(crate) async fn edit_config(
        &self,
        actor: Actor,
        source: &str,
        origin: &Origin,
        edit: impl FnOnce(&mut serde_yaml::Value) -> Result<String, GatewayError>,
    ) -> Result<i64, GatewayError> {
        let newest = self.store.newest_config_version().await.map_err(unavailable)?;
        let Some(newest) = newest else {
            return Err(GatewayError::new(ErrorKind::Conflict, "No config version is stored yet."));
        };
        let mut doc = parse(&newest.text)?;
        let reason = edit(&mut doc)?;
        let text = serde_yaml::to_string(&doc)
            .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("config could not be written: {e}")))?;
        // The change came from the caller's input: a config it breaks is a
        // bad request.
        self.activate(actor, &text, source, &reason, origin, newest.version, ErrorKind::InvalidRequest).await
    }

    /// Loads `text`, stores it as the version after `after` (refused with
    /// 409 if another came first), swaps it in and audits it. A text that
    /// does not load or start is refused with `refused`.
    #[allow(clippy::too_many_arguments)]
    async fn activate(
        &self,
        actor: Actor,
        text: &str,
        source: &str,
        reason: &str,
        origin: &Origin,
        after: i64,
        refused: ErrorKind,
    ) -> Result<i64, GatewayError> {
        let config = switchyard_config::load_str(text, "config version", &ProcessEnv)
            .map_err(|e| GatewayError::new(refused, format!("That config does not load: {e}")))?;
        let next =
            self.prepare(config).map_err(|e| GatewayError::new(refused, format!("That config does not start: {e}")))?;
        let actor_name = match (&actor.id, &actor.kind) {
            (Some(id), _) => id.clone(),
            (None, ActorKind::System) => "system".to_string(),
            (None, _) => "bootstrap".to_string(),
        };
        let v = ConfigVersion {
            version: 0,
            created_at: crate::now_unix_ms(),
            actor: actor_name,
            source: source.into(),
            text: text.into(),
        };
        let n = self.store.put_config_version(&v, after).await.map_err(|e| match e {
            StoreError::Conflict(_) => GatewayError::new(
                ErrorKind::Conflict,
                format!(
                    "The config changed after version {after} (another change came first); read it again and retry."
                ),
            ),
            e => unavailable(e),
        })?;
        self.install(next);
        self.set_running(n, v.created_at);
        self.announce_config(n);
        let record = AuditRecord::new(actor, format!("config.{source}"), origin)
            .target("config_version", &n.to_string())
            .reason(reason.to_string());
        self.audit.send_or_drop(record);
        tracing::info!(version = n, source, reason, "config activated");
        Ok(n)
    }
}

pub(crate) fn platform_admin(who: &Principal) -> Result<(), GatewayError> {
    match who {
        Principal::Bootstrap => Ok(()),
        Principal::Key(_) => {
            Err(GatewayError::new(ErrorKind::PermissionDenied, "Config versions are the platform admin's."))
        }
    }
}

pub(crate) fn unavailable(e: StoreError) -> GatewayError {
    GatewayError::new(ErrorKind::UpstreamUnavailable, format!("Config versions cannot be read right now: {e}"))
}

fn not_found(n: i64) -> GatewayError {
    GatewayError::new(ErrorKind::NotFound, format!("No config version {n}.")).with_param("version")
}

pub(crate) fn parse(text: &str) -> Result<serde_yaml::Value, GatewayError> {
    serde_yaml::from_str(text)
        .map_err(|e| GatewayError::new(ErrorKind::Conflict, format!("A stored config does not parse: {e}")))
}

pub(crate) fn route_entry<'a>(doc: &'a serde_yaml::Value, route: &str) -> Option<&'a serde_yaml::Value> {
    doc.get("routes")?.as_sequence()?.iter().find(|r| r.get("name").and_then(|n| n.as_str()) == Some(route))
}

pub(crate) fn route_entry_mut<'a>(doc: &'a mut serde_yaml::Value, route: &str) -> Option<&'a mut serde_yaml::Value> {
    doc.get_mut("routes")?.as_sequence_mut()?.iter_mut().find(|r| r.get("name").and_then(|n| n.as_str()) == Some(route))
}

fn line_count(text: &str) -> usize {
    text.lines().count()
}

/// The value of a secret-named field written literally (not `${VAR}`)
/// shows as `[redacted]`, in block and flow style alike.
pub fn redact(text: &str) -> String {
    static SECRET: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = SECRET.get_or_init(|| {
        regex::Regex::new(r#"\b(api_key|bootstrap_token|token|secret|password)(\s*:\s*)("[^"]*"|'[^']*'|[^,}\s#]+)"#)
            .ok()
    });
    let Some(re) = re else { return text.to_string() };
    re.replace_all(text, |c: &regex::Captures<'_>| {
        let value = &c[3];
        if value.trim_matches(|q| q == '"' || q == '\'').starts_with("${") {
            c[0].to_string()
        } else {
            format!("{}{}\"[redacted]\"", &c[1], &c[2])
        }
    })
    .into_owned()
}

/// A line diff (longest common subsequence): `"  "` kept, `"- "` removed,
/// `"+ "` added. Past 4M cells it reports the whole texts as replaced.
pub fn diff(before: &str, after: &str) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    if a.len().saturating_mul(b.len()) > 4_000_000 {
        let removed = a.iter().map(|l| format!("- {l}"));
        return removed.chain(b.iter().map(|l| format!("+ {l}"))).collect();
    }
    // lcs[i][j]: the common length of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(format!("  {}", a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals before additions, as diffs usually read.
            out.push(format!("- {}", a[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_lines() {
        let d = diff("a\nb\nc\n", "a\nc\nd\n");
        assert_eq!(d, ["  a", "- b", "  c", "+ d"]);
        assert_eq!(diff("", "x"), ["+ x"]);
        assert!(diff("same", "same").iter().all(|l| l.starts_with("  ")));
    }

    #[test]
    fn literal_secrets_are_redacted_references_are_not() {
        let text = "admin:\n  bootstrap_token: \"hunter2\"\nproviders:\n  - { name: o, api_key: ${OPENAI_API_KEY} }\n  - { name: p, api_key: sk-literal, tier: L2 }\nnodes: { token: \"${T}\" }";
        let r = redact(text);
        assert!(!r.contains("hunter2") && !r.contains("sk-literal"), "{r}");
        assert!(r.contains("api_key: ${OPENAI_API_KEY}") && r.contains("token: \"${T}\""), "{r}");
        assert!(r.contains("api_key: \"[redacted]\", tier: L2"), "{r}");
        assert!(r.contains("bootstrap_token: \"[redacted]\""), "{r}");
    }
}
