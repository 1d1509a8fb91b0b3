//! The request's deadline: `x-switchyard-timeout` — seconds (`30`, `2.5`)
//! or a duration (`500ms`, `30s`, `2m`) — capped at
//! `resilience.deadline.max`; absent, `resilience.deadline.default`. Every
//! attempt, backoff and failover happens inside it.

use crate::error::{ErrorKind, GatewayError};
use std::time::Duration;
use switchyard_config::DeadlineConfig;

pub const HEADER: &str = "x-switchyard-timeout";

/// How long the request may take, from the header's value (if sent).
pub fn budget(c: &DeadlineConfig, header: Option<&str>) -> Result<Duration, GatewayError> {
    let Some(text) = header else { return Ok(c.default.get()) };
    let asked = switchyard_config::Duration::parse(text.trim()).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
        GatewayError::new(
            ErrorKind::InvalidRequest,
            format!("{HEADER} must be a positive number of seconds or a duration like \"30s\", found {text:?}."),
        )
        .with_param(HEADER)
    })?;
    Ok(asked.min(c.max.get()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seconds_or_durations_capped_by_policy() {
        let c = DeadlineConfig::default();
        assert_eq!(budget(&c, None).unwrap(), Duration::from_secs(600));
        assert_eq!(budget(&c, Some("2.5")).unwrap(), Duration::from_millis(2500));
        assert_eq!(budget(&c, Some("500ms")).unwrap(), Duration::from_millis(500));
        assert_eq!(budget(&c, Some("5h")).unwrap(), Duration::from_secs(3600), "capped");
        for bad in ["", "0", "soon", "-3"] {
            assert_eq!(budget(&c, Some(bad)).unwrap_err().param.as_deref(), Some(HEADER), "{bad:?}");
        }
    }
}
