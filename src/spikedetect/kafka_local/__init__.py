"""The local Apache Kafka broker used for development and CI."""

from spikedetect.kafka_local.launcher import (
    DEFAULT_PORT,
    BrokerStatus,
    KafkaLaunchError,
    LocalKafka,
    spikedetect_home,
)
from spikedetect.kafka_local.probe import broker_answers

__all__ = [
    "DEFAULT_PORT",
    "BrokerStatus",
    "KafkaLaunchError",
    "LocalKafka",
    "broker_answers",
    "spikedetect_home",
]
