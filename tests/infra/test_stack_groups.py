"""`stack status` tells a node that is not part of its service's one group (Kafka cluster, Cassandra ring) from a
ready one: the rule, on literal views (the multi-node tests check it on real clusters)."""
from __future__ import annotations

from infra.local.stack import apart

RING = frozenset({"127.0.0.1", "127.0.0.2", "127.0.0.3"})


def test_nodes_that_all_see_every_ready_node_are_none_apart_a_stopped_one_may_be_missing():
    views = {"kafka-1": ("Aq1", frozenset({1, 2})), "kafka-2": ("Aq1", frozenset({1, 2}))}  # kafka-3 stopped
    assert apart(views, frozenset({1, 2})) == {}


def test_a_node_in_a_ring_of_its_own_and_one_that_did_not_answer_are_apart():
    views = {"cassandra-1": ("meterlake", frozenset({"127.0.0.1"})),
             "cassandra-2": ("meterlake", RING),
             "cassandra-3": None}
    assert apart(views, frozenset({"127.0.0.1", "127.0.0.2", "127.0.0.3"})) == {
        "cassandra-1": "it does not see 127.0.0.2, 127.0.0.3, which answer",
        "cassandra-3": "it did not say which group it is in"}


def test_brokers_formatted_as_another_cluster_are_apart_even_when_they_list_the_right_ids():
    brokers = frozenset({1, 2, 3})
    views = {"kafka-1": ("Aq1", brokers), "kafka-2": ("Zz9", brokers), "kafka-3": ("Zz9", brokers)}
    assert apart(views, brokers) == {"kafka-2": "it is in another group (Zz9, not Aq1)",
                                     "kafka-3": "it is in another group (Zz9, not Aq1)"}
