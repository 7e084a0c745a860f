//! Node allocation over HTTP: least loaded first, capacity release, and
//! reassignment when a node is downed, drained or removed.

use tokenserver::db::NodeUpdate;

use crate::support::{TestTokenserver, NODE};

const NODE_2: &str = "https://node-2.example.com";

fn endpoint_node(body: &serde_json::Value) -> String {
    body["api_endpoint"]
        .as_str()
        .unwrap()
        .rsplit_once("/1.5/")
        .unwrap()
        .0
        .to_owned()
}

#[tokio::test]
async fn users_go_to_the_least_loaded_node() {
    let ts = TestTokenserver::spawn().await;
    ts.store.add_node(NODE_2, 100, false, false).await.unwrap();
    let update = NodeUpdate {
        capacity: Some(100),
        ..NodeUpdate::default()
    };
    ts.store.update_node(NODE, &update).await.unwrap();
    let a = ts.request("a", Some(1), "1-qqo").send().await.ok();
    let b = ts.request("b", Some(1), "1-qqo").send().await.ok();
    let c = ts.request("c", Some(1), "1-qqo").send().await.ok();
    // Ties go to the lowest id, then the emptier node.
    assert_eq!(endpoint_node(&a), NODE);
    assert_eq!(endpoint_node(&b), NODE_2);
    assert_eq!(endpoint_node(&c), NODE);
    let nodes = ts.store.nodes().await.unwrap();
    assert_eq!(nodes[0].current_load, 2);
    assert_eq!(nodes[0].available, 98);
    assert_eq!(nodes[1].current_load, 1);
}

#[tokio::test]
async fn among_equally_loaded_nodes_the_one_with_most_slots_available_wins() {
    let ts = TestTokenserver::spawn().await;
    ts.store.add_node(NODE_2, 100, false, false).await.unwrap();
    let update = NodeUpdate {
        capacity: Some(100),
        available: Some(50),
        ..NodeUpdate::default()
    };
    ts.store.update_node(NODE, &update).await.unwrap();
    let a = ts.request("a", Some(1), "1-qqo").send().await.ok();
    assert_eq!(
        endpoint_node(&a),
        NODE_2,
        "more available, though a higher id"
    );
}

#[tokio::test]
async fn a_node_without_available_slots_gets_capacity_released() {
    let ts = TestTokenserver::spawn().await;
    let update = NodeUpdate {
        capacity: Some(20),
        available: Some(0),
        ..NodeUpdate::default()
    };
    ts.store.update_node(NODE, &update).await.unwrap();
    ts.request("r", Some(1), "1-qqo").send().await.ok();
    let node = &ts.store.nodes().await.unwrap()[0];
    // Released min(20 × 0.1, 20 − 0) = 2 slots, one taken.
    assert_eq!((node.current_load, node.available), (1, 1));
}

#[tokio::test]
async fn a_full_node_takes_nobody() {
    let ts = TestTokenserver::spawn().await;
    let update = NodeUpdate {
        capacity: Some(1),
        ..NodeUpdate::default()
    };
    ts.store.update_node(NODE, &update).await.unwrap();
    ts.request("first", Some(1), "1-qqo").send().await.ok();
    let second = ts.request("second", Some(1), "1-qqo").send().await;
    second.assert_error(503, "internal-error", "internal", "", "Server error");
    // The user already there is still served.
    ts.request("first", Some(1), "1-qqo").send().await.ok();
}

#[tokio::test]
async fn users_of_a_downed_node_move_to_a_new_uid_on_another() {
    let ts = TestTokenserver::spawn().await;
    let before = ts.request("d", Some(5), "5-qqo").send().await.ok();
    ts.store.add_node(NODE_2, 100, false, false).await.unwrap();
    let down = NodeUpdate {
        downed: Some(true),
        ..NodeUpdate::default()
    };
    ts.store.update_node(NODE, &down).await.unwrap();
    let after = ts.request("d", Some(5), "5-qqo").send().await.ok();
    assert_eq!(endpoint_node(&after), NODE_2);
    assert_ne!(before["uid"], after["uid"]);
    let records = ts.records("d").await;
    assert_eq!(
        records[0].keys.client_state.as_hex(),
        "aaaa",
        "keys carry over"
    );
    assert!(records[1].replaced_at.is_some());
}

#[tokio::test]
async fn unassigning_or_removing_a_node_moves_its_users() {
    let ts = TestTokenserver::spawn().await;
    ts.request("m1", Some(1), "1-qqo").send().await.ok();
    ts.request("m2", Some(1), "1-qqo").send().await.ok();
    ts.store.add_node(NODE_2, 100, false, false).await.unwrap();
    let backoff = NodeUpdate {
        backoff: Some(true),
        ..NodeUpdate::default()
    };
    ts.store.update_node(NODE, &backoff).await.unwrap();
    assert_eq!(ts.store.unassign_node(NODE).await.unwrap(), 2);
    let moved = ts.request("m1", Some(1), "1-qqo").send().await.ok();
    assert_eq!(endpoint_node(&moved), NODE_2);
    assert_eq!(ts.store.remove_node(NODE_2).await.unwrap(), 1);
    let update = NodeUpdate {
        backoff: Some(false),
        ..NodeUpdate::default()
    };
    ts.store.update_node(NODE, &update).await.unwrap();
    let back = ts.request("m1", Some(1), "1-qqo").send().await.ok();
    assert_eq!(endpoint_node(&back), NODE);
    assert_eq!(ts.store.count_users(None).await.unwrap(), 2);
}
