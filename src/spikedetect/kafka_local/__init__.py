"""The local Apache Kafka broker used for development and CI."""

from spikedetect.kafka_local.launcher import (
    DEFAULT_PORT,
    BrokerStatus,
    KafkaLaunchError,
    LocalKafka,
    broker_answers,
    spikedetect_home,
)

__all__ = [
    "DEFAULT_PORT",
    "BrokerStatus",
    "KafkaLaunchError",
    "LocalKafka",
    "broker_answers",
    "spikedetect_home",
]
