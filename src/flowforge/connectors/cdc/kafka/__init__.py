"""A Kafka topic of Debezium JSON change events as a CDC source (confluent-kafka)."""
