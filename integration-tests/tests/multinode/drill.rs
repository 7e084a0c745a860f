//! The operator's drill on local processes: one tokenserver and three
//! storage nodes (SQLite, PostgreSQL, MariaDB), clients syncing throughout
//! an unassign, a migration, a drain and a SIGKILL (see
//! `integration_tests::drill`).

use integration_tests::cluster::Cluster;
use integration_tests::db::TestBackend;
use integration_tests::drill;

/// Checks every second, a node down after two failures, its users moved
/// two seconds later.
const FAST_CHECKS: [(&str, &str); 4] = [
    ("SYNC_TOKENSERVER__NODE_CHECK_INTERVAL_SECONDS", "1"),
    ("SYNC_TOKENSERVER__NODE_TIMEOUT_SECONDS", "1"),
    ("SYNC_TOKENSERVER__NODE_CHECK_FAILURES", "2"),
    ("SYNC_TOKENSERVER__NODE_DOWN_GRACE_SECONDS", "2"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_keep_every_write_through_unassign_migrate_drain_and_a_killed_node() {
    let backends = [
        TestBackend::Sqlite,
        TestBackend::Postgres,
        TestBackend::MySql,
    ];
    let mut cluster = Cluster::start(&backends, &FAST_CHECKS, &[]).await;
    let report = drill::run(&mut cluster, 9).await;
    println!("{report:#?}");
}
