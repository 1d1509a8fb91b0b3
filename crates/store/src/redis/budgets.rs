//! [`RedisBudgets`]: budget counters shared by replicas (core's
//! `SharedBudgets`). A reservation is one `EVALSHA` of `budgets.lua`
//! checking and charging every account of the request atomically, with
//! Redis's clock for the holds' leases; settling is fire and forget. Key
//! layout and replies: `budgets.lua` and the module doc of `redis`.
//!
//! Invariants a reader must keep:
//! - The script writes only when every account passed, like
//!   `Ledger::reserve`: a refusal changes nothing.
//! - A call on the request path never waits longer than `redis.timeout`;
//!   after a failure calls fail at once for a moment (`Link`).
//! - A reservation whose answer was lost may have been made: it is settled
//!   as released at once (a no-op if it was not made), and in any case
//!   expires with its lease (`redis.lease`).

use super::{Background, Link};
use redis::Script;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use switchyard_config::RedisConfig;
use switchyard_core::budget::{BudgetAccount, Dimension, Moved, Period, SharedBudgets, SharedRefusal, Spend};
use switchyard_core::limits::{BackendDown, BoxFuture};

static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("budgets.lua")));

/// The shared budget backend. Cheap to share behind an `Arc`.
pub struct RedisBudgets {
    link: Link,
    /// `{prefix}:bg:` (counters) and `{prefix}:bh:` (holds).
    counter_prefix: String,
    hold_prefix: String,
    /// `{prefix}:` + `vol:{provider}:{month start}`: provider volume.
    volume_prefix: String,
    lease_ms: u64,
    /// Hold ids are `{id_prefix}-{n}`: random per process, counted.
    id_prefix: String,
    holds: AtomicU64,
}

impl std::fmt::Debug for RedisBudgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBudgets").field("prefix", &self.counter_prefix).finish()
    }
}

impl RedisBudgets {
    /// Connects to `config.url` and loads the script; like the limiter, a
    /// Redis that does not answer at start is a warning, not an error.
    pub async fn connect(config: &RedisConfig) -> Result<RedisBudgets, String> {
        let budgets = RedisBudgets {
            link: Link::new(config)?,
            counter_prefix: format!("{}:bg:", config.key_prefix),
            hold_prefix: format!("{}:bh:", config.key_prefix),
            volume_prefix: format!("{}:", config.key_prefix),
            lease_ms: u64::try_from(config.lease.get().as_millis()).unwrap_or(u64::MAX).max(1),
            id_prefix: format!("{:016x}", fastrand::u64(..)),
            holds: AtomicU64::new(0),
        };
        budgets.link.load(&SCRIPT, "budgets").await;
        Ok(budgets)
    }

    /// Settles sent but not answered yet.
    pub fn background_in_flight(&self) -> usize {
        self.link.background_in_flight()
    }

    fn keys(&self, a: &BudgetAccount) -> (String, String) {
        let period = match a.period {
            Period::Day => "day",
            Period::Month => "month",
        };
        let suffix = format!("{}:{period}:{}", a.scope, a.window.start_ms);
        (format!("{}{suffix}", self.counter_prefix), format!("{}{suffix}", self.hold_prefix))
    }

    /// Counters live a full period past their window's end (the previous
    /// window stays readable), then expire.
    fn expire_at(a: &BudgetAccount) -> i64 {
        a.window.end_ms.saturating_add(a.window.end_ms.saturating_sub(a.window.start_ms))
    }

    fn settle_call(
        &self,
        accounts: &[BudgetAccount],
        member: &str,
        reserved: (i64, u64),
        actual: Option<(i64, u64)>,
    ) -> Background {
        let mut call = SCRIPT.prepare_invoke();
        let (commit, (n, t)) = match actual {
            Some(amounts) => (1, amounts),
            None => (0, (0, 0)),
        };
        call.arg("settle").arg(member).arg(reserved.0).arg(reserved.1).arg(commit).arg(n).arg(t);
        for a in accounts {
            let (hash, holds) = self.keys(a);
            call.key(hash).key(holds).arg(Self::expire_at(a));
        }
        Background::Script(call)
    }
}

/// The hold's member in each account's set: its id and what it reserved
/// (read back by the script when the lease expires).
fn member(id: &str, nanos: i64, tokens: u64) -> String {
    format!("{id}|{nanos}|{tokens}")
}

fn limit(max: Option<i64>) -> i64 {
    max.map_or(-1, |m| m.max(0))
}

impl SharedBudgets for RedisBudgets {
    fn reserve<'a>(
        &'a self,
        accounts: &'a [BudgetAccount],
        nanos: i64,
        tokens: u64,
    ) -> BoxFuture<'a, Result<Result<String, SharedRefusal>, BackendDown>> {
        Box::pin(async move {
            if let Some(down) = self.link.paused() {
                return Err(down);
            }
            let id = format!("{}-{}", self.id_prefix, self.holds.fetch_add(1, Ordering::Relaxed));
            let member = member(&id, nanos, tokens);
            let mut call = SCRIPT.prepare_invoke();
            call.arg("reserve").arg(&member).arg(nanos).arg(tokens).arg(self.lease_ms);
            for a in accounts {
                let (hash, holds) = self.keys(a);
                let max_tokens = a.max_tokens.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
                call.key(hash).key(holds);
                call.arg(limit(a.max_nanos)).arg(limit(max_tokens)).arg(i32::from(a.enforce)).arg(Self::expire_at(a));
            }
            let mut conn = self.link.conn.clone();
            let (reason, maybe_ran) = match tokio::time::timeout(self.link.timeout, call.invoke_async(&mut conn)).await
            {
                Ok(Ok::<Vec<i64>, _>(reply)) => {
                    self.link.answered();
                    return decode(&reply, accounts.len(), id).map_err(BackendDown);
                }
                Ok(Err(e)) => (format!("redis: {e}"), e.is_io_error() && !e.is_connection_refusal()),
                Err(_) => (format!("redis did not answer within {:?}", self.link.timeout), true),
            };
            if maybe_ran {
                // The reservation may have been made after the answer was
                // lost: give it back (a no-op if it was not).
                let call = self.settle_call(accounts, &member, (nanos, tokens), None);
                self.link.spawn_background("budget release", call);
            }
            Err(self.link.failed(reason))
        })
    }

    fn settle(
        &self,
        accounts: Vec<BudgetAccount>,
        id: String,
        reserved: (i64, u64),
        actual: Option<(i64, u64)>,
        moved: Box<dyn FnOnce(Vec<Moved>) + Send>,
    ) {
        let call = self.settle_call(&accounts, &member(&id, reserved.0, reserved.1), reserved, actual);
        let what = if actual.is_some() { "budget commit" } else { "budget release" };
        self.link.spawn(what, call, move |reply| {
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            let spends: Vec<Moved> =
                reply.chunks_exact(4).map(|c| ((c[0], count(c[2])), (c[1], count(c[3])))).collect();
            if spends.len() == accounts.len() {
                moved(spends);
            }
        });
    }

    fn seed<'a>(
        &'a self,
        account: &'a BudgetAccount,
        nanos: i64,
        tokens: u64,
    ) -> BoxFuture<'a, Result<(), BackendDown>> {
        Box::pin(async move {
            let (hash, _) = self.keys(account);
            let mut call = SCRIPT.prepare_invoke();
            call.key(hash).arg("seed").arg(nanos).arg(tokens).arg(Self::expire_at(account));
            let mut conn = self.link.conn.clone();
            match tokio::time::timeout(self.link.background_timeout, call.invoke_async::<i64>(&mut conn)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(BackendDown(format!("redis: {e}"))),
                Err(_) => Err(BackendDown(format!("redis did not answer within {:?}", self.link.background_timeout))),
            }
        })
    }

    fn add_volume(&self, name: &str, expire_at_ms: i64, tokens: u64, total: Box<dyn FnOnce(u64) + Send>) {
        let mut pipe = redis::pipe();
        let key = format!("{}{name}", self.volume_prefix);
        pipe.cmd("INCRBY").arg(&key).arg(tokens).cmd("PEXPIREAT").arg(&key).arg(expire_at_ms).ignore();
        self.link.spawn("provider volume", Background::Pipeline(pipe), move |reply| {
            if let Some(&count) = reply.first() {
                total(u64::try_from(count).unwrap_or(0));
            }
        });
    }

    fn seed_volume<'a>(
        &'a self,
        name: &'a str,
        expire_at_ms: i64,
        tokens: u64,
    ) -> BoxFuture<'a, Result<u64, BackendDown>> {
        Box::pin(async move {
            let key = format!("{}{name}", self.volume_prefix);
            let mut pipe = redis::pipe();
            pipe.cmd("SET").arg(&key).arg(tokens).arg("NX").arg("PXAT").arg(expire_at_ms).ignore();
            pipe.cmd("GET").arg(&key);
            let mut conn = self.link.conn.clone();
            match tokio::time::timeout(self.link.background_timeout, pipe.query_async::<(Option<u64>,)>(&mut conn))
                .await
            {
                Ok(Ok((count,))) => Ok(count.unwrap_or(tokens)),
                Ok(Err(e)) => Err(BackendDown(format!("redis: {e}"))),
                Err(_) => Err(BackendDown(format!("redis did not answer within {:?}", self.link.background_timeout))),
            }
        })
    }

    fn spend<'a>(&'a self, account: &'a BudgetAccount) -> BoxFuture<'a, Result<Spend, BackendDown>> {
        Box::pin(async move {
            let (hash, holds) = self.keys(account);
            let mut call = SCRIPT.prepare_invoke();
            call.key(hash).key(holds).arg("spend");
            let mut conn = self.link.conn.clone();
            match tokio::time::timeout(self.link.timeout, call.invoke_async::<Vec<i64>>(&mut conn)).await {
                Ok(Ok(v)) if v.len() == 4 => Ok(Spend {
                    committed_nanos: v[0],
                    reserved_nanos: v[1],
                    committed_tokens: u64::try_from(v[2]).unwrap_or(0),
                    reserved_tokens: u64::try_from(v[3]).unwrap_or(0),
                }),
                Ok(Ok(v)) => Err(BackendDown(format!("redis: unexpected reply from the budget script: {v:?}"))),
                Ok(Err(e)) => Err(BackendDown(format!("redis: {e}"))),
                Err(_) => Err(BackendDown(format!("redis did not answer within {:?}", self.link.timeout))),
            }
        })
    }
}

/// The hold id, or the refusal, from the script's reply (`budgets.lua`).
fn decode(reply: &[i64], accounts: usize, id: String) -> Result<Result<String, SharedRefusal>, String> {
    match *reply {
        [1] => Ok(Ok(id)),
        [0, index, dimension, cn, rn, ct, rt] => {
            let index = usize::try_from(index - 1)
                .ok()
                .filter(|i| *i < accounts)
                .ok_or_else(|| format!("redis: the budget script named account {index} of {accounts}"))?;
            let dimension = match dimension {
                1 => Dimension::Cost,
                2 => Dimension::Tokens,
                other => return Err(format!("redis: the budget script named dimension {other}")),
            };
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            let spend = Spend {
                committed_nanos: cn,
                reserved_nanos: rn,
                committed_tokens: count(ct),
                reserved_tokens: count(rt),
            };
            Ok(Err(SharedRefusal { index, dimension, spend }))
        }
        _ => Err(format!("redis: unexpected reply from the budget script: {reply:?}")),
    }
}
