//! Hot reload: the config file is re-read when its contents change
//! (checked every `reload.poll_interval`; polling survives editors that
//! replace files and Kubernetes ConfigMap symlink swaps, see
//! docs/adr/0002) and on SIGHUP. A new file is validated first and swapped
//! in whole; a bad one leaves the running config in place and every error
//! goes to the log.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use switchyard_core::Gateway;
use tokio::sync::watch;

pub async fn watch(path: PathBuf, gateway: Arc<Gateway>, mut stop: watch::Receiver<bool>) {
    let mut last = digest(&path);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let rt = gateway.runtime();
        let interval = rt.config.reload.poll_interval.get().max(std::time::Duration::from_millis(50));
        let watching = rt.config.reload.watch;
        drop(rt);
        let forced = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(interval) => false,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        let now = digest(&path);
        if !forced && (!watching || now == last) {
            continue;
        }
        last = now;
        reload_once(&path, &gateway, if forced { "SIGHUP" } else { "file change" });
    }
}

fn reload_once(path: &Path, gateway: &Arc<Gateway>, why: &str) {
    let result = switchyard_config::load_file(path)
        .map_err(|e| e.to_string())
        .and_then(|config| crate::serve::check_simulator(&config).map(|_| config))
        .and_then(|config| gateway.reload(config));
    match result {
        Ok(()) => {
            gateway.metrics.config_reloads.inc(&["ok"]);
            tracing::info!(path = %path.display(), trigger = why, "config reloaded");
            // Stored as a version (off this loop: the store may be slow).
            if let Ok(text) = std::fs::read_to_string(path) {
                let gateway = gateway.clone();
                tokio::spawn(async move { gateway.record_config(&text, "system", "file").await });
            }
        }
        Err(errors) => {
            gateway.metrics.config_reloads.inc(&["error"]);
            tracing::error!(path = %path.display(), trigger = why, "config reload rejected; the running config stays:\n{errors}");
        }
    }
}

fn digest(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|b| Sha256::digest(&b).into())
}
