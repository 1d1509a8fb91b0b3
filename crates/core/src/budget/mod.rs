//! Budgets: what a scope (a tenant, a team, a key) may spend per calendar
//! day or month, in money (nano-dollars, like a usage record's cost) and/or
//! tokens. Days and months begin at midnight in one fixed offset from UTC
//! (`budgets.time_zone`; [`period`]).
//!
//! | step | when | the window's [`Spend`] |
//! | --- | --- | --- |
//! | [`Ledger::reserve`] | before the request goes upstream, with its estimated maximum cost and tokens | `reserved += estimate` under every cap, all-or-nothing; refused ([`Exceeded`]) when `committed + reserved + estimate > max` for any cap |
//! | [`Hold::commit`] | when the request ends, with its actual cost and tokens | `reserved -= estimate`, `committed += actual`, in the windows reserved in (a request that ends after midnight counts for the day it started) |
//! | drop of an uncommitted [`Hold`] | the request failed before costing anything, or was abandoned | `reserved -= estimate` |
//! | [`Ledger::seed`] | at start, from stored usage | `committed += amount` |
//!
//! ## How far a budget can be overspent
//! A reservation is checked against what is spent *and* what requests in
//! flight hold, so as long as every estimate is a true maximum
//! (actual ≤ reserved) committed spend never exceeds the cap. An actual
//! above its estimate is committed anyway — the money is already spent — so
//! in one window, with `max` the cap at the last admission:
//!
//! ```text
//! committed ≤ max + Σ max(0, actualᵢ − reservedᵢ)   over the requests in flight at the last admission
//!             (+ whatever is seeded afterwards)
//! ```
//!
//! Why: that admission saw `committed + reserved + its estimate ≤ max`;
//! after it, spend only grows by requests already in flight replacing their
//! reservation with their actual. An overrun committed *before* an admission
//! is counted by it, so overruns do not compound across admissions; with
//! `n` admitted requests the bound is at most `max + n · (A − E)` for a
//! constant overrun `A − E` (asserted by the ledger's tests).
//!
//! The [`Ledger`] counts in this process, or — with Redis configured — in
//! counters shared by every replica ([`SharedBudgets`]; the module doc of
//! `shared` says what happens when Redis does not answer).

mod ledger;
pub mod period;
mod shared;

pub use ledger::{Action, Cap, Crossing, Dimension, Exceeded, Ledger, LocalHold, Spend};
pub use period::{label, rfc3339, window, Offset, Period, Window, Zone};
pub use shared::{BudgetAccount, Hold, Moved, NotReserved, SharedBudgets, SharedHold, SharedRefusal};
