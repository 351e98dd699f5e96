//! What both binaries share to run as a service: configuration errors, telemetry, metrics,
//! health and readiness, the public listener's front door, and serving with graceful shutdown.
//! It knows nothing of SDKs or flags: both binaries link it so that both behave the same to
//! operators.

pub mod config;
pub mod error;
pub mod gzip;
pub mod health;
pub mod listener;
pub mod metrics;
pub mod serve;
pub mod tasks;
pub mod telemetry;
mod timer;

pub use config::{CommonArgs, InvalidSetting, LogFormat, Stop, parse};
pub use error::AppError;
pub use health::{CheckStatus, Health};
pub use serve::{Peer, bind, run_service, serve, shutdown_signal};
pub use tasks::{Owned, Stopper, Stopping};
