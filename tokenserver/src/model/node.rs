//! Node allocation as pure code (`shared/spec/tokenserver.md`, "node
//! allocation"), so every backend picks and releases exactly alike.

/// A storage node row, as allocation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLoad {
    pub id: i64,
    pub available: i64,
    pub current_load: i64,
    pub capacity: i64,
    pub downed: bool,
    pub backoff: bool,
}

impl NodeLoad {
    fn accepts_users(&self) -> bool {
        self.available > 0 && self.current_load < self.capacity && !self.downed && !self.backoff
    }
}

/// The node a new user goes to: one that accepts users, least loaded
/// relative to its capacity; among equals the one with the most available
/// slots, then the lowest id (Mozilla's order, on every backend).
pub fn pick(nodes: &[NodeLoad]) -> Option<i64> {
    nodes
        .iter()
        .filter(|n| n.accepts_users())
        .min_by(|a, b| {
            // load_a / cap_a vs load_b / cap_b, without floats.
            let lhs = i128::from(a.current_load) * i128::from(b.capacity);
            let rhs = i128::from(b.current_load) * i128::from(a.capacity);
            lhs.cmp(&rhs)
                .then(b.available.cmp(&a.available))
                .then(a.id.cmp(&b.id))
        })
        .map(|n| n.id)
}

/// When no node has `available` slots left: the new `available` of each
/// node that may take more users, `min(round(capacity × rate), capacity −
/// current_load)` as Mozilla's integer columns store it, but at least one
/// slot, so a small node is never stuck full below its capacity. Downed
/// nodes get none.
pub fn release(nodes: &[NodeLoad], rate: f64) -> Vec<(i64, i64)> {
    nodes
        .iter()
        .filter(|n| !n.downed && n.available <= 0 && n.current_load < n.capacity)
        .map(|n| {
            let share = (n.capacity as f64 * rate).round() as i64;
            (n.id, share.max(1).min(n.capacity - n.current_load))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64, available: i64, load: i64, capacity: i64) -> NodeLoad {
        NodeLoad {
            id,
            available,
            current_load: load,
            capacity,
            downed: false,
            backoff: false,
        }
    }

    #[test]
    fn the_least_loaded_node_relative_to_capacity_wins() {
        let nodes = [
            node(1, 10, 50, 100),
            node(2, 10, 10, 20),
            node(3, 10, 30, 100),
        ];
        assert_eq!(pick(&nodes), Some(3));
    }

    #[test]
    fn ties_go_to_the_most_available_then_the_lowest_id() {
        let nodes = [node(7, 5, 1, 10), node(3, 5, 1, 10)];
        assert_eq!(pick(&nodes), Some(3));
        let nodes = [node(3, 2, 1, 10), node(7, 5, 1, 10), node(9, 5, 1, 10)];
        assert_eq!(pick(&nodes), Some(7));
    }

    #[test]
    fn full_downed_and_backed_off_nodes_are_skipped() {
        let mut downed = node(1, 5, 0, 10);
        downed.downed = true;
        let mut backoff = node(2, 5, 0, 10);
        backoff.backoff = true;
        let nodes = [downed, backoff, node(3, 0, 0, 10), node(4, 5, 10, 10)];
        assert_eq!(pick(&nodes), None);
    }

    #[test]
    fn release_gives_a_share_of_capacity_but_never_past_it() {
        let mut downed = node(3, 0, 0, 100);
        downed.downed = true;
        let nodes = [
            node(1, 0, 10, 100),
            node(2, 0, 98, 100),
            downed,
            node(4, 0, 5, 5),
        ];
        assert_eq!(release(&nodes, 0.1), vec![(1, 10), (2, 2)]);
        // Rounded like Mozilla's integer column; a small node still gets one.
        assert_eq!(release(&[node(6, 0, 0, 14)], 0.1), vec![(6, 1)]);
        assert_eq!(release(&[node(5, 0, 0, 3)], 0.1), vec![(5, 1)]);
    }
}
