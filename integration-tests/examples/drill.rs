//! The operator's drill (`integration_tests::drill`) against a deployment
//! running elsewhere, e.g. on separate network addresses
//! (`integration-tests/netns-drill.sh` sets one up and runs this).
//!
//!     drill jwk
//!         prints the test FxA signing key the tokenserver must be given
//!         (SYNC_TOKENSERVER__FXA_OAUTH_PRIMARY_JWK)
//!     drill run TOKENSERVER_URL "ADMIN COMMAND" NODE NODE NODE [CLIENTS]
//!         NODE is URL,METRICS_URL,PID; ADMIN COMMAND runs the operator's
//!         `tokenserver` with its settings (it is split at spaces, and the
//!         operator's arguments are added)

// An example: a failed unwrap is a failed drill.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration_tests::drill::{self, Deployment};
use integration_tests::fxa::TestKey;

struct Remote {
    tokenserver: String,
    admin: Vec<String>,
    nodes: Vec<(String, String, u32)>,
}

impl Deployment for Remote {
    fn tokenserver(&self) -> String {
        self.tokenserver.clone()
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.0.clone()).collect()
    }

    fn metrics(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.1.clone()).collect()
    }

    fn admin(&self, args: &[&str]) -> String {
        let output = std::process::Command::new(&self.admin[0])
            .args(&self.admin[1..])
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{args:?} failed: {text}");
        println!("$ tokenserver {}\n{}", args.join(" "), text.trim_end());
        text
    }

    fn kill(&mut self, i: usize) {
        let pid = self.nodes[i].2.to_string();
        println!("$ kill -KILL {pid}  # {}", self.nodes[i].0);
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("jwk") => println!("{}", TestKey::Primary.jwk()),
        Some("run") if args.len() >= 6 => {
            let nodes = args[3..6]
                .iter()
                .map(|n| {
                    let parts: Vec<&str> = n.split(',').collect();
                    assert_eq!(parts.len(), 3, "NODE is URL,METRICS_URL,PID: {n}");
                    (
                        parts[0].to_owned(),
                        parts[1].to_owned(),
                        parts[2].parse().unwrap(),
                    )
                })
                .collect();
            let mut remote = Remote {
                tokenserver: args[1].clone(),
                admin: args[2].split_whitespace().map(str::to_owned).collect(),
                nodes,
            };
            let clients = args.get(6).map_or(9, |c| c.parse().unwrap());
            let report = drill::run(&mut remote, clients).await;
            println!("{report:#?}");
            println!("drill passed");
        }
        _ => {
            eprintln!("usage: drill jwk | drill run TOKENSERVER_URL \"ADMIN COMMAND\" NODE NODE NODE [CLIENTS]");
            std::process::exit(2);
        }
    }
}
