//! `clientele webhooks add|list|remove|replay`, and the webhook flags that
//! `serve` shares with them: the key that seals secrets, whether internal
//! targets are allowed, the retry schedule. The subcommands act on the
//! database directly, as an admin of the workspace named.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::{DatabaseArgs, open_store};
use crate::core::auth::{Principal, Role, WorkspaceId};
use crate::core::ratelimit::parse_duration;
use crate::core::webhooks::{DEFAULT_SCHEDULE, SealingKey, WebhookSettings, Webhooks};
use crate::delivery::{DeliverySettings, HttpSender};

/// Webhook settings of `serve` and of `webhooks …`: where the key is, and
/// which targets are allowed.
#[derive(Debug, Clone, Args)]
pub struct WebhookKeyArgs {
    /// File holding the key (base64 of 32 bytes) that seals webhook secrets
    /// in the database, created if missing (mode 0600). Default: beside a
    /// SQLite database (`clientele.db.webhook-key`); required with
    /// PostgreSQL, and every instance needs the same file. A database dump
    /// without this file cannot sign webhooks.
    #[arg(long, env = "CLIENTELE_WEBHOOK_KEY_FILE")]
    pub webhook_key_file: Option<PathBuf>,

    /// Allow webhook targets on loopback, private, link-local and metadata
    /// addresses, and plain http (tests, closed networks). Off: refused.
    #[arg(long, env = "CLIENTELE_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,
}

/// Webhook settings of `serve`: the key and targets, and how deliveries run.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    pub key: WebhookKeyArgs,

    /// Delay before each attempt of a delivery, comma-separated (ms, s, m,
    /// h); after the last the delivery fails (replay sends it again).
    /// Each delay gets ±20% jitter.
    #[arg(
        long,
        env = "CLIENTELE_WEBHOOK_RETRY_SCHEDULE",
        default_value = "0s,5s,5m,30m,2h,5h,10h,10h",
        value_parser = parse_schedule
    )]
    pub webhook_retry_schedule: Schedule,

    /// How long one delivery attempt may take (connect, send, answer).
    #[arg(long, env = "CLIENTELE_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,

    /// How long attempts and finished deliveries are kept.
    #[arg(long, env = "CLIENTELE_WEBHOOK_RETENTION", default_value = "720h", value_parser = parse_duration)]
    pub webhook_retention: Duration,

    /// Delivery attempts in flight at once from this instance.
    #[arg(long, env = "CLIENTELE_WEBHOOK_CONCURRENCY", default_value_t = 64)]
    pub webhook_concurrency: usize,

    /// Delivery attempts in flight at once to one endpoint (scheme, host, port).
    #[arg(
        long,
        env = "CLIENTELE_WEBHOOK_CONNECTIONS_PER_ENDPOINT",
        default_value_t = 8
    )]
    pub webhook_connections_per_endpoint: usize,
}

/// A retry schedule flag's value.
#[derive(Debug, Clone)]
pub struct Schedule(pub Vec<Duration>);

fn parse_schedule(text: &str) -> Result<Schedule, String> {
    let delays = text
        .split(',')
        .map(parse_duration)
        .collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() || delays.len() > 50 {
        return Err("give 1 to 50 delays".into());
    }
    Ok(Schedule(delays))
}

impl Default for Schedule {
    fn default() -> Self {
        Self(DEFAULT_SCHEDULE.to_vec())
    }
}

impl WebhookKeyArgs {
    /// The settings these flags give, for the database at `database_url`
    /// (the rest as defaults).
    pub fn settings(&self, database_url: &str) -> Result<WebhookSettings, String> {
        let key_file = self.webhook_key_file.clone().or_else(|| {
            database_url
                .strip_prefix("sqlite://")
                .or_else(|| database_url.strip_prefix("sqlite:"))
                .map(|path| path.split('?').next().unwrap_or(path))
                .filter(|path| !path.is_empty() && *path != ":memory:")
                .map(|path| PathBuf::from(format!("{path}.webhook-key")))
        });
        let key = match key_file {
            Some(path) => Some(Arc::new(SealingKey::load_or_create(&path).map_err(
                |error| format!("--webhook-key-file {}: {error}", path.display()),
            )?)),
            None => None,
        };
        Ok(WebhookSettings {
            key,
            allow_private: self.webhook_allow_private,
            ..WebhookSettings::default()
        })
    }
}

impl WebhookArgs {
    /// The settings these flags give, for the database at `database_url`.
    pub fn settings(&self, database_url: &str) -> Result<WebhookSettings, String> {
        Ok(WebhookSettings {
            schedule: self.webhook_retry_schedule.0.clone(),
            attempt_timeout: self.webhook_timeout,
            retention: self.webhook_retention,
            ..self.key.settings(database_url)?
        })
    }

    pub fn delivery(&self) -> DeliverySettings {
        DeliverySettings {
            concurrency: self.webhook_concurrency.max(1),
            per_endpoint: self.webhook_connections_per_endpoint.max(1),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Subscribe a URL to events; prints the subscription and its secret
    /// (shown once).
    Add {
        /// The workspace whose events are sent.
        #[arg(long)]
        workspace: String,
        /// The target, `https://…`.
        #[arg(long)]
        url: String,
        /// Event types or patterns, comma-separated (`icp.*,client.updated`, `*`).
        #[arg(long, default_value = "*")]
        events: String,
        /// What the subscription is for, shown in listings (at most 500 characters).
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        webhook: WebhookKeyArgs,
    },
    /// List a workspace's subscriptions (never their secrets).
    List {
        #[arg(long)]
        workspace: String,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        webhook: WebhookKeyArgs,
    },
    /// Delete a subscription with its pending deliveries.
    Remove {
        /// The subscription's id (`wh_…`).
        id: String,
        #[arg(long)]
        workspace: String,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        webhook: WebhookKeyArgs,
    },
    /// Send again the failed deliveries of events since a time (a running
    /// server picks them up).
    Replay {
        #[arg(long)]
        workspace: String,
        /// ISO 8601 date-time, e.g. 2026-12-01T00:00:00Z.
        #[arg(long)]
        since: DateTime<Utc>,
        /// Only this subscription (default: every one of the workspace).
        #[arg(long)]
        webhook: Option<String>,
        /// Also send again the deliveries that succeeded.
        #[arg(long)]
        include_delivered: bool,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        settings: WebhookKeyArgs,
    },
}

fn admin_of(workspace: &str) -> Result<Principal, String> {
    crate::core::auth::check_name("workspace", workspace)?;
    Ok(Principal {
        workspace: WorkspaceId::new(workspace),
        user_id: "cli".into(),
        role: Role::Admin,
        key_id: None,
        request_id: format!("cli-{}", uuid::Uuid::new_v4()),
        client_request_id: None,
    })
}

async fn service(database: &DatabaseArgs, args: &WebhookKeyArgs) -> Result<Webhooks, String> {
    let store = open_store(database).await?;
    let settings = args.settings(&database.database_url)?;
    let sender = HttpSender::new(settings.allow_private, settings.attempt_timeout, 1)?;
    Ok(Webhooks::new(store, settings, Arc::new(sender)))
}

pub async fn run(command: WebhooksCommand) -> Result<(), String> {
    match command {
        WebhooksCommand::Add {
            workspace,
            url,
            events,
            description,
            database,
            webhook,
        } => {
            let principal = admin_of(&workspace)?;
            let webhooks = service(&database, &webhook).await?;
            let body = serde_json::json!({
                "url": url,
                "eventTypes": events.split(',').map(str::trim).collect::<Vec<_>>(),
                "description": description,
            });
            let made = webhooks
                .create(&principal, &body)
                .await
                .map_err(|error| error.to_string())?;
            println!("created webhook {}", made.webhook.id);
            println!("url:    {}", made.webhook.url);
            println!("events: {}", made.webhook.event_types.join(","));
            println!("secret: {}", made.secret);
            println!("(the secret is shown only now: verify deliveries with it)");
            Ok(())
        }
        WebhooksCommand::List {
            workspace,
            database,
            webhook,
        } => {
            let principal = admin_of(&workspace)?;
            let webhooks = service(&database, &webhook).await?;
            let list = webhooks
                .list(&principal)
                .await
                .map_err(|error| error.to_string())?;
            if list.is_empty() {
                println!("no webhooks in workspace {workspace}");
            }
            for hook in list {
                let state = match (&hook.enabled, &hook.disabled_reason) {
                    (true, _) => "enabled".to_owned(),
                    (false, Some(reason)) => format!("disabled ({reason})"),
                    (false, None) => "disabled".to_owned(),
                };
                println!(
                    "{}  {}  {}  {}",
                    hook.id,
                    hook.url,
                    hook.event_types.join(","),
                    state
                );
            }
            Ok(())
        }
        WebhooksCommand::Remove {
            id,
            workspace,
            database,
            webhook,
        } => {
            let principal = admin_of(&workspace)?;
            let webhooks = service(&database, &webhook).await?;
            webhooks
                .delete(&principal, &id)
                .await
                .map_err(|error| error.to_string())?;
            println!("removed webhook {id}");
            Ok(())
        }
        WebhooksCommand::Replay {
            workspace,
            since,
            webhook,
            include_delivered,
            database,
            settings,
        } => {
            let principal = admin_of(&workspace)?;
            let webhooks = service(&database, &settings).await?;
            let count = webhooks
                .replay(&principal, webhook.as_deref(), since, include_delivered)
                .await
                .map_err(|error| error.to_string())?;
            println!("{count} deliveries are pending again");
            Ok(())
        }
    }
}
