//! Who may use a location and how much: nginx's access-phase and preaccess-phase
//! modules, and the `stub_status` counters.
//!
//! - [`cidr`]: addresses and CIDR blocks (`allow`, `deny`, `set_real_ip_from`).
//! - [`conf`]: the typed settings of one location (rules, `satisfy`, auth,
//!   realip, limits, `stub_status`) and of the shared zones.
//! - [`rules`]: `allow`/`deny` (first match wins) and `satisfy all|any`.
//! - [`htpasswd`]: `auth_basic_user_file` lines and the hash formats nginx accepts.
//! - [`limit_except`]: which methods a `limit_except` block restricts.
//! - [`md5crypt`]: the `$1$` and `$apr1$` password hashes.
//! - [`realip`]: `set_real_ip_from`, `real_ip_header`, `real_ip_recursive`.
//! - [`limit_req`]: nginx's leaky bucket, pure, time in milliseconds passed in.
//! - [`zones`]: the `limit_req_zone`/`limit_conn_zone` tables shared by all worker
//!   threads, and the `stub_status` counters ([`zones::AccessState`]).
//! - [`stub_status`]: nginx's status text.
//!
//! Everything but [`zones`] is pure; `zones` holds the only shared, locked state
//! (one short mutex section per request and limit).

pub mod cidr;
pub mod conf;
pub mod htpasswd;
pub mod limit_except;
pub mod limit_req;
pub mod md5crypt;
pub mod realip;
pub mod rules;
pub mod stub_status;
pub mod zones;
