//! `switchyard keys …`: admin helpers that call the admin API.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret (shown once).
    Create {
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// Routes the key may use (repeat the flag); default: all.
        #[arg(long = "route")]
        routes: Vec<String>,
        #[arg(long)]
        tenant: Option<String>,
        /// Gateway base URL.
        #[arg(long, env = "SWITCHYARD_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The admin token (`admin.bootstrap_token`).
        #[arg(long, env = "SWITCHYARD_ADMIN_TOKEN", default_value = "dev-admin-token")]
        admin_token: String,
    },
}

pub async fn run(command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Create { name, routes, tenant, url, admin_token } => {
            let mut body = serde_json::json!({"name": name});
            if !routes.is_empty() {
                body["allowed_routes"] = serde_json::json!(routes);
            }
            if let Some(t) = tenant {
                body["tenant_id"] = serde_json::json!(t);
            }
            let settings = switchyard_providers::http::ClientSettings {
                connect_timeout: std::time::Duration::from_secs(5),
                http2_only: false,
            };
            let client = switchyard_providers::http::build_client(&settings).map_err(|e| e.message)?;
            let request = http::Request::post(format!("{}/api/v1/keys", url.trim_end_matches('/')))
                .header("authorization", format!("Bearer {admin_token}"))
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(body.to_string())))
                .map_err(|e| format!("bad gateway URL {url:?}: {e}"))?;
            let response =
                client.request(request).await.map_err(|e| format!("cannot reach the gateway at {url}: {e}"))?;
            let status = response.status();
            let (bytes, _) =
                switchyard_providers::http::read_limited(response.into_body(), 1 << 20).await.map_err(|e| e.message)?;
            if !status.is_success() {
                return Err(format!("the gateway answered {status}: {}", String::from_utf8_lossy(&bytes)));
            }
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            println!("{}", v["key"].as_str().unwrap_or_default());
            eprintln!("key {} created (the secret above is shown only once)", v["id"].as_str().unwrap_or_default());
            Ok(())
        }
    }
}
