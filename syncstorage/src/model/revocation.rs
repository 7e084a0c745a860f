//! Which tokens a node refuses although their signature and expiry are
//! good: those the tokenserver revoked (ADR 0012).

use std::collections::{HashMap, HashSet};

use sync_common::token::TokenPayload;

/// The tokenserver's revocations as this node last read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    /// Every token of these uids.
    pub uids: HashSet<u64>,
    /// Per node URL: tokens naming it minted at a smaller epoch.
    pub epochs: HashMap<String, u64>,
}

impl Revoked {
    /// Whether `token` was revoked.
    pub fn refuses(&self, token: &TokenPayload) -> bool {
        let epoch = self.epochs.get(&token.node).copied().unwrap_or(0);
        token.node_epoch < epoch || self.uids.contains(&token.uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(uid: u64, node: &str, node_epoch: u64) -> TokenPayload {
        TokenPayload {
            node: node.into(),
            fxa_kid: String::new(),
            fxa_uid: String::new(),
            hashed_device_id: String::new(),
            hashed_fxa_uid: String::new(),
            expires: 0,
            uid,
            tokenserver_origin: "rust".into(),
            salt: String::new(),
            node_epoch,
        }
    }

    #[test]
    fn revoked_uids_and_older_epochs_are_refused() {
        let revoked = Revoked {
            uids: HashSet::from([7]),
            epochs: HashMap::from([("http://a".to_owned(), 2)]),
        };
        assert!(revoked.refuses(&token(7, "http://b", 0)));
        assert!(revoked.refuses(&token(8, "http://a", 1)));
        assert!(!revoked.refuses(&token(8, "http://a", 2)));
        assert!(!revoked.refuses(&token(8, "http://a", 3)));
        // Another URL of the node has its own epoch.
        assert!(!revoked.refuses(&token(8, "http://b", 0)));
        assert!(!Revoked::default().refuses(&token(7, "http://a", 0)));
    }
}
